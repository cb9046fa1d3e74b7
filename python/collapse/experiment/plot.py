"""Plots of run directories: each metric against generation, mean and min-max band per group.

One line per (run, family, order, paradigm, alpha, filter) group, the line the mean over seeds (and
over trials for `collapse simulate` runs) and the band their minimum to maximum."""

from __future__ import annotations

import math
import os
from typing import List, Optional, Sequence

from ..errors import CollapseError
from ..files import atomic_path
from .rundir import read_metrics

EXPERIMENT_DEFAULT = ("heldout_ppl", "vocab_size", "kl_unigram", "kl_truth")
SIMULATE_DEFAULT = ("entropy", "support", "kl_to_truth", "tv_to_truth", "mean_sq_error", "variance_ratio")  # categorical, Gaussian
GROUP_COLUMNS = ("family", "order", "paradigm", "alpha", "filter_keep")
REPLICATE_COLUMNS = ("seed", "trial")


def _load(run_dir: str):  # noqa: ANN202
    if not os.path.isdir(run_dir):
        raise CollapseError(f"no such run directory: {run_dir}")
    if not (os.path.exists(os.path.join(run_dir, "metrics.parquet"))
            or os.path.exists(os.path.join(run_dir, "metrics.csv"))):
        raise CollapseError(f"{run_dir}: no metrics.csv or metrics.parquet")
    df = read_metrics(run_dir)
    if "generation" not in df.columns:
        raise CollapseError(f"{run_dir}: the metrics table has no 'generation' column")
    return df


def _label(key: dict, multi_run: bool) -> str:
    parts = []
    if multi_run:
        parts.append(str(key["run"]))
    if "family" in key and isinstance(key["family"], str):
        fam = key["family"]
        if key.get("order") is not None and not (isinstance(key["order"], float) and math.isnan(key["order"])):
            fam += f"-{int(key['order'])}"
        parts.append(fam)
    parts.append(str(key.get("paradigm", "")))
    a = key.get("alpha")
    if a is not None and not (isinstance(a, float) and math.isnan(a)):
        parts.append(f"α={a:g}")
    k = key.get("filter_keep")
    if k is not None and not (isinstance(k, float) and math.isnan(k)):
        parts.append(f"keep={k:g}")
    return " ".join(p for p in parts if p)


def plot_runs(run_dirs: Sequence[str], output: str, metrics: Optional[Sequence[str]] = None) -> List[str]:
    """Write a PNG with one panel per metric; returns the metrics drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    if not run_dirs:
        raise CollapseError("plot: give at least one run directory")
    frames = []
    for i, d in enumerate(run_dirs):
        df = _load(d).copy()
        df["run"] = os.path.basename(os.path.normpath(d)) or f"run{i}"
        if list(run_dirs).count(d) > 1 or [os.path.basename(os.path.normpath(x)) for x in run_dirs].count(df["run"][0]) > 1:
            df["run"] = f"{df['run'][0]}#{i}"
        frames.append(df)
    data = pd.concat(frames, ignore_index=True, sort=False)
    if metrics:
        for m in metrics:
            if m not in data.columns:
                raise CollapseError(f"--metric: no column {m!r} in the metrics table "
                                    f"(columns: {', '.join(c for c in data.columns if c != 'run')})")
        chosen = list(metrics)
    else:
        defaults = SIMULATE_DEFAULT if "trial" in data.columns and "heldout_ppl" not in data.columns else EXPERIMENT_DEFAULT
        chosen = [m for m in defaults if m in data.columns and data[m].notna().any()]
        if not chosen:
            raise CollapseError("plot: none of the default metrics is in the table; pass --metric NAME")
    groups = ["run"] + [c for c in GROUP_COLUMNS if c in data.columns]
    keyed = data.copy()
    for c in groups:
        if keyed[c].dtype.kind == "f":
            keyed[c] = keyed[c].fillna(-1.0)
        else:
            keyed[c] = keyed[c].fillna("")
    multi_run = len(run_dirs) > 1
    ncols = min(2, len(chosen))
    nrows = int(math.ceil(len(chosen) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(6.0 * ncols, 3.8 * nrows), squeeze=False)
    for ax, metric in zip(axes.flat, chosen):
        for key, part in keyed.groupby(groups, sort=True):
            key = dict(zip(groups, key if isinstance(key, tuple) else (key,)))
            for c in ("alpha", "order", "filter_keep"):
                if c in key and key[c] == -1.0:
                    key[c] = None
            stats = part.groupby("generation")[metric].agg(["mean", "min", "max"]).sort_index()
            if stats["mean"].isna().all():
                continue
            x = stats.index.to_numpy()
            line, = ax.plot(x, stats["mean"].to_numpy(), label=_label(key, multi_run), linewidth=1.6)
            ax.fill_between(x, stats["min"].to_numpy(), stats["max"].to_numpy(), color=line.get_color(), alpha=0.2,
                            linewidth=0)
        ax.set_xlabel("generation")
        ax.set_ylabel(metric)
        ax.set_title(metric)
        ax.grid(True, alpha=0.3)
    for ax in list(axes.flat)[len(chosen):]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=min(4, len(labels)), fontsize=8,
                   bbox_to_anchor=(0.5, 0.0))
    replicate = [c for c in REPLICATE_COLUMNS if c in data.columns]
    fig.suptitle(f"mean over {' and '.join(replicate) or 'runs'}; band: min to max", fontsize=9)
    fig.tight_layout(rect=(0, 0.06 + 0.02 * (len(labels) // 4), 1, 0.97))
    out_dir = os.path.dirname(os.path.abspath(output))
    os.makedirs(out_dir, exist_ok=True)
    with atomic_path(output, suffix=os.path.splitext(output)[1] or ".png") as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return chosen
