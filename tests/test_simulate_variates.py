"""The simulator's own random variates against scipy's exact distributions (chi-square)."""

import numpy as np
import pytest
from scipy import stats

from collapse import _core


def chisquare_pvalue(x, pmf, support):
    """Chi-square goodness of fit on the cells with expectation >= 5, the rest pooled."""
    n = x.size
    obs = np.array([(x == k).sum() for k in support], dtype=np.float64)
    exp = pmf * n
    big = exp >= 5
    o, e = obs[big], exp[big]
    rest_o, rest_e = n - o.sum(), n - e.sum()
    if rest_e >= 5:
        o, e = np.append(o, rest_o), np.append(e, rest_e)
    else:
        assert rest_o <= max(10, 20 * rest_e)
        e = e * (o.sum() / e.sum())
    return stats.chisquare(o, e).pvalue


@pytest.mark.parametrize("n,p", [(10, 0.3), (100, 0.05), (100, 0.2), (1000, 0.5), (10**6, 1e-5), (10**6, 0.3),
                                 (50, 0.9), (30, 0.34), (7, 1.0), (7, 0.0), (2**40, 1e-11)])
def test_binomial(n, p):
    x = _core.simulation_binomial(12345, n, p, 100000)
    if p in (0.0, 1.0):
        assert np.all(x == round(n * p))
        return
    mean, sd = n * p, np.sqrt(n * p * (1 - p))
    support = np.arange(max(0, int(mean - 10 * sd) - 2), min(n, int(mean + 10 * sd) + 2) + 1)
    assert chisquare_pvalue(x, stats.binom.pmf(support, n, p), support) > 1e-3


@pytest.mark.parametrize("n,K,M", [(10, 5, 20), (100, 30, 1000), (1000, 400, 2000), (10**6, 10**5, 10**8),
                                   (50, 45, 60), (3, 1, 4), (20000, 100000, 10**9)])
def test_hypergeometric(n, K, M):
    x = _core.simulation_hypergeometric(777, n, K, M, 100000)
    lo, hi = max(0, n - (M - K)), min(n, K)
    assert x.min() >= lo and x.max() <= hi
    support = np.arange(lo, hi + 1) if hi - lo < 5000 else np.arange(lo, lo + 5000)
    mean = n * K / M
    sd = np.sqrt(mean * (1 - K / M) * (M - n) / (M - 1))
    support = support[(support >= mean - 12 * sd - 2) & (support <= mean + 12 * sd + 2)]
    assert chisquare_pvalue(x, stats.hypergeom.pmf(support, M, K, n), support) > 1e-3


def test_hypergeometric_degenerate_and_bad():
    assert np.all(_core.simulation_hypergeometric(1, 5, 5, 5, 10) == 5)
    assert np.all(_core.simulation_hypergeometric(1, 0, 5, 9, 10) == 0)
    with pytest.raises(ValueError):
        _core.simulation_hypergeometric(1, 6, 5, 5, 1)


def test_alias_table():
    w = np.array([0.1, 0.0, 0.5, 0.4, 0.002])
    x = _core.simulation_alias(3, w, 200000)
    assert not np.any(x == 1)
    assert chisquare_pvalue(x, w / w.sum(), np.arange(5)) > 1e-3
