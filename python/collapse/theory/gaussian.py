"""The Gaussian collapse process: a d-dimensional Gaussian refit by maximum likelihood.

``simulate(process="gaussian", dim=d, N=..., generations=..., trials=..., paradigm=...,
alpha=..., weight=..., seed=...)`` runs the C++ kernel of
``cpp/include/collapse/simulate_gaussian.hpp`` (the toy of Shumailov et al. 2024, Suresh
et al. 2024, Kazdan et al. 2024, Dey & Donoho 2024) for many independent trials, one
Philox stream per trial, so results depend on the seed only, never on the thread count.

Definitions (docs/theory.md has them in full), as for the categorical process:
generation 0 is the truth N(mu0, Sigma0) (N(0, I) unless ``mean=`` / ``cov=`` are given);
generation 1 is the ML fit (sample mean, covariance with divisor n) to the real sample R
of N draws; generation t + 1 is the ML fit to replace: N draws from model t; accumulate:
R and every synthetic sample so far; accumulate-subsample: N items drawn without
replacement from that pool; mix(alpha): round(alpha N) draws from model t plus the rest
drawn without replacement from R; fresh(alpha): round(alpha N) draws from model t plus
the rest new draws from the truth; weighted(w): (1 - w) x the fit to N draws from model t
+ w x the fit to N new draws from the truth, for the mean and the covariance.

A batch that is only fitted is drawn as its sufficient statistics (``draws="statistics"``,
the default: the mean from N(0, I/n) and the scatter from a Wishart by Bartlett's
decomposition, exactly the law of n draws' mean and scatter, O(d^2) instead of O(n d^2)),
or item by item (``draws="samples"``); the pools that later draws take subsets of
(accumulate-subsample, mix's R) are always drawn item by item.

Options beyond the paper's process: ``ddof=1`` fits the covariance with divisor n - 1 (as
``np.cov`` does, and He, Xu & Cheng's and Suresh et al.'s code), ``ddof=0`` (the default)
the ML divisor n; ``contribution=c`` draws m = max(1, round(c N)) synthetic items per
generation instead of N (accumulate, accumulate-subsample: added to the pool, c in (0, 1],
as in the categorical process; weighted: S has m draws, He, Xu & Cheng's m != n, any c > 0);
``record="all"`` keeps every recorded generation's fitted mean and covariance
(``fit_mean``, ``fit_cov``), not only generation G's.

Metrics per trial and generation: mean_sq_error = ||m_t - mu0||^2, variance_ratio =
tr C_t / tr Sigma0, log_det_ratio = log det C_t - log det Sigma0: finite whenever C_t is
mathematically non-singular (a chain of fits to the previous model's draws alone carries
the Cholesky factor and log det through generations instead of refactoring an
ill-conditioned C_t), -inf where it is singular (every fit to N <= dim items).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from .. import _core
from ..errors import CollapseError
from ..experiment.paradigms import synthetic_part
from ..validate import choice, integer, real
from .result import SimulationResult, check_common, check_paradigm_and_weight

GAUSSIAN_METRICS = ("mean_sq_error", "variance_ratio", "log_det_ratio")
MAX_FINAL_COV_ENTRIES = 2**28  # the kernel's kMaxGaussianFinalValues (2 GiB of float64)
MAX_METRIC_ROWS = 2**28  # the kernel's kMaxGaussianMetricRows: trials x recorded generations
MAX_DIM = 1024  # the kernel's kMaxGaussianDim
DRAWS = ("statistics", "samples")
RECORD = ("last", "all")
CONTRIBUTION_PARADIGMS = ("accumulate", "accumulate-subsample", "weighted")


@dataclass
class GaussianResult(SimulationResult):
    """What ``simulate(process="gaussian", ...)`` returns.

    metrics: one row per (trial, recorded generation): paradigm, alpha, weight, seed,
    trial, generation, mean_sq_error, variance_ratio, log_det_ratio.
    final_mean: trials x dim, final_cov: trials x dim x dim (generation G's fits).
    fit_mean: trials x recorded generations x dim, fit_cov: ... x dim x dim (record="all"
    only, else None; the recorded generations are metrics' generation column, in order).
    final_p is None and events empty (the categorical process's fields).
    """

    final_mean: Optional[np.ndarray] = None
    final_cov: Optional[np.ndarray] = None
    fit_mean: Optional[np.ndarray] = None
    fit_cov: Optional[np.ndarray] = None

    def summary(self, rows: int = 6) -> Any:
        """Mean of each metric over trials at a few generations (first, last, between)."""
        g_max = int(self.metrics["generation"].max())
        gens = sorted({int(round(x)) for x in np.linspace(0, g_max, min(rows, g_max + 1))})
        sub = self.metrics[self.metrics["generation"].isin(gens)]
        return sub.groupby("generation")[list(GAUSSIAN_METRICS)].mean()


def _truth(dim: Optional[int], mean: Any, cov: Any) -> tuple:
    """(mu0, Sigma0) as float64 arrays, checked: shapes agree, Sigma0 symmetric positive definite."""
    sizes = []
    if mean is not None:
        try:
            mu = np.asarray(mean, dtype=np.float64)
        except (TypeError, ValueError) as e:
            raise CollapseError(f"mean must be an array of numbers: {e}") from None
        if mu.ndim == 0:
            mu = mu.reshape(1)
        if mu.ndim != 1:
            raise CollapseError(f"mean must be a vector, got shape {mu.shape}")
        sizes.append(("mean", mu.size))
    if cov is not None:
        try:
            sigma = np.asarray(cov, dtype=np.float64)
        except (TypeError, ValueError) as e:
            raise CollapseError(f"cov must be an array of numbers: {e}") from None
        if sigma.ndim == 0:
            sigma = sigma.reshape(1, 1)
        if sigma.ndim != 2 or sigma.shape[0] != sigma.shape[1]:
            raise CollapseError(f"cov must be a square matrix, got shape {sigma.shape}")
        sizes.append(("cov", sigma.shape[0]))
    if dim is not None:
        d = integer("dim", dim, 1)
        sizes.insert(0, ("dim", d))
    elif sizes:
        d = sizes[0][1]
    else:
        d = 1
    for name, size in sizes:
        if size != d:
            raise CollapseError(f"{name} has dimension {size}, but {sizes[0][0]} says {d}")
    if d > MAX_DIM:
        raise CollapseError(f"dim must be <= {MAX_DIM}, got {d}")
    mu = np.zeros(d) if mean is None else mu
    sigma = np.eye(d) if cov is None else sigma
    if not (np.all(np.isfinite(mu)) and np.all(np.isfinite(sigma))):
        raise CollapseError("mean and cov must be finite")
    if not np.allclose(sigma, sigma.T, rtol=1e-12, atol=0):
        raise CollapseError("cov must be symmetric")
    try:
        np.linalg.cholesky(sigma)
    except np.linalg.LinAlgError:
        raise CollapseError("cov must be positive definite") from None
    return np.ascontiguousarray(mu), np.ascontiguousarray(sigma)


def simulate_gaussian(*, dim: Optional[int] = None, N: Any = None, generations: Any = None, trials: int = 1,
                      paradigm: str = "replace", alpha: Optional[float] = None, weight: Optional[float] = None,
                      seed: int = 0, threads: int = 0, mean: Any = None, cov: Any = None, record_every: int = 1,
                      executor: str = "local", draws: str = "statistics", ddof: int = 0,
                      contribution: Optional[float] = None, record: str = "last") -> GaussianResult:
    """Simulate the Gaussian process; see the module docstring for the definitions.

    dim: the dimension d (default: from mean/cov, else 1). mean, cov: the truth (default
    N(0, I)). N: sample size per generation. generations: refits G (generations 0..G are
    reported). alpha: synthetic fraction for mix and fresh. weight: w for weighted.
    threads: 0 = all cores. record_every: keep generations 0, k, 2k, ... and G.
    draws: "statistics" (sufficient statistics drawn directly) or "samples" (every item);
    the same process, different uses of the random stream.
    ddof: 0 (ML covariance, divisor n) or 1 (unbiased, divisor n - 1). contribution: m =
    max(1, round(contribution N)) synthetic draws per generation (accumulate(-subsample):
    in (0, 1]; weighted: > 0). record: "last" (final_mean/final_cov only) or "all" (also
    fit_mean/fit_cov at every recorded generation).
    """
    if executor != "local":
        raise CollapseError("the Gaussian process runs on the local executor only (executor='local')")
    a, w = check_paradigm_and_weight(paradigm, alpha, weight)
    mu, sigma = _truth(dim, mean, cov)
    d = mu.size
    N, generations, trials, threads, seed = check_common(N, generations, trials, threads, seed)
    record_every = integer("record_every", record_every, 1)
    choice("draws", draws, DRAWS, what="draws")
    choice("record", record, RECORD, what="record")
    if isinstance(ddof, bool) or ddof not in (0, 1):
        raise CollapseError(f"ddof must be 0 (ML covariance) or 1 (unbiased, np.cov's), got {ddof!r}")
    if ddof == 1 and N < 2:
        raise CollapseError(f"ddof=1 needs N >= 2 (the divisor N - 1), got N = {N}")
    m = _synthetic_per_generation(contribution, paradigm, N, ddof)
    recorded = len(range(0, generations + 1, record_every)) + (generations % record_every != 0)
    if trials * recorded > MAX_METRIC_ROWS:
        raise CollapseError(f"the metrics would hold trials x recorded generations = {trials * recorded:,} rows "
                            f"(at most 2^28); use fewer trials or a larger record_every")
    if trials * d * d > MAX_FINAL_COV_ENTRIES:
        raise CollapseError(f"final_cov would hold trials x dim^2 = {trials * d * d:,} numbers; use fewer trials")
    if record == "all" and trials * recorded * d * d > MAX_FINAL_COV_ENTRIES:
        raise CollapseError(f"record='all' would hold trials x recorded generations x dim^2 = "
                            f"{trials * recorded * d * d:,} numbers (at most 2^28); use fewer trials or record_every")
    if paradigm == "accumulate-subsample" and (N + generations * (N if m < 0 else m)) * d > 2**25:
        raise CollapseError("accumulate-subsample keeps (generations + 1) x N x dim values per thread; that is "
                            "above 2^25 (256 MiB): use fewer generations or a smaller N")
    if paradigm == "mix" and N * d > 2**25:
        raise CollapseError("mix keeps the real sample (N x dim values) per thread; N x dim is above 2^25")

    raw = _core.simulate_gaussian(mu, sigma, N, generations, paradigm, 1.0 if a is None else a,
                                  0.5 if w is None else w, seed, 0, trials, threads, record_every, draws, ddof, m,
                                  record == "all")
    config = dict(process="gaussian", dim=int(d), N=N, generations=generations, trials=trials, paradigm=paradigm,
                  alpha=a, weight=w, seed=seed, threads=threads, executor=executor, record_every=record_every,
                  draws=draws, mean=mu.tolist(), cov=sigma.tolist(), ddof=ddof, contribution=contribution,
                  record=record)
    return _to_result(raw, config)


def _synthetic_per_generation(contribution: Optional[float], paradigm: str, N: int, ddof: int) -> int:
    """The kernel's synthetic_per_generation: max(1, round(contribution N)), or -1 (N) when not given."""
    if contribution is None:
        return -1
    if paradigm not in CONTRIBUTION_PARADIGMS:
        raise CollapseError(f"contribution is only used by accumulate, accumulate-subsample and weighted, "
                            f"not {paradigm!r}")
    if paradigm == "weighted":
        contribution = real("contribution", contribution, 0.0, None, lo_open=True)
    else:
        contribution = real("contribution", contribution, 0.0, 1.0, lo_open=True)
    m = max(1, synthetic_part(contribution, N))
    if paradigm == "weighted" and ddof == 1 and m < 2:
        raise CollapseError(f"contribution={contribution:g} gives m = {m} synthetic draws; ddof=1 needs m >= 2")
    return m


def _to_result(raw: dict, config: dict) -> GaussianResult:
    import pandas as pd

    trials, cols = raw["mean_sq_error"].shape
    trial_ids = np.arange(trials, dtype=np.int64)
    nan_or = lambda v: np.nan if v is None else float(v)  # noqa: E731
    data = {
        "paradigm": [config["paradigm"]] * (trials * cols),
        "alpha": np.full(trials * cols, nan_or(config["alpha"])),
        "weight": np.full(trials * cols, nan_or(config["weight"])),
        "seed": np.full(trials * cols, config["seed"], dtype=np.uint64 if config["seed"] >= 2**63 else np.int64),
        "trial": np.repeat(trial_ids, cols),
        "generation": np.tile(raw["generation"].astype(np.int64), trials),
    }
    for name in GAUSSIAN_METRICS:
        data[name] = raw[name].reshape(-1)
    events = pd.DataFrame({"trial": trial_ids})
    return GaussianResult(metrics=pd.DataFrame(data), final_p=None, events=events, config=config,
                          final_mean=raw["final_mean"], final_cov=raw["final_cov"],
                          fit_mean=raw.get("fit_mean"), fit_cov=raw.get("fit_cov"))
