"""The tail in the categorical process, exactly from its fits: bucket survival, extinction generations, missing mass of p0.

The same statistics as the loop's tail (collapse.experiment.tails, with its log2 buckets),
for every paradigm, from a categorical ``SimulationResult`` with ``record="all"`` (every
generation's p_g; generation 1, the fit to the real sample R, must be recorded). An
outcome's original count k is its count in R, N p_1 (every paradigm's generation 1 is R /
N); it is present at generation g when p_g gives it probability > 0 (under Replace: when
the sample drawn from p_{g-1} holds it). Outcomes R lacks (k = 0) have no bucket; they
count in the missing mass, sum of p0 over the outcomes p_g gives 0 (Dohmatob et al.'s
"Hutter" test error). The laws are in collapse.theory.laws (docs/theory.md, "The tail").
"""

from __future__ import annotations

from typing import Any, Tuple

import numpy as np

from ..errors import CollapseError
from ..experiment.tails import bucket_bounds, count_bucket, extinction

# result: a collapse.theory.result.SimulationResult (not imported: result.write_run imports this module)


def _fits(result: Any) -> Tuple[np.ndarray, np.ndarray, int]:
    """(fit_p [trials, recorded, K], recorded generations, N), checked."""
    if result.config.get("process") != "categorical" or result.fit_p is None:
        raise CollapseError("the tail statistics need a categorical result with record='all'")
    gens = np.sort(result.metrics["generation"].unique()).astype(np.int64)
    if 1 not in gens or result.config.get("record_every", 1) != 1:
        raise CollapseError("the tail statistics need every generation recorded (record_every=1)")
    return result.fit_p, gens, int(result.config["N"])


def original_counts(result: Any) -> np.ndarray:
    """int64 [trials, K]: each outcome's count in R (N p_1, exact: p_1 = R / N)."""
    fit_p, gens, N = _fits(result)
    return np.rint(fit_p[:, int(np.flatnonzero(gens == 1)[0])] * N).astype(np.int64)


def bucket_table(result: Any) -> Any:
    """One row per trial, generation g >= 1 and log2 bucket of the count in R (a pandas
    DataFrame): bucket_low, bucket_high, types (R's outcomes in the bucket), present (those
    p_g keeps), survival (present / types; NaN for an empty bucket), share (p_g's mass on
    them) and real_share (R's: their counts over N): the loop's tails.parquet columns."""
    import pandas as pd

    fit_p, gens, N = _fits(result)
    k = original_counts(result)
    seen = k > 0
    bucket = np.where(seen, count_bucket(np.maximum(k, 1)), -1)
    nb = int(bucket.max()) + 1
    trials, G = fit_p.shape[0], int(np.sum(gens >= 1))
    later = fit_p[:, gens >= 1]                                  # [trials, G, K]
    onehot = (bucket[:, :, None] == np.arange(nb)[None, None, :]).astype(np.float64)   # [trials, K, nb]
    types = onehot.sum(axis=1)                                   # [trials, nb]
    present = np.einsum("tgk,tkb->tgb", (later > 0).astype(np.float64), onehot)
    share = np.einsum("tgk,tkb->tgb", later, onehot)
    real_share = np.einsum("tk,tkb->tb", k / N, onehot)
    low, high = bucket_bounds(np.arange(nb))
    with np.errstate(invalid="ignore", divide="ignore"):
        survival = np.where(types[:, None, :] > 0, present / np.maximum(types[:, None, :], 1), np.nan)
    shape = (trials, G, nb)
    return pd.DataFrame({
        "trial": np.repeat(np.arange(trials), G * nb),
        "generation": np.tile(np.repeat(gens[gens >= 1], nb), trials),
        "bucket_low": np.tile(low, trials * G), "bucket_high": np.tile(high, trials * G),
        "types": np.broadcast_to(types[:, None, :], shape).reshape(-1).astype(np.int64),
        "present": present.reshape(-1).astype(np.int64), "survival": survival.reshape(-1),
        "share": share.reshape(-1), "real_share": np.broadcast_to(real_share[:, None, :], shape).reshape(-1),
    })


def extinction_table(result: Any) -> Any:
    """One row per trial and outcome R holds (a pandas DataFrame): outcome, real_count,
    extinct_at (the first generation g >= 2 whose p_g gives it 0; <NA>: alive at every
    recorded generation) and returned (a later p_g gives it mass again: never under Replace,
    where a lost outcome cannot be drawn; possible under Mix, Fresh, Weighted and
    Accumulate-Subsample); the loop's extinction.parquet, from experiment.tails.extinction."""
    import pandas as pd

    fit_p, gens, _ = _fits(result)
    k = original_counts(result)
    later = gens >= 1
    trials, K = k.shape
    # every (trial, outcome) a column of one presence matrix [generations, trials x K]
    presence = (fit_p[:, later] > 0).transpose(1, 0, 2).reshape(int(later.sum()), trials * K)
    at, returned = extinction(presence)
    held = k.reshape(-1) > 0
    at = at[held]
    return pd.DataFrame({
        "trial": np.repeat(np.arange(trials), K)[held], "outcome": np.tile(np.arange(K), trials)[held],
        "real_count": k.reshape(-1)[held],
        "extinct_at": pd.array(np.asarray(np.where(at < 0, None, gens[later][np.maximum(at, 0)])).tolist(), dtype="Int64"),
        "returned": returned[held],
    })


def missing_mass(result: Any) -> Any:
    """One row per trial and recorded generation (a pandas DataFrame): missing_mass, the sum
    of p0 (the recorded generation 0) over the outcomes p_g gives probability 0."""
    import pandas as pd

    fit_p, gens, _ = _fits(result)
    p0 = fit_p[0, 0]
    mass = ((fit_p == 0) * p0).sum(axis=2)                       # [trials, recorded]
    return pd.DataFrame({"trial": np.repeat(np.arange(fit_p.shape[0]), gens.size),
                         "generation": np.tile(gens, fit_p.shape[0]), "missing_mass": mass.reshape(-1)})
