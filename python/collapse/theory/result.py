"""What every simulated process returns (SimulationResult), its run directory, and the checks all processes share."""

from __future__ import annotations

import io
import math
import os
import time
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Tuple

import numpy as np

from ..errors import CollapseError
from ..experiment.paradigms import PARADIGMS as LOOP_PARADIGMS, check_paradigm
from ..experiment.rundir import COLLAPSE_VERSION, write_metrics
from ..experiment.tails import EXTINCTION_FILE, TAILS_FILE
from ..files import write_bytes, write_json, write_text, write_toml
from ..validate import choice, integer, real, seed as check_seed, threads as check_threads
from .tails import bucket_table, extinction_table, missing_mass

EXECUTORS = ("local", "ray")
# The loop's paradigms, plus weighted (He, Xu & Cheng's weighted estimate), which is not a
# refit on a corpus and exists in the categorical and Gaussian processes only.
PARADIGMS = LOOP_PARADIGMS + ("weighted",)


def check_common(N: Any, generations: Any, trials: Any, threads: Any, seed: Any) -> Tuple[int, int, int, int, int]:
    """The arguments every process takes: N, generations, trials >= 1; threads >= 0; a seed."""
    return (integer("N", N, 1), integer("generations", generations, 1), integer("trials", trials, 1),
            check_threads("threads", threads), check_seed("seed", seed))


def check_paradigm_and_weight(paradigm: Any, alpha: Any, weight: Any) -> Tuple[Optional[float], Optional[float]]:
    """(alpha, weight) for a simulator paradigm: alpha as experiment.paradigms.check_paradigm
    says (None where unused), weight in [0, 1] for 'weighted' (required there, refused
    elsewhere)."""
    choice("paradigm", paradigm, PARADIGMS, what="paradigm")
    if paradigm != "weighted":
        if weight is not None:
            raise CollapseError(f"weight is only used by paradigm 'weighted', not {paradigm!r}")
        return check_paradigm(paradigm, alpha), None
    if alpha is not None:
        raise CollapseError("paradigm 'weighted' takes weight, not alpha")
    if weight is None:
        raise CollapseError("paradigm 'weighted' needs weight (the weight w of the fresh real estimate, in [0, 1])")
    return None, real("weight", weight, 0.0, 1.0)


@dataclass
class SimulationResult:
    """What ``simulate`` returns.

    metrics: one row per (trial, generation), generations 0..G.
    final_p: trials x K array of generation G's distributions (None if not kept).
    events: one row per trial: first_extinction, collapse, collapsed_to (<NA>: not in the run).
    config: the resolved arguments.
    fit_p: trials x recorded generations x K, every recorded generation's distribution
    (the categorical process with record="all"; else None).
    """

    metrics: Any
    final_p: Optional[np.ndarray]
    events: Any
    config: Dict[str, Any] = field(default_factory=dict)
    fit_p: Optional[np.ndarray] = None

    def summary(self, rows: int = 6) -> Any:
        """Mean of each metric over trials at a few generations (first, last, between)."""
        g_max = int(self.metrics["generation"].max())
        gens = sorted({int(round(x)) for x in np.linspace(0, g_max, min(rows, g_max + 1))})
        sub = self.metrics[self.metrics["generation"].isin(gens)]
        cols = [c for c in ("entropy", "support", "sum_p2", "kl_to_truth", "tv_to_truth", "tail_mass",
                            "cross_entropy", "kl_to_source", "kl_exact", "perplexity", "oov_rate", "mean_length")
                if c in sub.columns]
        table = sub.groupby("generation")[cols].mean()
        if "collapse" in self.events.columns:
            collapsed = self.events["collapse"]
            table["collapsed"] = [float(((collapsed.notna()) & (collapsed <= g)).mean()) for g in table.index]
        return table



def _write_tails(result: SimulationResult, out_dir: str) -> "list[str]":
    """tails.parquet (bucket rows, with missing_mass per trial and generation) and
    extinction.parquet of a categorical result with every generation recorded
    (collapse.theory.tails; the loop's file names)."""

    rows = bucket_table(result).merge(missing_mass(result), on=["trial", "generation"], how="left")
    for name, table in ((TAILS_FILE, rows), (EXTINCTION_FILE, extinction_table(result))):
        buf = io.BytesIO()
        table.to_parquet(buf, index=False)
        write_bytes(os.path.join(out_dir, name), buf.getvalue())
    return [TAILS_FILE, EXTINCTION_FILE]


def write_run(result: SimulationResult, out_dir: str, save_final_p: bool = False) -> None:
    """The run-directory format (collapse.experiment.rundir): config.toml, manifest.json,
    metrics.csv + metrics.parquet, events.csv, final_p.npy if asked, and fits.npz (generation,
    fit_p, or fit_mean and fit_cov) for a result with record="all" (categorical, every
    generation recorded: also tails.parquet and extinction.parquet); every file written
    with collapse.files (atomic and durable)."""
    os.makedirs(out_dir, exist_ok=True)
    write_toml(os.path.join(out_dir, "config.toml"), {"simulate": result.config},
               header="# collapse simulate: resolved configuration\n")
    write_metrics(out_dir, result.metrics)
    write_text(os.path.join(out_dir, "events.csv"), result.events.to_csv(index=False))
    files = ["config.toml", "metrics.csv", "metrics.parquet", "events.csv"]
    if save_final_p and result.final_p is not None:
        buf = io.BytesIO()
        np.save(buf, result.final_p)
        write_bytes(os.path.join(out_dir, "final_p.npy"), buf.getvalue())
        files.append("final_p.npy")
    fits = {"fit_p": result.fit_p} if result.fit_p is not None else {}  # record="all"
    if getattr(result, "fit_mean", None) is not None:
        fits = {"fit_mean": getattr(result, "fit_mean"), "fit_cov": getattr(result, "fit_cov")}
    if fits:
        buf = io.BytesIO()
        np.savez(buf, generation=np.sort(result.metrics["generation"].unique()), **fits)
        write_bytes(os.path.join(out_dir, "fits.npz"), buf.getvalue())
        files.append("fits.npz")
    if result.fit_p is not None and result.config.get("record_every", 1) == 1:
        files += _write_tails(result, out_dir)
    manifest = {
        "kind": "simulate", "process": result.config.get("process"), "collapse_version": COLLAPSE_VERSION,
        "generations": result.config.get("generations"), "generations_finished": result.config.get("generations"),
        "complete": True, "files": files, "name": os.path.basename(os.path.abspath(out_dir)),
        "columns": list(result.metrics.columns), "timing_columns": [], "written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "config": {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in result.config.items()},
    }
    write_json(os.path.join(out_dir, "manifest.json"), manifest)
