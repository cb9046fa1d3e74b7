"""collapse.theory.study at small scale: what docs/theory.md says about the paper's claim.

Under Accumulate-Subsample the divergence from p0 grows past generation 1's (the real
sample's own) for a small contribution as for a full one, to the same level, later;
Mix with a small synthetic fraction and Fresh stay near generation 1's level.
"""

import numpy as np
import pytest

from collapse.errors import CollapseError
from collapse.theory import study


@pytest.fixture(scope="module")
def sweep():
    return study.contribution_sweep((1.0, 0.1), K=30, N=30, generations=300, trials=60, seed=1)


def kl(sweep, paradigm, c, g):
    row = sweep[(sweep.paradigm == paradigm) & (sweep.contribution == c) & (sweep.generation == g)].iloc[0]
    return row.kl_mean, row.kl_se


def test_accumulate_subsample_diverges_for_a_small_contribution_too(sweep):
    start, start_se = kl(sweep, "accumulate-subsample", 1.0, 1)
    assert start == kl(sweep, "mix", 0.1, 1)[0]  # the same real sample R per trial in every cell
    ends = {c: kl(sweep, "accumulate-subsample", c, 300) for c in (1.0, 0.1)}
    for c, (m, se) in ends.items():
        assert m - start > 5 * np.hypot(se, start_se), (c, m, start)
    # the same level at the end, within noise
    (m1, se1), (m01, se01) = ends[1.0], ends[0.1]
    assert abs(m1 - m01) <= 3 * np.hypot(se1, se01)
    reach = study.generations_to_reach(sweep, (start + m1) / 2).set_index(["paradigm", "contribution"])
    assert reach.loc[("accumulate-subsample", 0.1), "generations"] > 2 * reach.loc[("accumulate-subsample", 1.0),
                                                                                  "generations"]


def test_mix_and_fresh_stay_bounded(sweep):
    start = kl(sweep, "accumulate-subsample", 1.0, 1)[0]
    as_end = kl(sweep, "accumulate-subsample", 0.1, 300)[0]
    for paradigm in ("mix", "fresh"):
        m, se = kl(sweep, paradigm, 0.1, 300)
        assert m < start + 0.25 * (as_end - start), (paradigm, m)
        # c = 1 is Replace for both: collapse far past Accumulate-Subsample's level
        assert kl(sweep, paradigm, 1.0, 300)[0] > 2 * as_end
    reach = study.generations_to_reach(sweep, (start + as_end) / 2).set_index(["paradigm", "contribution"])
    assert np.isnan(reach.loc[("mix", 0.1), "generations"]) and np.isnan(reach.loc[("fresh", 0.1), "generations"])


def test_power_law_slope_and_bad_input():
    c = np.array([1, 0.1, 0.01])
    assert study.power_law_slope(c, 5 * c ** -0.75) == pytest.approx(-0.75)
    assert study.power_law_slope([1.0], [2.0]) is None
    with pytest.raises(CollapseError):
        study.contribution_sweep((0.5,), paradigms=("replace",), generations=2, trials=2)
