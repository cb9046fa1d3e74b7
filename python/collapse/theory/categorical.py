"""The categorical collapse process: the C++ kernel's trials, locally or on Ray, as a SimulationResult.

``simulate_categorical(...)`` (``simulate(process="categorical", ...)``) runs the process of
``cpp/include/collapse/simulate.hpp`` (a unigram model over K outcomes refit by maximum
likelihood from N samples each generation) for many independent trials, locally on
threads or on Ray, with the same results for the same seed either way. The kernel keeps
the paradigms' count-level form; collapse.experiment.paradigms is their document-level
definition, and tests/test_paradigms_agree.py checks that the two agree.

Definitions (docs/simulate.md has them in full):

* generation 0 is the truth p0; generation 1 is the MLE on the real sample
  R ~ Multinomial(N, p0), in every paradigm; generation t + 1 is refit on
  replace: N draws from p_t; accumulate: R and all synthetic samples so far;
  accumulate-subsample: N items without replacement from that pool; mix(alpha):
  round(alpha N) draws from p_t plus N - round(alpha N) items without replacement from R;
  fresh(alpha): round(alpha N) draws from p_t plus a new sample of the rest from p0;
  weighted(w): not a refit but (1 - w) S_t / N + w F_t / N, S_t N draws from p_t and F_t
  N new draws from p0 (He, Xu & Cheng's weighted estimator; the categorical and Gaussian
  processes only). contribution=c: accumulate(-subsample) pools round(c N) synthetic
  draws per generation instead of N.
* metrics per trial and generation: entropy (nats), support, sum_p2, kl_to_truth =
  KL(p_t || p0) (nats; finite because p_t's support lies inside p0's), tv_to_truth,
  tail_mass (p_t's mass on the rarest ceil(tail_fraction * |supp p0|) outcomes of p0).
* events per trial: first_extinction (first generation where an outcome of p0's support
  has probability 0), collapse (first generation with support 1) and collapsed_to.
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np

from .. import _core
from ..errors import CollapseError
from ..experiment.paradigms import synthetic_part
from ..experiment.workers import start_local_ray
from ..validate import choice, integer, real
from .result import EXECUTORS, SimulationResult, check_common, check_paradigm_and_weight

METRIC_COLUMNS = ("entropy", "support", "sum_p2", "kl_to_truth", "tv_to_truth", "tail_mass")
P0_TOLERANCE = 1e-6
MAX_FINAL_P_ENTRIES = 2.5e8  # 2 GB of float64


# ---------------------------------------------------------------------------------- p0

def make_p0(kind: str, K: int, zipf_s: float = 1.0, zipf_offset: float = 0.0) -> np.ndarray:
    """A truth over K outcomes: "uniform", or "zipf": p_i proportional to (i + q)^-s, i = 1..K,
    with q = zipf_offset >= 0 (Zipf-Mandelbrot; q = 0 is Zipf's law)."""
    K = integer("K", K, 2)
    if isinstance(zipf_offset, bool) or not (isinstance(zipf_offset, (int, float)) and math.isfinite(zipf_offset)
                                             and zipf_offset >= 0):
        raise CollapseError(f"zipf_offset must be a finite number >= 0, got {zipf_offset!r}")
    if kind == "uniform":
        if zipf_offset != 0:
            raise CollapseError("zipf_offset is only used by p0='zipf'")
        return np.full(int(K), 1.0 / K)
    if kind == "zipf":
        if not (isinstance(zipf_s, (int, float)) and math.isfinite(zipf_s) and zipf_s >= 0):
            raise CollapseError(f"zipf exponent must be a finite number >= 0, got {zipf_s!r}")
        ranks = np.arange(1, int(K) + 1, dtype=np.float64)
        if zipf_offset != 0:
            ranks += float(zipf_offset)
        w = ranks ** (-float(zipf_s))
        return w / w.sum()
    raise CollapseError(f"unknown p0 kind {kind!r} (expected 'uniform', 'zipf' or an array)")


def check_p0(p0: Any) -> np.ndarray:
    """p0 as a float64 vector, or CollapseError saying why it is not a distribution."""
    try:
        arr = np.asarray(p0, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise CollapseError(f"p0 must be an array of probabilities: {e}") from None
    if arr.ndim != 1:
        raise CollapseError(f"p0 must be a 1-d array, got shape {arr.shape}")
    if arr.size < 2:
        raise CollapseError(f"p0 must have at least K = 2 outcomes, got {arr.size}")
    if not np.all(np.isfinite(arr)):
        raise CollapseError("p0 must be finite (it holds NaN or inf)")
    if np.any(arr < 0):
        raise CollapseError(f"p0 must be non-negative (min {arr.min():g})")
    total = float(arr.sum())
    if abs(total - 1.0) > P0_TOLERANCE:
        raise CollapseError(f"p0 must sum to 1 within {P0_TOLERANCE:g}, sums to {total:.10g}")
    return np.ascontiguousarray(arr)



def simulate_categorical(p0: Union[Sequence[float], np.ndarray, str, None] = None, N: Optional[int] = None,
                         generations: Optional[int] = None, trials: int = 1, paradigm: str = "replace",
                         alpha: Optional[float] = None, seed: int = 0, threads: int = 0, executor: str = "local",
                         address: Optional[str] = None, *, K: Optional[int] = None, zipf_s: float = 1.0,
                         zipf_offset: float = 0.0,
                         tail_fraction: float = 0.1, keep_final_p: bool = True, chunks: Optional[int] = None,
                         record_every: int = 1, without_replacement: str = "auto", weight: Optional[float] = None,
                         contribution: Optional[float] = None, record: str = "last") -> SimulationResult:
    """The categorical process; see the module docstring for the definitions.

    p0: the truth (array of K probabilities), or "uniform" / "zipf" with K= (and zipf_s=,
    zipf_offset= q: p_i proportional to (i + q)^-zipf_s, Zipf-Mandelbrot; default 0).
    N: sample size per generation. generations: refits G (generations 0..G are reported).
    alpha: synthetic fraction for "mix" and "fresh" (required there, ignored elsewhere;
    the metrics' alpha column is NaN for paradigms without one).
    threads: threads for the local executor (0: all cores), or per Ray task.
    executor: "local" or "ray" (address None: start a local Ray with 2 CPUs; else connect).
    chunks: number of Ray tasks (default: 4 per CPU of the cluster, at most trials).
    record_every: keep metrics for generations 0, k, 2k, ... and G only (events and
    final_p always follow every generation); saves memory on long runs.
    without_replacement: how accumulate-subsample and mix draw without replacement:
    "hypergeometric" (conditional hypergeometrics over the support), "items" (partial
    Fisher-Yates over one label per item) or "auto" (by cost). All are exact; each is
    reproducible, but they use the random stream differently, so they differ trial by trial.
    weight: w of paradigm "weighted" (required there, refused elsewhere; the metrics'
    weight column is NaN for the other paradigms).
    contribution: accumulate and accumulate-subsample only: each generation adds
    round(contribution N) synthetic draws (at least 1) to the pool instead of N, for
    contribution in (0, 1] (the synthetic contribution per generation; default 1).
    record: "last" (final_p only) or "all" (also fit_p: trials x recorded generations x K,
    every recorded generation's distribution; at most 2^28 numbers).
    """
    a, w = check_paradigm_and_weight(paradigm, alpha, weight)
    if p0 is None:
        raise CollapseError("p0 is required (an array of probabilities, or 'uniform'/'zipf' with K=)")
    if isinstance(p0, str):
        if K is None:
            raise CollapseError(f"p0={p0!r} needs K=")
        p0 = make_p0(p0, K, zipf_s, zipf_offset)
    elif zipf_offset != 0:
        raise CollapseError("zipf_offset is only used by p0='zipf'")
    p0_arr = check_p0(p0)
    if K is not None and int(K) != p0_arr.size:
        raise CollapseError(f"K={K} does not match p0's {p0_arr.size} outcomes")
    N, generations, trials, threads, seed = check_common(N, generations, trials, threads, seed)
    synthetic_per_generation = -1
    if contribution is not None:
        if paradigm not in ("accumulate", "accumulate-subsample"):
            raise CollapseError(f"contribution is only used by accumulate and accumulate-subsample, not {paradigm!r}")
        contribution = real("contribution", contribution, 0.0, 1.0, lo_open=True)
        synthetic_per_generation = max(1, synthetic_part(contribution, N))
    record_every = integer("record_every", record_every, 1)
    choice("record", record, ("last", "all"), what="record")
    recorded = len(range(0, generations + 1, record_every)) + (generations % record_every != 0)
    if record == "all" and trials * recorded * p0_arr.size > MAX_FINAL_P_ENTRIES:
        raise CollapseError(f"record='all' would hold trials x recorded generations x K = "
                            f"{trials * recorded * p0_arr.size:,} numbers; use fewer trials or record_every")
    if without_replacement not in ("auto", "hypergeometric", "items"):
        raise CollapseError(f"without_replacement must be 'auto', 'hypergeometric' or 'items', "
                            f"got {without_replacement!r}")
    if not (isinstance(tail_fraction, (int, float)) and 0.0 < tail_fraction <= 1.0):
        raise CollapseError(f"tail_fraction must lie in (0, 1], got {tail_fraction!r}")
    if keep_final_p and trials * p0_arr.size > MAX_FINAL_P_ENTRIES:
        raise CollapseError(f"final_p would hold trials x K = {trials * p0_arr.size:,} numbers; "
                            "pass keep_final_p=False (or fewer trials)")
    if executor not in EXECUTORS:
        raise CollapseError(f"unknown executor {executor!r} (expected 'local' or 'ray')")
    if address is not None and executor != "ray":
        raise CollapseError("address is only used with executor='ray'")

    kernel_args = dict(N=N, generations=generations, paradigm=paradigm, alpha=1.0 if a is None else a, seed=seed,
                       tail_fraction=float(tail_fraction), keep_final_p=bool(keep_final_p),
                       record_every=record_every, without_replacement=without_replacement,
                       weight=0.5 if w is None else w, synthetic_per_generation=synthetic_per_generation,
                       record_fits=record == "all")
    if executor == "local":
        raw = _run_chunk(p0_arr, 0, trials, threads, kernel_args)
    else:
        raw = _run_ray(p0_arr, trials, threads, kernel_args, address, chunks)
    config = dict(process="categorical", K=int(p0_arr.size), N=N, generations=generations, trials=trials,
                  paradigm=paradigm, alpha=a, weight=w, contribution=contribution, seed=seed, threads=threads,
                  executor=executor, address=address,
                  tail_fraction=float(tail_fraction), record_every=record_every,
                  without_replacement=without_replacement, record=record)
    return _to_result(raw, config)



def _run_chunk(p0: np.ndarray, first_trial: int, trials: int, threads: int, kernel_args: Dict[str, Any]) -> dict:
    return _core.simulate_categorical(p0, kernel_args["N"], kernel_args["generations"], kernel_args["paradigm"],
                                      kernel_args["alpha"], kernel_args["seed"], first_trial, trials, threads,
                                      kernel_args["tail_fraction"], kernel_args["keep_final_p"],
                                      kernel_args["record_every"], kernel_args["without_replacement"],
                                      kernel_args["weight"], kernel_args["synthetic_per_generation"],
                                      kernel_args["record_fits"])


def _chunk_bounds(trials: int, chunks: int) -> List[tuple]:
    chunks = max(1, min(chunks, trials))
    edges = np.linspace(0, trials, chunks + 1).round().astype(np.int64)
    return [(int(lo), int(hi - lo)) for lo, hi in zip(edges[:-1], edges[1:]) if hi > lo]


def _run_ray(p0: np.ndarray, trials: int, threads: int, kernel_args: Dict[str, Any], address: Optional[str],
             chunks: Optional[int]) -> dict:
    try:
        import ray
    except ImportError:
        raise CollapseError("executor='ray' needs the ray package (pip install 'collapse[ray]')") from None
    started_here = False
    if not ray.is_initialized():
        if address is None:
            start_local_ray(2, log_to_driver=False)
        else:
            ray.init(address=address, log_to_driver=False)
        started_here = True
    try:
        if chunks is None:
            cpus = int(ray.cluster_resources().get("CPU", 1))
            chunks = 4 * max(1, cpus)
        task = ray.remote(_run_chunk)
        p0_ref = ray.put(p0)
        bounds = _chunk_bounds(trials, int(chunks))
        parts = ray.get([task.remote(p0_ref, lo, n, max(threads, 1), kernel_args) for lo, n in bounds])
    finally:
        if started_here:
            ray.shutdown()
    return _concatenate(parts)


def _concatenate(parts: List[dict]) -> dict:
    parts = sorted(parts, key=lambda d: d["first_trial"])
    out = {"first_trial": parts[0]["first_trial"]}
    for key in parts[0]:
        if key in ("first_trial", "generation"):
            out[key] = parts[0][key]
            continue
        if parts[0][key] is None:
            out[key] = None
        else:
            out[key] = np.concatenate([p[key] for p in parts], axis=0)
    return out


def _to_result(raw: dict, config: Dict[str, Any]) -> SimulationResult:
    import pandas as pd

    trials, cols = raw["entropy"].shape
    first = int(raw["first_trial"])
    trial_ids = np.arange(first, first + trials, dtype=np.int64)
    alpha = np.nan if config["alpha"] is None else float(config["alpha"])
    data: Dict[str, Any] = {
        "paradigm": pd.Categorical([config["paradigm"]] * (trials * cols)),
        "alpha": np.full(trials * cols, alpha),
        "weight": np.full(trials * cols, np.nan if config["weight"] is None else float(config["weight"])),
        "seed": np.full(trials * cols, config["seed"], dtype=np.uint64 if config["seed"] >= 2**63 else np.int64),
        "trial": np.repeat(trial_ids, cols),
        "generation": np.tile(raw["generation"].astype(np.int64), trials),
    }
    for name in METRIC_COLUMNS:
        data[name] = raw[name].reshape(-1)
    metrics = pd.DataFrame(data)
    metrics["paradigm"] = metrics["paradigm"].astype(str)

    def optional(values: np.ndarray) -> Any:
        return pd.array(np.where(values < 0, None, values).tolist(), dtype="Int64")

    events = pd.DataFrame({
        "paradigm": config["paradigm"], "alpha": alpha, "seed": config["seed"], "trial": trial_ids,
        "first_extinction": optional(raw["first_extinction"]), "collapse": optional(raw["collapse"]),
        "collapsed_to": optional(raw["collapsed_to"]),
    })
    return SimulationResult(metrics=metrics, final_p=raw["final_p"], events=events, config=config,
                            fit_p=raw.get("fit_p"))

