"""Plots of run directories: each metric against generation, the mean over seeds and its bootstrap 95% interval.

One line per (run, model, family, order, paradigm, alpha, filter) group: the mean over seeds
(and over trials for `collapse simulate` runs) and, with two or more of them, a band for the
bootstrap 95% confidence interval of that mean (numpy, a fixed seed: the same data give the
same figure); with one seed no band, and the figure says "1 seed". Colour tells the
conditions (paradigm, alpha, filter) apart, line style and marker the models (run, model,
n-gram order); a metric with no values (kl_truth for file data) gets no panel. Integer
generation ticks, axis labels in words (METRIC_LABELS), one legend for the whole figure;
PNG at 300 dpi by default and an SVG next to it (no timestamps in either)."""

from __future__ import annotations

import math
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
from matplotlib.figure import Figure

from ..errors import CollapseError
from ..files import atomic_path
from .rundir import read_metrics

EXPERIMENT_DEFAULT = ("heldout_bits_per_word", "kl_truth", "vocab_size", "distinct_2")
SIMULATE_DEFAULT = ("entropy", "support", "kl_to_truth", "tv_to_truth", "mean_sq_error", "variance_ratio")  # categorical, Gaussian
GROUP_COLUMNS = ("model", "family", "order", "paradigm", "alpha", "filter_keep")
CONDITION_COLUMNS = ("paradigm", "alpha", "filter_keep")  # told apart by colour; the rest by line style and marker
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
    "self_ppl": ("perplexity of the sample under its own model", "perplexity"),
    "ref_ppl": ("perplexity of the sample under generation 0's model", "perplexity"),
    "self_bleu4": ("self-BLEU-4 of 100 sampled stories", "BLEU"),
    "rep_2": ("rep-2 of the sample", "1 - unique bigrams / bigrams"),
    "rep_3": ("rep-3 of the sample", "1 - unique trigrams / trigrams"),
    "rep_4": ("rep-4 of the sample", "1 - unique 4-grams / 4-grams"),
    "diversity": ("diversity of the sample", "(1 - rep-2)(1 - rep-3)(1 - rep-4)"),
    "zipf_exponent": ("Zipf exponent of the sample's words", "exponent s"),
    "entropy": ("unigram entropy of the sample", "bits"),
    "types_lost": ("real word types missing from the sample", "word types"),
    "kl_unigram": ("unigram KL(real ‖ sample)", "bits"),
    "kl_unigram_truth": ("unigram KL(true source ‖ sample)", "bits"),
    "tv_unigram": ("unigram total variation (real, sample)", "total variation"),
    "rare_mass": ("mass of rare real words in the sample", "fraction of tokens"),
    "repetition": ("within-story repeated 4-grams", "fraction"),
    "mean_length": ("mean story length of the sample", "words"),
    "truncated_fraction": ("sampled stories cut at the length limit", "fraction of stories"),
    "support": ("support size", "outcomes"),
    "kl_to_truth": ("KL(p_t ‖ p0)", "nats"),  # theory.categorical: sum p_t log(p_t / p0)
    "tv_to_truth": ("total variation (p0, p_t)", "total variation"),
    "mean_sq_error": ("squared error of the fitted mean", "squared distance"),
    "variance_ratio": ("fitted / true covariance trace", "ratio"),
}
PARADIGM_NAMES = {"replace": "Replace", "accumulate": "Accumulate", "accumulate-subsample": "Accumulate-Subsample",
                  "mix": "Mix", "fresh": "Fresh", "weighted": "Weighted"}
PARADIGM_ORDER = tuple(PARADIGM_NAMES)  # colours are handed out in this order, so Replace is always the first
REPLICATE_COLUMNS = ("seed", "trial")
# Okabe & Ito's colour-blind-safe palette without its yellow (too pale on white); tab10, tab20 beyond it
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")
LINESTYLES = ("-", "--", ":", "-.")
MARKERS = ("o", "s", "^", "D", "v", "P", "X")
DEFAULT_DPI = 300
PANEL_INCHES = (4.0, 2.9)  # one panel's share of the default figure size (width, height)
MAX_PIXELS = 65535  # the Agg renderer's limit per side
CI_LEVEL = 0.95
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0


class RunsFigure(Figure):
    """The figure plot_runs draws, with what it drew: metrics (the panels, in order), dropped
    (asked-for metrics with no values), notes (what was not done as asked, e.g. --logy on a
    panel with values <= 0) and paths (the files written, PNG then SVG; empty when none)."""

    metrics: List[str]
    dropped: List[str]
    notes: List[str]
    paths: List[str]


def bootstrap_mean_ci(values: Sequence[float], level: float = CI_LEVEL, resamples: int = BOOTSTRAP_RESAMPLES,
                      seed: int = BOOTSTRAP_SEED) -> Tuple[float, float]:
    """Percentile bootstrap interval of the mean of values (NaNs left out): the level-central
    range of the means of `resamples` draws with replacement; NaN when there are no values."""
    x = np.asarray(values, dtype=float)
    x = x[~np.isnan(x)]
    if x.size == 0:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(resamples, x.size))].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


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


def _set(v: object) -> bool:
    return v is not None and not (isinstance(v, float) and math.isnan(v)) and v != ""


def _model_label(key: dict, multi_run: bool) -> str:
    """The model part of a group: run (when several), model name, else family-order."""
    parts = []
    if multi_run:
        parts.append(str(key["run"]))
    model = key.get("model")
    if isinstance(model, str) and model and model != key.get("family"):
        parts.append(model)
    elif isinstance(key.get("family"), str) and key["family"]:
        fam = key["family"]
        if _set(key.get("order")):
            fam += f"-{int(key['order'])}"
        parts.append(fam)
    return " ".join(parts)


def _condition_label(key: dict) -> str:
    """The condition part of a group: paradigm, alpha, filter keep fraction."""
    paradigm = str(key.get("paradigm", "") if _set(key.get("paradigm")) else "")
    parts = [PARADIGM_NAMES.get(paradigm, paradigm)]
    if _set(key.get("alpha")):
        parts.append(f"α={key['alpha']:g}")
    if _set(key.get("filter_keep")):
        parts.append(f"keep={key['filter_keep']:g}")
    return " ".join(p for p in parts if p)


def _condition_order(key: dict) -> tuple:
    paradigm = str(key.get("paradigm", ""))
    rank = PARADIGM_ORDER.index(paradigm) if paradigm in PARADIGM_ORDER else len(PARADIGM_ORDER)
    num = [float(key[c]) if _set(key.get(c)) else -1.0 for c in ("alpha", "filter_keep")]
    return (rank, paradigm, *num)


def _palette(n: int) -> List[str]:
    """n distinct colours: the Okabe-Ito ones, else tab10's, tab20's (pairs of shades), a sampled colormap."""
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    if n <= len(PALETTE):
        return list(PALETTE[:n])
    if n <= 10:
        return [to_hex(colormaps["tab10"](i)) for i in range(n)]
    if n <= 20:
        return [to_hex(colormaps["tab20"](i)) for i in range(n)]  # an int picks the i-th of its 20 colours
    return [to_hex(colormaps["turbo"](i / (n - 1))) for i in range(n)]


def _read_runs(run_dirs: Sequence[str]):  # noqa: ANN202
    import pandas as pd

    frames = []
    names = [os.path.basename(os.path.normpath(x)) for x in run_dirs]
    for i, d in enumerate(run_dirs):
        df = _load(d).copy()
        name = names[i] or f"run{i}"
        df["run"] = f"{name}#{i}" if names.count(names[i]) > 1 else name
        frames.append(df)
    return pd.concat(frames, ignore_index=True, sort=False)


def _subset(data, column: str, wanted: Optional[Sequence], option: str):  # noqa: ANN001, ANN202
    """Rows whose column is one of wanted (all rows when wanted is None); an unknown value is an error."""
    if wanted is None:
        return data
    if column not in data.columns:
        raise CollapseError(f"{option}: the metrics table has no {column!r} column")
    present = sorted(data[column].dropna().unique().tolist(), key=str)
    missing = [w for w in wanted if w not in present]
    if missing:
        raise CollapseError(f"{option}: no {column} {', '.join(map(str, missing))} in the table "
                            f"(there: {', '.join(map(str, present))})")
    return data[data[column].isin(list(wanted))]


def _choose_metrics(data, metrics: Optional[Sequence[str]]) -> Tuple[List[str], List[str]]:  # noqa: ANN001
    """The metrics to draw (those with a value) and the asked-for ones dropped for having none."""
    if metrics:
        for m in metrics:
            if m not in data.columns:
                raise CollapseError(f"--metric: no column {m!r} in the metrics table "
                                    f"(columns: {', '.join(c for c in data.columns if c != 'run')})")
        asked = list(dict.fromkeys(metrics))
    else:
        simulate = "trial" in data.columns and "heldout_ppl" not in data.columns
        asked = [m for m in (SIMULATE_DEFAULT if simulate else EXPERIMENT_DEFAULT) if m in data.columns]
    chosen = [m for m in asked if data[m].notna().any()]
    if not chosen:
        if metrics:
            raise CollapseError(f"plot: no values for {', '.join(asked)} in the rows chosen")
        raise CollapseError("plot: none of the default metrics has values in the table; pass --metric NAME")
    return chosen, [m for m in asked if m not in chosen]


def _grid(n: int) -> Tuple[int, int]:
    """(rows, columns) for n panels: one row up to 3, 2 x 2 for 4, then 3 columns."""
    ncols = n if n <= 3 else (2 if n == 4 else 3)
    return int(math.ceil(n / ncols)), ncols


def _replicate_note(counts: List[int], data) -> str:  # noqa: ANN001
    """What a line and a band are, in words: '1 seed' or 'mean of N seeds, 95% bootstrap CI'."""
    lo, hi = min(counts), max(counts)
    if "trial" in data.columns:
        seeds = int(data["seed"].nunique()) if "seed" in data.columns else 1
        unit = f"trials ({seeds} seed{'s' if seeds > 1 else ''})"
        one = f"1 trial ({seeds} seed{'s' if seeds > 1 else ''})"
    elif "seed" in data.columns:
        unit, one = "seeds", "1 seed"
    else:
        unit, one = "runs", "1 run"
    if hi == 1:
        return f"{one} (no interval)"
    n = f"{lo}" if lo == hi else f"{lo}–{hi}"
    where = "" if lo > 1 else " where 2 or more"
    return f"line: mean of {n} {unit}; band{where}: {CI_LEVEL:.0%} bootstrap CI of the mean"


def _group_stats(part, metric: str, replicate: List[str]):  # noqa: ANN001, ANN202
    """Per generation of one group: generations, means, CI low, CI high (NaN with one replicate)."""
    xs, means, los, his = [], [], [], []
    for g, rows in part.groupby("generation", sort=True):
        values = rows[metric].to_numpy(dtype=float)
        if np.isnan(values).all():
            continue
        xs.append(g)
        means.append(float(np.nanmean(values)))
        lo, hi = bootstrap_mean_ci(values) if np.count_nonzero(~np.isnan(values)) > 1 else (math.nan, math.nan)
        los.append(lo)
        his.append(hi)
    return np.asarray(xs), np.asarray(means), np.asarray(los), np.asarray(his)


def _parse_groups(data, groups: List[str]):  # noqa: ANN001, ANN202
    """[(key dict with NaN for unset values, rows)] for every group, in a stable order."""
    keyed = data.copy()
    for c in groups:  # groupby drops NaN keys; fill them with a stand-in, mapped back below
        keyed[c] = keyed[c].fillna(-1.0) if keyed[c].dtype.kind == "f" else keyed[c].fillna("")
    out = []
    for key, part in keyed.groupby(groups, sort=True):
        key = dict(zip(groups, key if isinstance(key, tuple) else (key,)))
        for c in ("alpha", "order", "filter_keep"):
            if key.get(c) == -1.0:
                key[c] = math.nan
        out.append((key, part))
    return out


def _check_size(size: Tuple[float, float], dpi: int) -> None:
    w, h = size
    if not (math.isfinite(w) and math.isfinite(h) and w > 0 and h > 0):
        raise CollapseError(f"--size: width and height must be positive inches, got {w:g},{h:g}")
    if dpi < 1:
        raise CollapseError(f"--dpi must be >= 1, got {dpi}")
    if max(w, h) * dpi > MAX_PIXELS:
        raise CollapseError(f"--size {w:g},{h:g} at --dpi {dpi} is {max(w, h) * dpi:.0f} pixels on a side; "
                            f"at most {MAX_PIXELS}")


def plot_runs(run_dirs: Sequence[str], output: Optional[str] = None, metrics: Optional[Sequence[str]] = None, *,
              size: Optional[Tuple[float, float]] = None, dpi: int = DEFAULT_DPI, title: Optional[str] = None,
              logy: bool = False, seeds: Optional[Sequence[int]] = None,
              paradigms: Optional[Sequence[str]] = None) -> RunsFigure:
    """Draw one panel per metric for the run directories (seeds and paradigms: subsets) and, when
    output is given, write it as a PNG at dpi and an SVG next to it; returns the figure."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    if not run_dirs:
        raise CollapseError("plot: give at least one run directory")
    if size is not None:
        _check_size(size, dpi)
    elif dpi < 1:
        raise CollapseError(f"--dpi must be >= 1, got {dpi}")
    data = _read_runs(run_dirs)
    data = _subset(data, "seed", seeds, "--seeds")
    data = _subset(data, "paradigm", paradigms, "--paradigms")
    chosen, dropped = _choose_metrics(data, metrics)
    groups = ["run"] + [c for c in GROUP_COLUMNS if c in data.columns]
    replicate = [c for c in REPLICATE_COLUMNS if c in data.columns]
    parsed = _parse_groups(data, groups)
    multi_run = len(run_dirs) > 1

    conditions = sorted({_condition_label(k): _condition_order(k) for k, _ in parsed}.items(), key=lambda t: t[1])
    colour_of = dict(zip([c for c, _ in conditions], _palette(len(conditions))))
    models = list(dict.fromkeys(_model_label(k, multi_run) for k, _ in parsed))
    style_of: Dict[str, dict] = {m: ({"linestyle": "-"} if len(models) == 1 else
                                    {"linestyle": LINESTYLES[i % len(LINESTYLES)], "marker": MARKERS[i % len(MARKERS)],
                                     "markersize": 3.5})
                                 for i, m in enumerate(models)}
    generations = int(data["generation"].nunique())
    markevery = max(1, generations // 10)
    counts = [int(part[replicate].drop_duplicates().shape[0]) if replicate else 1 for _, part in parsed]

    nrows, ncols = _grid(len(chosen))
    legend_entries = len(conditions) + (len(models) if len(models) > 1 else 0)
    legend_cols = min(legend_entries, 3 * ncols)
    legend_rows = int(math.ceil(legend_entries / legend_cols))
    if size is None:
        size = (PANEL_INCHES[0] * ncols,
                PANEL_INCHES[1] * nrows + 0.45 + 0.2 * legend_rows + (0.35 if title else 0.0))
        _check_size(size, dpi)
    fig = RunsFigure(figsize=size, dpi=dpi)
    FigureCanvasAgg(fig)
    fig.metrics, fig.dropped, fig.notes, fig.paths = chosen, dropped, [], []
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax in list(axes.flat)[len(chosen):]:  # no empty panels: the grid's spare cells are removed
        fig.delaxes(ax)
    for ax, metric in zip(axes.flat, chosen):
        lowest = math.inf
        for key, part in parsed:
            x, mean, lo, hi = _group_stats(part, metric, replicate)
            if not len(x):
                continue
            colour = colour_of[_condition_label(key)]
            ax.plot(x, mean, color=colour, linewidth=1.4, markevery=markevery,
                    **style_of[_model_label(key, multi_run)])
            lowest = min(lowest, float(np.nanmin(mean)))
            if not np.isnan(lo).all():
                ax.fill_between(x, lo, hi, color=colour, alpha=0.2, linewidth=0)
                lowest = min(lowest, float(np.nanmin(lo)))
        panel, unit = METRIC_LABELS.get(metric, (metric.replace("_", " "), ""))
        ax.set_xlabel("generation", fontsize=8)
        ax.set_ylabel(unit or panel, fontsize=8)
        ax.set_title(panel, fontsize=9)
        if logy:
            if lowest > 0:
                ax.set_yscale("log")
            else:
                fig.notes.append(f"--logy: {metric} has values <= 0; its axis stays linear")
        ax.tick_params(which="both", labelsize=7)  # after the scale: a log axis labels its minor ticks too
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 5, 10]))
        ax.grid(True, alpha=0.3, linewidth=0.5)

    handles = [Line2D([], [], color=colour_of[c], linewidth=1.6, label=c) for c, _ in conditions]
    note = _replicate_note(counts, data)
    if len(models) > 1:
        handles += [Line2D([], [], color="0.3", linewidth=1.2, label=m, **style_of[m]) for m in models]
    elif models[0]:  # one model: named in the legend's title, not drawn as a grey line of its own
        note = f"{models[0]}; {note}"
    return _finish_figure(fig, handles, legend_cols, note, title, output, dpi)


def _finish_figure(fig: Any, handles: list, legend_cols: int, note: str, title: Optional[str],
                   output: Optional[str], dpi: int) -> Any:
    """One legend below the panels (``note`` as its title), the figure's title above, the
    panels laid out between them; written as PNG + SVG when ``output`` is given."""
    legend = fig.legend(handles=handles, loc="lower center", ncol=legend_cols, fontsize=7, frameon=False,
                        title=note, title_fontsize=7, bbox_to_anchor=(0.5, 0.0))
    heading = fig.suptitle(title, fontsize=11) if title else None
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    bottom = legend.get_window_extent(renderer).height / fig.bbox.height
    top = 1.0 - (heading.get_window_extent(renderer).height / fig.bbox.height + 0.01 if heading else 0.0)
    fig.tight_layout(rect=(0, bottom + 0.005, 1, top), h_pad=0.8, w_pad=0.8)
    if output is not None:
        fig.paths = _save(fig, output, dpi)
    return fig


def _save(fig: Figure, output: str, dpi: int) -> List[str]:
    """Write the figure as PNG (output) and SVG next to it, atomically, with no timestamps."""
    import matplotlib

    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    svg = os.path.splitext(output)[0] + ".svg"
    for path, fmt, meta in ((output, "png", {"Software": None}), (svg, "svg", {"Date": None})):
        with atomic_path(path, suffix="." + fmt) as tmp:
            with matplotlib.rc_context({"svg.hashsalt": "collapse"}):  # stable element ids in the SVG
                fig.savefig(tmp, dpi=dpi, format=fmt, metadata=meta)
    return [output, svg]


def default_output(run_dirs: Sequence[str]) -> str:
    """Where `collapse plot` writes without -o: RUN_DIR/metrics.png for one run directory; for
    several, the first one's metrics-with-<the others' names>.png."""
    first = run_dirs[0]
    if len(run_dirs) == 1:
        return os.path.join(first, "metrics.png")
    others = "-".join(os.path.basename(os.path.normpath(d)) or "run" for d in run_dirs[1:])
    return os.path.join(first, f"metrics-with-{others}.png")
