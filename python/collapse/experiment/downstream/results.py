"""The run's downstream table (downstream.csv + .parquet) and its figure (downstream.png).

The table is rebuilt from the committed generations like metrics.*; the figure draws
accuracy against generation, the untrained baseline dashed."""

from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ...files import atomic_path, read_json, write_text
from .stage import BASELINE, RESULTS_FILE

TABLE = "downstream"  # downstream.csv, downstream.parquet
FIGURE_FILE = "downstream.png"
COLUMNS = ("model", "family", "paradigm", "alpha", "seed", "generation", "task", "finetune_seed", "accuracy",
           "f1_weighted", "bayes_accuracy", "train_examples", "test_examples")


def run_rows(cells: Sequence[Tuple[Dict[str, Any], List[str]]]) -> List[Dict[str, Any]]:
    """Every committed generation's rows, with its cell's keys (cells: (the cell's first
    metrics row, its committed gen folders), as tails.run_tails takes them)."""
    out = []
    for keys, gdirs in cells:
        for gdir in gdirs:
            path = os.path.join(gdir, RESULTS_FILE)
            if os.path.exists(path):
                for row in read_json(path)["rows"]:
                    out.append({**{k: keys.get(k) for k in ("model", "family", "paradigm", "alpha", "seed")}, **row})
    return out


def write_run_table(run_dir: str, cells: Sequence[Tuple[Dict[str, Any], List[str]]]) -> None:
    """downstream.csv and .parquet, both atomic; nothing when no generation has downstream rows."""
    import pandas as pd

    rows = run_rows(cells)
    if not rows:
        return
    df = pd.DataFrame(rows)
    df = df[[c for c in COLUMNS if c in df.columns]].sort_values(
        ["model", "paradigm", "alpha", "seed", "task", "finetune_seed", "generation"], kind="stable")
    write_text(os.path.join(run_dir, TABLE + ".csv"), df.to_csv(index=False, float_format="%.10g"))
    with atomic_path(os.path.join(run_dir, TABLE + ".parquet")) as tmp:
        df.to_parquet(tmp, index=False)


def draw_downstream(run_dir: str) -> Any:
    """One panel per task: mean accuracy over seeds against generation, a line per
    (model, paradigm); each model's baseline dashed; the Bayes rate dotted where known."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd
    from matplotlib.ticker import MaxNLocator

    df = pd.read_parquet(os.path.join(run_dir, TABLE + ".parquet"))
    tasks = sorted(df["task"].unique())
    fig, axes = plt.subplots(1, len(tasks), figsize=(5.5 * len(tasks), 4), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        part = df[df["task"] == task]
        for k, ((model, paradigm), g) in enumerate(part.groupby(["model", "paradigm"], sort=True)):
            color = f"C{k}"
            curve = g[g["generation"] != BASELINE].groupby("generation")["accuracy"].agg(["mean", "std"])
            ax.errorbar(curve.index, curve["mean"], yerr=curve["std"].fillna(0), color=color, marker="o",
                        ms=3, capsize=2, label=f"{model} {paradigm}")
            base = g[g["generation"] == BASELINE]["accuracy"]
            if len(base):
                ax.axhline(base.mean(), color=color, ls="--", lw=1, label=f"{model} untrained baseline")
        bayes = part["bayes_accuracy"].dropna()
        if len(bayes):
            ax.axhline(bayes.mean(), color="k", ls=":", lw=1, label="Bayes-optimal")
        ax.set_title(task)
        ax.set_xlabel("generation")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # generations, never 0.5
        ax.set_ylabel("test accuracy")
    # one legend below the panels, never over a curve
    handles: dict = {}
    for ax in axes[0]:
        for h, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, h)
    rows = -(-len(handles) // 3)
    fig.set_size_inches(5.5 * len(tasks), 4 + 0.25 * rows)
    fig.legend(list(handles.values()), list(handles), loc="lower center", ncol=min(3, len(handles)), fontsize=8,
               frameon=False)
    fig.tight_layout(rect=(0, 0.07 * rows / (1 + 0.06 * rows), 1, 1))
    return fig


def write_figure(run_dir: str, dpi: int = 200) -> Optional[List[str]]:
    """downstream.png and .svg; None when the run has no downstream table."""
    from ..plot import _save

    if not os.path.exists(os.path.join(run_dir, TABLE + ".parquet")):
        return None
    return _save(draw_downstream(run_dir), os.path.join(run_dir, FIGURE_FILE), dpi)
