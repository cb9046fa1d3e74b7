"""Summary figures across a sweep axis: a metric at one generation, or its slope, against it.

The axes: alpha, params, order, filter_keep, model.
`collapse plot RUN_DIR... --x AXIS --metric METRIC --generation G [--slope]`. Each replicate
(a seed; a seed and trial for `collapse simulate` run directories) gives one value per point:
METRIC at generation G, or with ``slope`` the least-squares slope of METRIC over generations
0..G (per generation, numpy.polyfit of degree 1). A point is the mean of those values over the
replicates with its percentile-bootstrap 95% interval (plot.bootstrap_mean_ci; none with one
replicate). One line per paradigm and family, split further by any other key column that
varies and is not part of the axis (and by run directory when two runs hold the same line).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..errors import CollapseError
from .plot import (CI_LEVEL, DEFAULT_DPI, LINESTYLES, MARKERS, METRIC_LABELS, PANEL_INCHES, PARADIGM_NAMES,
                   PARADIGM_ORDER, REPLICATE_COLUMNS, RunsFigure, _check_size, _finish_figure, _palette, _read_runs, _set,
                   _subset, bootstrap_mean_ci)

AXES = ("alpha", "params", "order", "filter_keep", "model")
AXIS_LABELS = {
    "alpha": "synthetic share α",
    "params": "model size: parameters (n-gram: stored n-grams) at generation 0",
    "order": "n-gram order",
    "filter_keep": "filter keep fraction",
    "model": "model",
}
# what each axis stands for: the key columns it absorbs (they do not split lines)
ABSORBED = {"alpha": ("alpha",), "params": ("model", "order"), "order": ("order",),
            "filter_keep": ("filter_keep",), "model": ("model", "order")}
LINE_KEYS = ("paradigm", "family", "model", "order", "alpha", "filter_keep")
SUMMARY_DEFAULT = ("heldout_bits_per_word", "kl_truth")
__all__ = ["AXES", "SummaryPoint", "summary_points", "plot_summary", "parse_generation"]


@dataclass
class SummaryPoint:
    """One point of a summary line: its line's key, its x (a number, or a model name), the
    replicates' values, their mean and the bootstrap interval (NaN with one replicate)."""

    line: Tuple[Tuple[str, object], ...]
    x: object
    values: np.ndarray
    mean: float
    low: float
    high: float


def parse_generation(text: Union[str, int]) -> Union[int, str]:
    """--generation: a generation number >= 0 or "last"."""
    if isinstance(text, str) and text.strip().lower() == "last":
        return "last"
    try:
        g = int(text)
    except (TypeError, ValueError):
        raise CollapseError(f"--generation: a generation number or 'last', got {text!r}") from None
    if g < 0:
        raise CollapseError(f"--generation: must be >= 0 or 'last', got {g}")
    return g


def _resolve_generation(data, generation: Union[int, str]) -> int:  # noqa: ANN001
    last = int(data["generation"].max())
    if generation == "last":
        return last
    g = int(generation)
    if g not in set(data["generation"].astype(int)):
        raise CollapseError(f"--generation {g}: the runs have generations 0..{last}")
    return g


def _replicate_value(rows, metric: str, g: int, slope: bool) -> float:  # noqa: ANN001
    """One replicate's value: METRIC at generation g, or its least-squares slope over 0..g."""
    if not slope:
        at = rows[rows["generation"] == g][metric].to_numpy(dtype=float)
        return float(at[0]) if at.size else math.nan
    part = rows[(rows["generation"] <= g) & rows[metric].notna()]
    if part["generation"].nunique() < 2:
        return math.nan
    return float(np.polyfit(part["generation"].to_numpy(dtype=float), part[metric].to_numpy(dtype=float), 1)[0])


def _usable(data, axis: str):  # noqa: ANN001, ANN202
    """The rows that have a value on the axis (the cells that ended early left out)."""
    if "status" in data.columns:
        data = data[data["status"].fillna("ok") == "ok"]
    column = "params" if axis == "params" else axis
    if column not in data.columns or not data[column].map(_set).any():
        raise CollapseError(f"--x {axis}: no run has values of {column!r} (no matching runs)")
    return data[data[column].map(_set)]


def _x_of(data, key_columns: List[str]) -> Dict[tuple, float]:  # noqa: ANN001
    """For --x params: each (run, model, family, order) at its generation-0 parameters (an
    n-gram model's stored n-grams change as the data collapse), the mean over replicates."""
    g0 = data[data["generation"] == 0]
    out = {}
    for k, part in data.groupby(key_columns):
        first = g0.loc[g0.index.intersection(part.index)]
        out[k if isinstance(k, tuple) else (k,)] = float((first if len(first) else part)["params"].mean())
    return out


def _model_names(data):  # noqa: ANN001, ANN202
    """The model axis's names: the [[model]] name, with the order where one n-gram table has several."""
    if "order" not in data.columns:
        return data["model"].astype(str)
    orders = data.groupby("model")["order"].nunique()
    several = set(orders[orders > 1].index)
    return [f"{m} order {int(o)}" if m in several and _set(o) else str(m)
            for m, o in zip(data["model"], data["order"])]


def summary_points(run_dirs: Sequence[str], axis: str, metric: str, generation: Union[int, str] = "last", *,
                   slope: bool = False, seeds: Optional[Sequence[int]] = None,
                   paradigms: Optional[Sequence[str]] = None, data=None) -> List[SummaryPoint]:  # noqa: ANN001
    """The points plot_summary draws for one metric (in line order, x ascending)."""
    if axis not in AXES:
        raise CollapseError(f"--x: one of {', '.join(AXES)}, got {axis!r}")
    if data is None:
        data = _read_runs(run_dirs)
        data = _subset(data, "seed", seeds, "--seeds")
        data = _subset(data, "paradigm", paradigms, "--paradigms")
    if metric not in data.columns:
        raise CollapseError(f"--metric: no column {metric!r} in the metrics table "
                            f"(columns: {', '.join(c for c in data.columns if c != 'run')})")
    data = _usable(data, axis)
    g = _resolve_generation(data, parse_generation(generation) if not isinstance(generation, int) else generation)
    if not data[metric].notna().any():
        raise CollapseError(f"--metric {metric}: no values in the runs chosen for --x {axis}")
    replicate = [c for c in REPLICATE_COLUMNS if c in data.columns]
    keys = [c for c in LINE_KEYS if c in data.columns]
    data = data.copy()
    for c in keys:  # unset keys (NaN, None) as "": groupby keeps them and labels skip them
        data[c] = data[c].astype(object).where(data[c].map(_set), "")
    if axis == "params":
        model_keys = [c for c in ("run", "model", "family", "order") if c in data.columns]
        x_of = _x_of(data, model_keys)
        data["_x"] = [x_of[tuple(r)] for r in data[model_keys].itertuples(index=False, name=None)]
    elif axis == "model":
        data["_x"] = _model_names(data)
    else:
        data["_x"] = data[axis]
    line_cols = [c for c in ("paradigm", "family") if c in data.columns]
    # another key splits lines when it varies within a paradigm and family (not the transformer's empty order)
    by = data.groupby(line_cols) if line_cols else [((), data)]
    line_cols += [c for c in keys if c not in ABSORBED[axis] and c not in line_cols
                  and any(part[c].nunique() > 1 for _, part in by)]
    # a run directory splits lines only where two runs hold the same line and x
    if data.groupby([*line_cols, "_x"])["run"].nunique().gt(1).any():
        line_cols = ["run", *line_cols]
    points = []
    for key, part in data.groupby([*line_cols, "_x"], sort=False):
        key = key if isinstance(key, tuple) else (key,)
        line, x = tuple(zip(line_cols, key[:-1])), key[-1]
        groups = part.groupby(replicate, dropna=False) if replicate else [((), part)]
        values = np.asarray([_replicate_value(rows, metric, g, slope) for _, rows in groups], dtype=float)
        values = values[~np.isnan(values)]
        if not values.size:
            continue
        lo, hi = bootstrap_mean_ci(values) if values.size > 1 else (math.nan, math.nan)
        points.append(SummaryPoint(line, x, values, float(values.mean()), lo, hi))
    if not points:
        raise CollapseError(f"--metric {metric}: no values at generation {g} for --x {axis}")
    return sorted(points, key=lambda p: (_line_order(p.line), _x_order(p.x, axis, points)))


def _line_order(line: tuple) -> tuple:
    key = dict(line)
    paradigm = str(key.get("paradigm") or "")
    rank = PARADIGM_ORDER.index(paradigm) if paradigm in PARADIGM_ORDER else len(PARADIGM_ORDER)
    return (rank, tuple(str(v) for _, v in line))


def _x_order(x: object, axis: str, points: List[SummaryPoint]) -> tuple:
    if axis == "model":
        return (_model_rank(points).get(str(x), 0.0), str(x))
    return (float(x), "")  # type: ignore[arg-type]


def _model_rank(points: List[SummaryPoint]) -> Dict[str, float]:
    """Models in the order of their first appearance (the config's [[model]] order)."""
    return {m: float(i) for i, m in enumerate(dict.fromkeys(str(p.x) for p in points))}


def _line_label(line: tuple) -> str:
    parts = []
    for column, value in line:
        if not _set(value):
            continue
        if column == "paradigm":
            parts.insert(0, PARADIGM_NAMES.get(str(value), str(value)))
        elif column in ("alpha", "filter_keep", "order"):
            parts.append(f"{ {'alpha': 'α', 'filter_keep': 'keep', 'order': 'order'}[column]}={float(value):g}")
        else:
            parts.append(str(value))
    if not any(c == "family" and _set(v) for c, v in line):
        parts.append("simulator" if any(c == "paradigm" for c, _ in line) else "")
    return " · ".join(p for p in parts if p)


def _replicate_note(points: List[SummaryPoint], units: Tuple[str, str]) -> str:
    """What a point and a bar are, in words; units: (singular, plural)."""
    counts = [p.values.size for p in points]
    lo, hi = min(counts), max(counts)
    if hi == 1:
        return f"1 {units[0]} (no interval)"
    n = f"{lo}" if lo == hi else f"{lo}–{hi}"
    return f"point: mean of {n} {units[1]}; bar: {CI_LEVEL:.0%} bootstrap CI of the mean"


def plot_summary(run_dirs: Sequence[str], axis: str, output: Optional[str] = None,
                 metrics: Optional[Sequence[str]] = None, *, generation: Union[int, str] = "last",
                 slope: bool = False, size: Optional[Tuple[float, float]] = None, dpi: int = DEFAULT_DPI,
                 title: Optional[str] = None, logy: bool = False, seeds: Optional[Sequence[int]] = None,
                 paradigms: Optional[Sequence[str]] = None) -> RunsFigure:
    """One panel per metric: its value at `generation` (or slope) against `axis`; see the module."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.lines import Line2D

    if not run_dirs:
        raise CollapseError("plot: give at least one run directory")
    if axis not in AXES:
        raise CollapseError(f"--x: one of {', '.join(AXES)}, got {axis!r}")
    generation = parse_generation(generation) if not isinstance(generation, int) else generation
    if size is not None:
        _check_size(size, dpi)
    elif dpi < 1:
        raise CollapseError(f"--dpi must be >= 1, got {dpi}")
    data = _read_runs(run_dirs)
    data = _subset(data, "seed", seeds, "--seeds")
    data = _subset(data, "paradigm", paradigms, "--paradigms")
    asked = list(dict.fromkeys(metrics)) if metrics else [m for m in SUMMARY_DEFAULT if m in data.columns
                                                             and data[m].notna().any()]
    if not asked:
        raise CollapseError("plot: none of the default metrics has values in the table; pass --metric NAME")
    panels = [(m, summary_points(run_dirs, axis, m, generation, slope=slope, data=data)) for m in asked]
    trials = "trial" in data.columns and data["trial"].notna().any()  # a `collapse simulate` run among them
    unit = ("replicate (seed or trial)", "replicates (seeds or trials)") if trials else ("seed", "seeds")
    every = [p for _, pts in panels for p in pts]
    lines = list(dict.fromkeys(p.line for p in every))
    # colour: the paradigm, or with one paradigm what else tells the lines apart; style and marker: the rest
    one_paradigm = len({dict(line).get("paradigm", "") for line in lines}) == 1

    def colour_key(line: tuple) -> tuple:
        if one_paradigm:
            return tuple((c, v) for c, v in line if c != "family")
        return (("paradigm", dict(line).get("paradigm", "")),)

    def style_key(line: tuple) -> tuple:
        return tuple((c, v) for c, v in line if (c == "family" if one_paradigm else c != "paradigm"))

    colour_keys = sorted(dict.fromkeys(colour_key(line) for line in lines), key=_line_order)
    colour_of = dict(zip(colour_keys, _palette(len(colour_keys))))
    rest = list(dict.fromkeys(style_key(line) for line in lines))
    style_of = {r: {"linestyle": LINESTYLES[i % len(LINESTYLES)], "marker": MARKERS[i % len(MARKERS)]}
                for i, r in enumerate(rest)}
    ncols = min(len(panels), 3)
    nrows = int(math.ceil(len(panels) / ncols))
    labels = [_line_label(line) for line in lines]
    width = size[0] if size is not None else PANEL_INCHES[0] * ncols + 0.6
    legend_cols = _legend_columns(labels, width, 2 * ncols)
    legend_rows = int(math.ceil(len(lines) / legend_cols))
    if size is None:
        size = (PANEL_INCHES[0] * ncols + 0.6, PANEL_INCHES[1] * nrows + 0.6 + 0.2 * legend_rows
                + (0.35 if title else 0.0))
        _check_size(size, dpi)
    fig = RunsFigure(figsize=size, dpi=dpi)
    FigureCanvasAgg(fig)
    fig.metrics, fig.dropped, fig.notes, fig.paths = [m for m, _ in panels], [], [], []
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax in list(axes.flat)[len(panels):]:
        fig.delaxes(ax)
    models = _model_rank(every) if axis == "model" else {}
    where = _where(generation, slope)
    for ax, (metric, points) in zip(axes.flat, panels):
        lowest = math.inf
        for line in lines:
            pts = [p for p in points if p.line == line]
            if not pts:
                continue
            xs = np.asarray([models[str(p.x)] if axis == "model" else float(p.x) for p in pts])  # type: ignore[arg-type]
            mean = np.asarray([p.mean for p in pts])
            lo = np.asarray([p.low for p in pts])
            hi = np.asarray([p.high for p in pts])
            colour, style = colour_of[colour_key(line)], style_of[style_key(line)]
            ax.plot(xs, mean, color=colour, linewidth=1.4, markersize=4, **style)
            has = ~np.isnan(lo)
            if has.any():
                ax.errorbar(xs[has], mean[has], yerr=[mean[has] - lo[has], hi[has] - mean[has]], fmt="none",
                            ecolor=colour, elinewidth=1.0, capsize=2.5, alpha=0.8)
                lowest = min(lowest, float(np.nanmin(lo)))
            lowest = min(lowest, float(np.nanmin(mean)))
        panel, unit_label = METRIC_LABELS.get(metric, (metric.replace("_", " "), ""))
        ax.set_title(f"{panel}\n{where}", fontsize=8)
        ax.set_ylabel(f"{unit_label or panel} per generation" if slope else (unit_label or panel), fontsize=8)
        ax.set_xlabel(AXIS_LABELS[axis], fontsize=8)
        if axis == "params":
            ax.set_xscale("log")
        if axis == "model":
            ax.set_xticks(list(models.values()), list(models), rotation=30, ha="right")
        if slope:
            ax.axhline(0.0, color="0.5", linewidth=0.6)
        if logy:
            if lowest > 0:
                ax.set_yscale("log")
            else:
                fig.notes.append(f"--logy: {metric} has values <= 0; its axis stays linear")
        ax.tick_params(which="both", labelsize=7)
        ax.grid(True, alpha=0.3, linewidth=0.5)
    handles = [Line2D([], [], color=colour_of[colour_key(line)], linewidth=1.4, label=_line_label(line),
                      markersize=4, **style_of[style_key(line)]) for line in lines]
    return _finish_figure(fig, handles, legend_cols, _replicate_note(every, unit), title, output, dpi)


def _legend_columns(labels: Sequence[str], width_inches: float, most: int) -> int:
    """As many legend columns as the longest label lets fit across the figure (a 7-point
    character is about 0.055 inch; a handle and the gap after it about 0.45 inch), at most
    ``most``: long labels (several run directories) never run off the figure's edges."""
    column = 0.45 + 0.055 * max((len(label) for label in labels), default=1)
    return max(1, min(len(labels), most, int(width_inches / column)))


def _where(generation: Union[int, str], slope: bool) -> str:
    """The panel's second title line: which generation, or the slope over which ones."""
    if slope:
        return f"least-squares slope per generation, generations 0..{'last' if generation == 'last' else generation}"
    return "at the last generation" if generation == "last" else f"at generation {generation}"
