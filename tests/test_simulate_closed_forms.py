"""The categorical simulator against closed forms and exact Markov-chain calculations.

Each comparison is a mean (or a probability) over many trials, required to lie within 3
standard errors of the exact value; distributions are compared with a chi-square test.
"""

import math
from fractions import Fraction

import numpy as np
import pytest
from scipy import stats

import collapse
from collapse import theory
from collapse.theory.categorical import make_p0


def within_3se(samples, exact):
    samples = np.asarray(samples, dtype=np.float64)
    se = samples.std(ddof=1) / math.sqrt(samples.size)
    assert se > 0
    assert abs(samples.mean() - exact) <= 3 * se, (samples.mean(), exact, se)


# ------------------------------------------------------------------- Replace: heterozygosity

@pytest.mark.parametrize("K,N", [(10, 50), (200, 30)])
def test_replace_expected_sum_p2(K, N):
    """1 - E[sum p_m^2] = (1 - 1/N)^m (1 - sum p_0^2): each generation's N draws keep a
    pair of distinct draws distinct-typed with probability (1 - 1/N) times the previous."""
    p0 = make_p0("zipf", K, 1.1)
    trials, G = 20000, 20
    r = collapse.simulate(p0=p0, N=N, generations=G, trials=trials, paradigm="replace", seed=11,
                          keep_final_p=False)
    s2 = r.metrics.pivot(index="trial", columns="generation", values="sum_p2")
    h0 = 1 - float((p0 ** 2).sum())
    assert np.allclose(s2[0].to_numpy(), 1 - h0, rtol=1e-12, atol=0)
    for m in (1, 2, 5, 10, 20):
        within_3se(1 - s2[m].to_numpy(), (1 - 1 / N) ** m * h0)
        within_3se(s2[m].to_numpy(), theory.seddik_sum_p2(p0, N, m))  # the same law, from collapse.theory


# ------------------------------------------------------- neutral two-outcome (Wright-Fisher)

def wright_fisher_absorption(N, i):
    """Exact mean absorption time from count i of the (N+1)-state Wright-Fisher chain:
    t = (I - Q)^{-1} 1 over the transient states 1..N-1."""
    j = np.arange(N + 1)
    P = np.array([stats.binom.pmf(j, N, k / N) for k in range(N + 1)])
    Q = P[1:N, 1:N]
    t = np.linalg.solve(np.eye(N - 1) - Q, np.ones(N - 1))
    return float(t[i - 1])


@pytest.mark.parametrize("N,i", [(20, 6), (9, 1)])
def test_wright_fisher_fixation_and_absorption_time(N, i):
    p0 = np.array([i / N, 1 - i / N])
    trials = 20000
    G = 60 * N  # P(not absorbed) ~ (1 - 1/N)^G: below 1e-20 per trial
    r = collapse.simulate(p0=p0, N=N, generations=G, trials=trials, paradigm="replace", seed=5,
                          record_every=G)
    ev = r.events
    assert ev["collapse"].notna().all()
    fixed0 = (ev["collapsed_to"] == 0).to_numpy(dtype=np.float64)
    # fixation probability = initial frequency (the frequency is a martingale)
    p = i / N
    assert abs(fixed0.mean() - p) <= 3 * math.sqrt(p * (1 - p) / trials)
    # the survivor is what final_p says, and final_p is a point mass
    assert np.array_equal(r.final_p[:, 0], fixed0)
    within_3se(ev["collapse"].to_numpy(dtype=np.float64), wright_fisher_absorption(N, i))
    assert theory.wright_fisher_fixation_probability(N, i) == p


def test_wright_fisher_exact_solver_sanity():
    # N = 2: from count 1, absorb each step with probability 1/2: mean time 2.
    assert wright_fisher_absorption(2, 1) == pytest.approx(2.0)
    # collapse.theory's solver (its own binomial matrix) against this one (scipy's pmf)
    for N, i in ((20, 6), (9, 1), (50, 17)):
        assert theory.wright_fisher_absorption_time(N, i) == pytest.approx(wright_fisher_absorption(N, i), rel=1e-10)


# ------------------------------------------------- exact small-case chains, every paradigm

def compositions(n, k):
    if k == 1:
        yield (n,)
        return
    for first in range(n + 1):
        for rest in compositions(n - first, k - 1):
            yield (first,) + rest


def multinomial_pmf(x, probs):
    n = sum(x)
    out = Fraction(math.factorial(n))
    for xi, pi in zip(x, probs):
        out *= Fraction(pi) ** xi / math.factorial(xi)
    return out


def mv_hypergeom_pmf(x, pool):
    out = Fraction(1)
    for xi, ci in zip(x, pool):
        out *= math.comb(ci, xi)
    return out / math.comb(sum(pool), sum(x))


def add(a, b):
    return tuple(x + y for x, y in zip(a, b))


def exact_chain(p0, N, G, paradigm, n_syn, n_add=None):
    """Exact distribution of generation G's model counts (as a dict composition ->
    probability), by enumerating the chain of docs/simulate.md. Rational arithmetic with
    p0 given as Fractions, so the answer is exact. n_add: synthetic items per generation of
    accumulate(-subsample) (default N)."""
    n_add = N if n_add is None else n_add
    K = len(p0)
    model_given = lambda counts: [Fraction(c, sum(counts)) for c in counts]  # noqa: E731
    # state: (model counts, extra) where extra is the pool (accumulate*) or R (mix)
    states = {}
    for R in compositions(N, K):
        w = multinomial_pmf(R, p0)
        if w:
            states[(R, R)] = states.get((R, R), 0) + w
    for _ in range(2, G + 1):
        nxt = {}
        for (model, extra), w in states.items():
            probs = model_given(model)
            if paradigm == "replace":
                for S in compositions(N, K):
                    q = multinomial_pmf(S, probs)
                    if q:
                        nxt[(S, extra)] = nxt.get((S, extra), 0) + w * q
            elif paradigm == "accumulate":
                for S in compositions(n_add, K):
                    q = multinomial_pmf(S, probs)
                    if q:
                        pool = add(model, S)
                        nxt[(pool, pool)] = nxt.get((pool, pool), 0) + w * q
            elif paradigm == "accumulate-subsample":
                for S in compositions(n_add, K):
                    q = multinomial_pmf(S, probs)
                    if not q:
                        continue
                    pool = add(extra, S)
                    for sub in compositions(N, K):
                        h = mv_hypergeom_pmf(sub, pool) if all(s <= c for s, c in zip(sub, pool)) else 0
                        if h:
                            nxt[(sub, pool)] = nxt.get((sub, pool), 0) + w * q * h
            elif paradigm in ("mix", "fresh"):
                for S in compositions(n_syn, K):
                    q = multinomial_pmf(S, probs)
                    if not q:
                        continue
                    for real in compositions(N - n_syn, K):
                        if paradigm == "mix":
                            h = mv_hypergeom_pmf(real, extra) if all(s <= c for s, c in zip(real, extra)) else 0
                        else:
                            h = multinomial_pmf(real, p0)
                        if h:
                            key = (add(S, real), extra)
                            nxt[key] = nxt.get(key, 0) + w * q * h
        states = nxt
    out = {}
    for (model, _), w in states.items():
        out[model] = out.get(model, 0) + w
    assert sum(out.values()) == 1
    return out


CHAIN_CASES = [
    ("replace", None, 4, "auto", None),
    ("accumulate", None, 4, "auto", None),
    ("accumulate-subsample", None, 4, "items", None),
    ("accumulate-subsample", None, 4, "hypergeometric", None),
    ("accumulate-subsample", None, 4, "items", 0.34),  # one synthetic item per generation
    ("accumulate", None, 4, "auto", 0.67),  # two
    ("mix", 0.34, 4, "items", None),   # n_syn = round(0.34 * 3) = 1
    ("mix", 0.67, 4, "hypergeometric", None),   # n_syn = 2
    ("mix", 0.34, 4, "hypergeometric", None),
    ("fresh", 0.67, 4, "auto", None),
]


@pytest.mark.parametrize("paradigm,alpha,G,method,contribution", CHAIN_CASES)
def test_small_chain_exact(paradigm, alpha, G, method, contribution):
    p0_exact = [Fraction(1, 2), Fraction(3, 10), Fraction(1, 5)]
    p0 = np.array([float(x) for x in p0_exact])
    N = 3
    n_syn = int(math.floor(alpha * N + 0.5)) if alpha is not None else None
    n_add = None if contribution is None else int(math.floor(contribution * N + 0.5))
    exact = exact_chain(p0_exact, N, G, paradigm, n_syn, n_add)
    trials = 20000
    r = collapse.simulate(p0=p0, N=N, generations=G, trials=trials, paradigm=paradigm, alpha=alpha, seed=17,
                          without_replacement=method, contribution=contribution)
    D = (N + (N if n_add is None else n_add) * (G - 1)) if paradigm == "accumulate" else N
    counts = np.rint(r.final_p * D).astype(np.int64)
    assert np.allclose(counts / D, r.final_p)
    # E[sum p^2] and P(support = s) at generation G, each within 3 standard errors
    last = r.metrics[r.metrics["generation"] == G]
    e_s2 = float(sum(w * sum(Fraction(c, D) ** 2 for c in m) for m, w in exact.items()))
    within_3se(last["sum_p2"].to_numpy(), e_s2)
    support = last["support"].to_numpy()
    for s in (1, 2, 3):
        p = float(sum(w for m, w in exact.items() if sum(c > 0 for c in m) == s))
        if 0 < p < 1:
            assert abs((support == s).mean() - p) <= 3 * math.sqrt(p * (1 - p) / trials), (s, p)
        else:
            assert (support == s).mean() == p
    # the whole distribution of generation G's counts: chi-square goodness of fit
    keys = sorted(exact)
    observed = {k: 0 for k in keys}
    for row in map(tuple, counts):
        assert row in observed, row  # never a state of probability 0
        observed[row] += 1
    exp = np.array([float(exact[k]) * trials for k in keys])
    obs = np.array([observed[k] for k in keys], dtype=np.float64)
    big = exp >= 5
    f_obs = np.append(obs[big], obs[~big].sum())
    f_exp = np.append(exp[big], exp[~big].sum())
    if f_exp[-1] < 5:  # fold a thin remainder into the largest cell
        f_obs[np.argmax(f_exp[:-1])] += f_obs[-1]
        f_exp[np.argmax(f_exp[:-1])] += f_exp[-1]
        f_obs, f_exp = f_obs[:-1], f_exp[:-1]
    pvalue = stats.chisquare(f_obs, f_exp).pvalue
    assert pvalue > 1e-3, pvalue


@pytest.mark.parametrize("method", ["items", "hypergeometric"])
def test_mix_alpha_zero_is_the_real_sample_forever(method):
    r = collapse.simulate(p0="zipf", K=30, N=40, generations=8, trials=50, paradigm="mix", alpha=0.0, seed=2,
                          without_replacement=method)
    for col in ("entropy", "sum_p2", "support"):
        piv = r.metrics.pivot(index="trial", columns="generation", values=col)
        for g in range(2, 9):  # summation order may differ: equal up to rounding
            assert np.allclose(piv[g].to_numpy(), piv[1].to_numpy(), rtol=1e-13, atol=0)


def test_exact_chain_matches_closed_form():
    """The chain enumerator itself against the Replace closed form (a check of the checker)."""
    p0 = [Fraction(1, 2), Fraction(3, 10), Fraction(1, 5)]
    N, G = 3, 3
    dist = exact_chain(p0, N, G, "replace", None)
    e_h = 1 - sum(w * sum(Fraction(c, N) ** 2 for c in m) for m, w in dist.items())
    assert e_h == Fraction(N - 1, N) ** G * (1 - sum(p ** 2 for p in p0))


def test_first_extinction_at_generation_one_matches_inclusion_exclusion():
    """P(an outcome is missing from R ~ Mult(N, uniform over K)) = 1 - sum_j (-1)^j C(K, j) (1 - j/K)^N."""
    K, N, trials = 6, 15, 40000
    all_present = sum((-1) ** j * math.comb(K, j) * (1 - j / K) ** N for j in range(K + 1))
    r = collapse.simulate(p0="uniform", K=K, N=N, generations=1, trials=trials, seed=8, keep_final_p=False)
    lost = r.events["first_extinction"].eq(1).fillna(False).to_numpy(dtype=np.float64)
    p = 1 - all_present
    assert abs(lost.mean() - p) <= 3 * math.sqrt(p * (1 - p) / trials), (lost.mean(), p)
    assert r.events["first_extinction"].dropna().eq(1).all()
