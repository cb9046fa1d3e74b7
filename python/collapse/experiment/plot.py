"""Plots of run directories: each metric against generation, mean and min-max band per group.

One line per (run, model, family, order, paradigm, alpha, filter) group, the line the mean
over seeds (and over trials for `collapse simulate` runs) and the band their minimum to
maximum; integer generation ticks, axis labels in words (METRIC_LABELS), one legend for
the whole figure; written as PNG and, next to it, SVG (no timestamps in either)."""

from __future__ import annotations

import math
import os
from typing import List, Optional, Sequence

from ..errors import CollapseError
from ..files import atomic_path
from .rundir import read_metrics

EXPERIMENT_DEFAULT = ("heldout_bits_per_word", "kl_truth", "vocab_size", "distinct_2")
SIMULATE_DEFAULT = ("entropy", "support", "kl_to_truth", "tv_to_truth", "mean_sq_error", "variance_ratio")  # categorical, Gaussian
GROUP_COLUMNS = ("model", "family", "order", "paradigm", "alpha", "filter_keep")
METRIC_LABELS = {  # metric: (panel title, y-axis label)
    "heldout_bits_per_word": ("held-out real stories: bits per word", "bits per word"),
    "kl_truth": ("KL(true source ‖ model) on held-out stories", "nats per story"),
    "kl_truth_se": ("standard error of the KL estimate", "nats per story"),
    "vocab_size": ("vocabulary of the sample", "word types"),
    "distinct_1": ("distinct-1 of the sample", "unique words / words"),
    "distinct_2": ("distinct-2 of the sample", "unique bigrams / bigrams"),
    "distinct_3": ("distinct-3 of the sample", "unique trigrams / trigrams"),
    "distinct_4": ("distinct-4 of the sample", "unique 4-grams / 4-grams"),
    "heldout_ppl": ("held-out perplexity (the family's own units)", "perplexity"),
    "paper_ppl": ("the paper's perplexity (evaluate_ppl.py)", "perplexity per BPE token"),
    "self_ppl": ("perplexity of the model's own sample", "perplexity"),
    "entropy": ("unigram entropy of the sample", "bits"),
    "types_lost": ("real word types missing from the sample", "word types"),
    "kl_unigram": ("unigram KL(real ‖ sample)", "bits"),
    "kl_unigram_truth": ("unigram KL(true source ‖ sample)", "bits"),
    "tv_unigram": ("unigram total variation (real, sample)", "total variation"),
    "rare_mass": ("mass of rare real words in the sample", "fraction of tokens"),
    "repetition": ("within-story repeated 4-grams", "fraction"),
    "mean_length": ("mean story length of the sample", "words"),
    "support": ("support size", "outcomes"),
    "kl_to_truth": ("KL(p0 ‖ p_t)", "nats"),
    "tv_to_truth": ("total variation (p0, p_t)", "total variation"),
    "mean_sq_error": ("squared error of the fitted mean", "squared distance"),
    "variance_ratio": ("fitted / true covariance trace", "ratio"),
}
PARADIGM_NAMES = {"replace": "Replace", "accumulate": "Accumulate", "accumulate-subsample": "Accumulate-Subsample",
                  "mix": "Mix", "fresh": "Fresh"}
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
    model = key.get("model")
    if isinstance(model, str) and model and model != key.get("family"):
        parts.append(model)
    elif "family" in key and isinstance(key["family"], str):
        fam = key["family"]
        if key.get("order") is not None and not (isinstance(key["order"], float) and math.isnan(key["order"])):
            fam += f"-{int(key['order'])}"
        parts.append(fam)
    parts.append(PARADIGM_NAMES.get(str(key.get("paradigm", "")), str(key.get("paradigm", ""))))
    a = key.get("alpha")
    if a is not None and not (isinstance(a, float) and math.isnan(a)):
        parts.append(f"α={a:g}")
    k = key.get("filter_keep")
    if k is not None and not (isinstance(k, float) and math.isnan(k)):
        parts.append(f"keep={k:g}")
    return " ".join(p for p in parts if p)


def plot_runs(run_dirs: Sequence[str], output: str, metrics: Optional[Sequence[str]] = None) -> List[str]:
    """Write a PNG (output) and an SVG next to it with one panel per metric; returns the metrics drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd
    from matplotlib.ticker import MaxNLocator

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
    # one colour per model (everything but the paradigm), one line style per paradigm
    colours: dict = {}
    styles = {"replace": "-", "accumulate-subsample": "--", "accumulate": ":", "mix": "-.", "fresh": (0, (5, 1, 1, 1))}
    legend: dict = {}
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
            paradigm = str(key.get("paradigm", ""))
            colour_key = _label({k: v for k, v in key.items() if k != "paradigm"}, multi_run)
            colour = colours.setdefault(colour_key, f"C{len(colours) % 10}")
            label = _label(key, multi_run)
            line, = ax.plot(x, stats["mean"].to_numpy(), label=label, linewidth=1.7, color=colour,
                            linestyle=styles.get(paradigm, "-"))
            ax.fill_between(x, stats["min"].to_numpy(), stats["max"].to_numpy(), color=colour, alpha=0.18,
                            linewidth=0)
            legend.setdefault(label, line)
        title, unit = METRIC_LABELS.get(metric, (metric.replace("_", " "), ""))
        ax.set_xlabel("generation")
        ax.set_ylabel(unit or title, fontsize=9)
        ax.set_title(title, fontsize=10)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
    for ax in list(axes.flat)[len(chosen):]:
        ax.set_visible(False)
    labels, handles = list(legend), list(legend.values())
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=min(4, len(labels)), fontsize=8,
                   bbox_to_anchor=(0.5, 0.0))
    replicate = [c for c in REPLICATE_COLUMNS if c in data.columns]
    n_rep = max((int(data[c].nunique()) for c in replicate), default=1)
    fig.suptitle(f"line: mean over {' and '.join(f'{n_rep} {c}s' for c in replicate) or 'runs'}; "
                 f"band: minimum to maximum", fontsize=9)
    fig.tight_layout(rect=(0, 0.06 + 0.03 * (len(labels) // 4), 1, 0.97))
    out_dir = os.path.dirname(os.path.abspath(output))
    os.makedirs(out_dir, exist_ok=True)
    svg = os.path.splitext(output)[0] + ".svg"
    for path, fmt, meta in ((output, "png", {"Software": None}), (svg, "svg", {"Date": None})):
        with atomic_path(path, suffix="." + fmt) as tmp:
            with matplotlib.rc_context({"svg.hashsalt": "collapse"}):  # stable element ids in the SVG
                fig.savefig(tmp, dpi=110, format=fmt, metadata=meta)
    plt.close(fig)
    return chosen
