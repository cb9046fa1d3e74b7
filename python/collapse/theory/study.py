"""The paper's claim as a curve: divergence from p0 against the synthetic contribution.

arXiv 2412.14872 claims that once a corpus takes in generated data and no new real data
arrives, collapse is inevitable after enough time, however small each generation's
contribution. ``contribution_sweep`` measures that on the categorical process with a
finite real set R (N samples): KL(p_t || p0) over generations for each contribution c,
under Accumulate-Subsample (each generation adds round(c N) synthetic items to the pool
R + S_1 + ...; the model is refit on N items drawn from it), Mix (a fraction c of every
training set is synthetic, the rest a new subset of R) and Fresh (as Mix, but the real
part is new real data: the control). ``generations_to_reach`` turns the curves into the
generations needed to reach a fixed KL.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable, Optional, Sequence

import numpy as np

from ..errors import CollapseError
from .categorical import make_p0
from .simulator import simulate

if TYPE_CHECKING:  # pandas is imported where a table is built
    import pandas as pd

STUDY_PARADIGMS = ("accumulate-subsample", "mix", "fresh")
DEFAULT_CONTRIBUTIONS = (1.0, 0.5, 0.2, 0.1, 0.05, 0.02, 0.01)


def contribution_sweep(contributions: Sequence[float] = DEFAULT_CONTRIBUTIONS,
                       paradigms: Iterable[str] = STUDY_PARADIGMS, *, K: int = 100, N: int = 100,
                       zipf_s: float = 1.0, generations: int = 2000, trials: int = 100, seed: int = 0,
                       threads: int = 0, record_every: int = 1) -> "pd.DataFrame":
    """Mean and standard error over trials of KL(p_t || p0), support and tail mass, per
    (paradigm, contribution, generation): a DataFrame with columns paradigm, contribution,
    generation, kl_mean, kl_se, support_mean, tail_mass_mean. p0 is Zipf(zipf_s) over K
    outcomes; every cell uses the same seed (so the same real sample R per trial)."""
    import pandas as pd

    p0 = make_p0("zipf", K, zipf_s)
    parts = []
    for paradigm in paradigms:
        if paradigm not in STUDY_PARADIGMS:
            raise CollapseError(f"paradigm must be one of {', '.join(STUDY_PARADIGMS)}, got {paradigm!r}")
        for c in contributions:
            kw = dict(contribution=c) if paradigm == "accumulate-subsample" else dict(alpha=c)
            r = simulate(p0=p0, N=N, generations=generations, trials=trials, paradigm=paradigm, seed=seed,
                         threads=threads, keep_final_p=False, record_every=record_every, **kw)
            g = r.metrics.groupby("generation")
            stats = pd.DataFrame({
                "kl_mean": g["kl_to_truth"].mean(),
                "kl_se": g["kl_to_truth"].std(ddof=1) / np.sqrt(trials),
                "support_mean": g["support"].mean(),
                "tail_mass_mean": g["tail_mass"].mean(),
            }).reset_index()
            stats.insert(0, "contribution", float(c))
            stats.insert(0, "paradigm", paradigm)
            parts.append(stats)
    return pd.concat(parts, ignore_index=True)


def generations_to_reach(sweep: "pd.DataFrame", threshold: float) -> "object":
    """Per (paradigm, contribution): the first recorded generation whose mean KL reaches
    `threshold` (NaN if none within the run)."""
    import pandas as pd

    rows = []
    for (paradigm, c), part in sweep.groupby(["paradigm", "contribution"], sort=False):
        part = part.sort_values("generation")
        hit = part.loc[part["kl_mean"] >= threshold, "generation"]
        rows.append(dict(paradigm=paradigm, contribution=c,
                         generations=float(hit.iloc[0]) if len(hit) else np.nan,
                         kl_final=float(part["kl_mean"].iloc[-1]), kl_final_se=float(part["kl_se"].iloc[-1])))
    return pd.DataFrame(rows)


def power_law_slope(x: Sequence[float], y: Sequence[float]) -> Optional[float]:
    """Least-squares slope of log y against log x over the finite points (None if < 2)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    ok = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    if ok.sum() < 2:
        return None
    return float(np.polyfit(np.log(x[ok]), np.log(y[ok]), 1)[0])
