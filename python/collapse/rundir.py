"""Run directories: atomic writes and the metrics table.

Layout (shared by `collapse run`, `collapse demo`, `collapse simulate`):

    RUN_DIR/config.toml          the resolved configuration
    RUN_DIR/manifest.json        what the run is and which generations are finished
    RUN_DIR/metrics.csv          one row per (paradigm, alpha, seed, generation, ...)
    RUN_DIR/metrics.parquet      the same table
    RUN_DIR/<cell>/gen_NNNN/     per-generation artifacts (models, corpora; compressed)
    RUN_DIR/*.png                plots

Every file is written to a temporary name in the same directory and renamed, so a run
killed at any moment leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict

TIMING_COLUMNS = ("seconds", "fit_seconds", "sample_seconds", "metrics_seconds", "write_seconds", "wall_time")


def atomic_write_bytes(path: str, data: bytes) -> None:
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def atomic_write_text(path: str, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: str, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_json(path: str) -> Dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def write_metrics(run_dir: str, df: "Any") -> None:
    """metrics.csv and metrics.parquet, both atomically."""
    os.makedirs(run_dir, exist_ok=True)
    atomic_write_text(os.path.join(run_dir, "metrics.csv"), df.to_csv(index=False, float_format="%.10g"))
    tmp = os.path.join(run_dir, f"metrics.parquet.tmp.{os.getpid()}")
    df.to_parquet(tmp, index=False)
    os.replace(tmp, os.path.join(run_dir, "metrics.parquet"))


def read_metrics(run_dir: str) -> "Any":
    import pandas as pd

    pq = os.path.join(run_dir, "metrics.parquet")
    if os.path.exists(pq):
        return pd.read_parquet(pq)
    return pd.read_csv(os.path.join(run_dir, "metrics.csv"))
