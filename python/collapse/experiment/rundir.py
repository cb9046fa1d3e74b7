"""Run directories: their layout, the metrics table (CSV + Parquet) and the version stamped in manifests.

Layout (shared by `collapse run`, `collapse demo`, `collapse simulate`):

    RUN_DIR/config.toml          the resolved configuration
    RUN_DIR/manifest.json        what the run is and which generations are finished
    RUN_DIR/metrics.csv          one row per (paradigm, alpha, seed, generation, ...)
    RUN_DIR/metrics.parquet      the same table
    RUN_DIR/<cell>/gen_NNNN/     per-generation artifacts (models, corpora; compressed)
    RUN_DIR/*.png                plots

Every file is written with collapse.files (temporary name, fsync, rename, fsync of the
directory), so a run killed at any moment leaves either the old file or the new one, never
half of one, and a commit point never names data that has not reached the disk.
"""

from __future__ import annotations

import os
from typing import Any

from ..files import atomic_path, write_text

COLLAPSE_VERSION = "0.1.0"  # the package version (collapse.__version__), stamped into manifests
TIMING_COLUMNS = ("seconds", "fit_seconds", "sample_seconds", "metrics_seconds", "write_seconds", "wall_time")


def write_metrics(run_dir: str, df: "Any") -> None:
    """metrics.csv and metrics.parquet, both atomically."""
    os.makedirs(run_dir, exist_ok=True)
    write_text(os.path.join(run_dir, "metrics.csv"), df.to_csv(index=False, float_format="%.10g"))
    with atomic_path(os.path.join(run_dir, "metrics.parquet")) as tmp:
        df.to_parquet(tmp, index=False)


def read_metrics(run_dir: str) -> "Any":
    import pandas as pd

    pq = os.path.join(run_dir, "metrics.parquet")
    if os.path.exists(pq):
        return pd.read_parquet(pq)
    return pd.read_csv(os.path.join(run_dir, "metrics.csv"))
