"""A run's report: one self-contained HTML page (config, cells, figures as inline SVG, tables, provenance)."""

from __future__ import annotations

import html
import io
import os
import shlex
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence

from ..errors import CollapseError
from ..files import read_json, write_text
from .provenance import utc_now
from .rundir import read_metrics

REPORT_FILE = "report.html"
KEYS = ("model", "family", "paradigm", "alpha", "order", "filter_keep", "seed", "generation", "trial")
GROUP = ("model", "paradigm", "alpha", "order", "filter_keep")  # a summary row: the mean over seeds
NOT_METRICS = KEYS + ("status", "reason", "run")
SHOWN_DIGITS = ".6g"  # what a table shows; its data-value holds the value as metrics.csv writes it
CSV_DIGITS = ".10g"  # rundir.write_metrics's float_format


@dataclass(frozen=True)
class ExtraFigure:
    """A figure the report shows when its run directory holds file (the tail and downstream
    analyses write theirs): draw(run_dir) returns a matplotlib Figure."""

    file: str
    title: str
    caption: str
    draw: Callable[[str], Any]


# Figures beyond the per-generation one, in the order shown; an analysis that writes a file
# into the run directory (tails.parquet, downstream.parquet) adds its figure here.
def _draw_tails(run_dir: str) -> Any:
    from .tails import draw_tails

    return draw_tails(run_dir)


def _draw_downstream(run_dir: str) -> Any:
    from .downstream.results import draw_downstream

    return draw_downstream(run_dir)


EXTRA_FIGURES: List[ExtraFigure] = [
    ExtraFigure("tails.parquet", "The tail: which real words die, and when",
                "Left panels: per paradigm, the fraction of the real set's word types of each count bucket "
                "(count in R: 1, 2–3, 4–7, ...) that S_t still holds. Last panel: the mean extinction "
                "generation (first generation whose sample lacks the type) against the type's count in R, "
                "with Replace's law 2k ln(N/k) (docs/theory.md; N: R's tokens). tails.parquet, "
                "<cell>/extinction.parquet.", _draw_tails),
    ExtraFigure("downstream.parquet", "Downstream: fine-tuned task accuracy against generation",
                "Per [downstream] task: test accuracy of each generation's model fine-tuned with a classification "
                "head (n-gram models: generative classification), mean over seeds (bars: their spread); dashed: "
                "the untrained baseline fine-tuned the same way; dotted: the Bayes-optimal accuracy of a built-in "
                "task. downstream.csv / .parquet; docs/downstream.md.", _draw_downstream),
]

CSS = """
:root { color-scheme: light; --line: #d0d4d9; --muted: #5a6270; --warn: #8a3b00; }
* { box-sizing: border-box; }
body { overflow-wrap: anywhere; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1b1f24;
       margin: 0 auto; max-width: 72rem; padding: 1rem; }
h1 { font-size: 1.5rem; margin: 0.2rem 0; } h2 { font-size: 1.2rem; margin-top: 2rem;
  border-bottom: 1px solid var(--line); } h3 { font-size: 1rem; margin-bottom: 0.3rem; }
.lead, figcaption, .note { color: var(--muted); }
nav ul { padding-left: 1.2rem; columns: 2 12rem; }
figure { margin: 1rem 0; } figure svg { display: block; width: 100%; height: auto; max-width: 60rem; }
figcaption { font-size: 0.9rem; margin-top: 0.3rem; }
.scroll { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; font-size: 0.85rem; font-variant-numeric: tabular-nums; }
th, td { overflow-wrap: normal; border-bottom: 1px solid var(--line); padding: 0.2rem 0.6rem; text-align: right; white-space: nowrap; }
th { background: #f3f5f7; text-align: left; white-space: normal; min-width: 4rem; } td.text { text-align: left; }
td.reason { white-space: normal; min-width: 16rem; text-align: left; }
.ci { color: var(--muted); font-size: 0.8em; }
.ended { color: var(--warn); }
pre { background: #f6f8fa; padding: 0.7rem; overflow-x: auto; font-size: 0.8rem; }
@media (max-width: 40rem) { body { padding: 0.5rem; font-size: 14px; } nav ul { columns: 1; } }
@media print {
  body { max-width: none; font-size: 10pt; } nav { display: none; }
  .scroll { overflow: visible; } pre { white-space: pre-wrap; overflow: visible; }
  table { font-size: 7pt; } figure, tr { break-inside: avoid; } h2 { break-after: avoid; }
}
"""
# nothing may leave the file: styles inline, images as data: URLs only, no scripts, no fonts
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def e(value: Any) -> str:
    """Text for HTML, escaped (quotes too, so it also fits in an attribute)."""
    return html.escape(str(value), quote=True)


def _missing(x: Any) -> bool:
    if x is None:
        return True
    try:
        return bool(x != x)  # NaN, pandas.NA
    except TypeError:
        return True


def _formatted(x: Any, digits: str, missing: str) -> str:
    if _missing(x):
        return missing
    return format(x, digits) if isinstance(x, float) else str(x)


def csv_text(x: Any) -> str:
    """A value as metrics.csv writes it ("" when missing)."""
    return _formatted(x, CSV_DIGITS, "")


def shown(x: Any) -> str:
    """A value as a table shows it: 6 significant digits, "–" when missing."""
    return _formatted(x, SHOWN_DIGITS, "–")


def _number(x: Any) -> Any:
    """numpy and pandas scalars as Python's: an integer stays an integer."""
    if hasattr(x, "item"):
        x = x.item()
    return x


def td(x: Any, cls: str = "") -> str:
    x = _number(x)
    attr = f' class="{cls}"' if cls else ""
    if isinstance(x, (int, float)) and not isinstance(x, bool):
        return f'<td{attr} data-value="{e(csv_text(x))}">{e(shown(x))}</td>'
    return f'<td class="text{" " + cls if cls else ""}">{e(shown(x))}</td>'


def table(head: Sequence[str], rows: Sequence[str], caption: str = "", attrs: str = "") -> str:
    cap = f"<caption>{e(caption)}</caption>" if caption else ""
    header = "".join(f'<th scope="col">{h}</th>' for h in head)
    body = "".join(f"<tr>{r}</tr>" for r in rows)
    return f'<div class="scroll"><table{attrs}>{cap}<thead><tr>{header}</tr></thead><tbody>{body}</tbody></table></div>'


def svg_figure(fig: Any, key: str, label: str, caption: str) -> str:
    """A matplotlib figure as an inline SVG (text drawn as paths: no font to fetch) with an
    accessible name (role="img", aria-label, <title>) inside a <figure> with its caption."""
    import matplotlib

    buf = io.BytesIO()
    with matplotlib.rc_context({"svg.hashsalt": f"collapse-{key}", "svg.fonttype": "path"}):
        fig.savefig(buf, format="svg", metadata={"Date": None})  # element ids unique to this figure
    text = buf.getvalue().decode("utf-8")
    start = text.index("<svg")
    end = text.index(">", start) + 1
    title_id = f"{key}-title"
    opening = text[start:end].replace("<svg", f'<svg role="img" aria-label="{e(label)}" aria-labelledby="{title_id}"', 1)
    svg = opening + f'<title id="{title_id}">{e(label)}</title>' + text[end:]
    return f'<figure id="figure-{e(key)}" class="figure">{svg}<figcaption>{e(caption)}</figcaption></figure>'


def run_figure(run_dir: str, name: str) -> str:
    """The per-generation figure (collapse.experiment.plot.plot_runs), or a note where there is none yet."""
    from .plot import METRIC_LABELS, plot_runs

    try:
        fig = plot_runs([run_dir])
    except CollapseError as err:
        return f'<p class="note">No figure: {e(err)}.</p>'
    panels = [METRIC_LABELS.get(m, (m, ""))[0] for m in fig.metrics]
    label = f"Run {name}, each metric against generation: " + "; ".join(panels)
    legend = fig.legends[0].get_title().get_text() if fig.legends else ""
    caption = (f"Per generation: {', '.join(panels)}. One colour per paradigm (and alpha, filter); {legend}. "
               "The same figure is metrics.png / metrics.svg in the run directory.")
    return svg_figure(fig, "metrics", label, caption)


def extra_figures(run_dir: str) -> List[str]:
    out = []
    for i, extra in enumerate(EXTRA_FIGURES):
        if os.path.exists(os.path.join(run_dir, extra.file)):
            out.append(f"<h3>{e(extra.title)}</h3>"
                       + svg_figure(extra.draw(run_dir), f"extra{i}", extra.title, extra.caption))
    return out


def _group_label(key: Dict[str, Any]) -> List[str]:
    return [td(key.get(c)) for c in GROUP]


def summary_rows(df: Any, metrics: Sequence[str]) -> "tuple[List[str], List[str]]":
    """Per model x paradigm (x alpha, order, filter): generation 0 and the group's last generation,
    each metric's mean over seeds with its bootstrap 95% interval (plot.bootstrap_mean_ci)."""
    from .plot import bootstrap_mean_ci

    head = [e(c) for c in ("model", "paradigm", "alpha", "order", "keep")] + ["seeds", "last gen"]
    for m in metrics:
        head += [f"{e(m)}<br>gen 0", f"{e(m)}<br>last gen"]
    ok = df[df["status"] != "ended"] if "status" in df.columns else df
    group = [c for c in GROUP if c in ok.columns]
    rows = []
    keyed = ok.copy()
    for c in group:  # groupby leaves out missing keys; stand-ins, mapped back below
        keyed[c] = keyed[c].astype(object).where(keyed[c].notna(), "")
    for key, part in keyed.groupby(group, sort=True):
        key = {c: (None if v == "" else v) for c, v in zip(group, key if isinstance(key, tuple) else (key,))}
        last = int(part["generation"].max())
        seeds = int(part["seed"].nunique()) if "seed" in part.columns else 1
        cells = _group_label(key) + [td(seeds), td(last)]
        for m in metrics:
            for g in (0, last):
                values = part.loc[part["generation"] == g, m].to_numpy(dtype=float)
                cells.append(_mean_ci_cell(values, bootstrap_mean_ci))
        rows.append("".join(cells))
    return head, rows


def _mean_ci_cell(values: Any, ci: Callable) -> str:
    import numpy as np

    values = values[~np.isnan(values)]
    if values.size == 0:
        return '<td data-mean="">–</td>'
    mean = float(values.mean())
    if values.size == 1:
        return f'<td data-mean="{e(csv_text(mean))}" data-n="1">{e(shown(mean))}</td>'
    lo, hi = ci(values)
    return (f'<td data-mean="{e(csv_text(mean))}" data-lo="{e(csv_text(lo))}" data-hi="{e(csv_text(hi))}" '
            f'data-n="{values.size}">{e(shown(mean))} <span class="ci">[{e(format(lo, ".4g"))}, '
            f'{e(format(hi, ".4g"))}]</span></td>')


def cells_section(manifest: Dict[str, Any]) -> str:
    cells = manifest.get("cells") or []
    if not cells:
        return '<p class="note">The manifest lists no cells.</p>'
    total = int(manifest.get("generations", 0)) + 1
    head = ["cell", "model", "paradigm", "alpha", "order", "keep", "seed", "generations", "status", "reason"]
    rows = []
    for c in cells:
        ended = c.get("status") == "ended"
        reason = f"generation {c.get('ended_at')}: {c.get('reason')}" if ended else ""
        rows.append(f'<td class="text">{e(c.get("id"))}</td>' + "".join(td(c.get(k)) for k in
                    ("model", "paradigm", "alpha", "order", "filter_keep", "seed"))
                    + f'<td data-value="{int(c.get("generations_done", 0))}">{int(c.get("generations_done", 0))}/{total}</td>'
                    + f'<td class="text{" ended" if ended else ""}">{e(c.get("status", ""))}</td>'
                    + f'<td class="reason">{e(reason)}</td>')
    out = table(head, rows, attrs=' id="cells-table"')
    ended = [c for c in cells if c.get("status") == "ended"]
    if ended:
        items = "".join(f'<li><b>{e(c["id"])}</b> at generation {e(c.get("ended_at"))}: {e(c.get("reason"))}</li>'
                        for c in ended)
        out = (f'<div class="ended" id="ended-early"><p>{len(ended)} cell{"s" * (len(ended) != 1)} ended early:</p>'
               f"<ul>{items}</ul></div>") + out
    return out


def _cell_key(row: Any) -> tuple:
    return tuple(None if _missing(row.get(c)) else _number(row.get(c)) for c in ("model", "paradigm", "alpha", "order",
                                                                                 "filter_keep", "seed"))


def metric_tables(df: Any, metrics: Sequence[str]) -> List[str]:
    """One table per metric: a row per generation, a column per cell (every value of metrics.csv)."""
    ok = df[df["status"] != "ended"] if "status" in df.columns else df
    records = ok.to_dict("records")
    cells = list(dict.fromkeys(_cell_key(r) for r in records))
    gens = sorted({int(r["generation"]) for r in records})
    by = {(_cell_key(r), int(r["generation"])): r for r in records}
    names = ("model", "paradigm", "alpha", "order", "filter_keep", "seed")
    one_model = len({c[0] for c in cells}) == 1
    head_cells = []
    for key in cells:  # the cell's keys in data- attributes, a short label to read
        attrs = " ".join(f'data-{n.replace("_", "-")}="{e(csv_text(v))}"' for n, v in zip(names, key))
        parts = [str(key[0])] if not one_model else []
        parts += [str(key[1])] + [f"{short}={shown(v)}" for short, v in (("α", key[2]), ("order", key[3]),
                                                                       ("keep", key[4]), ("seed", key[5]))
                                  if v is not None]
        head_cells.append(f'<span class="cell" {attrs}>{e(" ".join(parts))}</span>')
    out = []
    for m in metrics:
        rows = []
        for g in gens:
            rows.append(f'<th scope="row" data-value="{g}">{g}</th>'
                        + "".join(td(by[(k, g)].get(m)) if (k, g) in by else "<td>–</td>" for k in cells))
        out.append(f'<h3 id="metric-{e(m)}">{e(m)}</h3>'
                   + table(["generation"] + head_cells, rows, attrs=f' class="metric" data-metric="{e(m)}"'))
    return out


PROVENANCE_FIELDS = (("collapse", "collapse version"), ("git_commit", "git commit"), ("git_dirty", "uncommitted changes"),
                     ("python", "Python"), ("numpy", "numpy"), ("torch", "torch"), ("transformers", "transformers"),
                     ("kenlm", "kenlm"), ("platform", "platform"), ("hostname", "host"), ("cpu", "CPU"),
                     ("cpu_count", "CPU cores"), ("gpus", "GPUs"), ("gpu_driver", "GPU driver"),
                     ("command", "command line"), ("started", "started (UTC)"), ("ended", "ended (UTC)"),
                     ("updated", "last written (UTC)"), ("peak_rss_bytes", "peak RSS"))


def _provenance_value(key: str, value: Any) -> str:
    if value is None or value == []:
        return "–" if key not in ("ended",) else "– (not finished)"
    if key == "command" and isinstance(value, list):
        return shlex.join(str(v) for v in value)
    if key == "gpus" and isinstance(value, list):
        return ", ".join(map(str, value))
    if key == "peak_rss_bytes":
        return f"{value / 2**20:.1f} MiB ({value} bytes; this process or its largest finished child)"
    return str(value)


def provenance_section(manifest: Dict[str, Any]) -> str:
    prov = manifest.get("provenance")
    if not isinstance(prov, dict):
        return '<p class="note">This run directory records no provenance (written before collapse recorded it).</p>'
    rows = [f'<th scope="row">{e(label)}</th><td class="text" data-key="{e(key)}">{e(_provenance_value(key, prov.get(key)))}</td>'
            for key, label in PROVENANCE_FIELDS]
    out = table(["", "this session"], rows, attrs=' id="provenance-table"')
    earlier = prov.get("earlier_sessions") or []
    if earlier:
        fields = ("started", "ended", "updated", "collapse", "git_commit", "command")
        srows = ["".join(f'<td class="text">{e(_provenance_value(k, s.get(k)))}</td>' for k in fields) for s in earlier]
        out += "<h3>Earlier sessions</h3>" + table(list(fields), srows)
    return out


def _config_text(run_dir: str) -> str:
    try:
        with open(os.path.join(run_dir, "config.toml"), encoding="utf-8") as f:
            return f.read()
    except OSError:
        return ""


def build_report(run_dir: str) -> str:
    """The report of the run in run_dir, as HTML text."""
    from .plot import EXPERIMENT_DEFAULT

    manifest_path = os.path.join(run_dir, "manifest.json")
    if not os.path.isdir(run_dir):
        raise CollapseError(f"no such run directory: {run_dir}")
    if not os.path.exists(manifest_path):
        raise CollapseError(f"{run_dir} holds no run (no manifest.json)")
    manifest = read_json(manifest_path)
    try:
        df = read_metrics(run_dir)
    except (OSError, ValueError) as err:
        raise CollapseError(f"{run_dir}: cannot read the metrics table: {err}") from None
    name = str(manifest.get("name") or os.path.basename(os.path.normpath(run_dir)))
    metrics = [c for c in df.columns if c not in NOT_METRICS and df[c].dtype.kind in "fiu" and df[c].notna().any()]
    headline = [m for m in EXPERIMENT_DEFAULT if m in metrics]
    cells = manifest.get("cells") or []
    ended = sum(c.get("status") == "ended" for c in cells)
    state = "complete" if manifest.get("complete") else "not finished (a live or stopped run: collapse status)"
    lead = (f"{manifest.get('kind', 'run')}; {len(cells)} cell{'s' * (len(cells) != 1)}, generations 0 to "
            f"{manifest.get('generations')}; {state}" + (f"; {ended} ended early" if ended else "")
            + f". Report written {utc_now()} from {os.path.abspath(run_dir)}.")
    sections = [("figure", "Per-generation figure", run_figure(run_dir, name))]
    head, rows = summary_rows(df, headline) if len(df) and headline else ([], [])
    sections.append(("summary", "Summary: generation 0 and the last",
                     ('<p class="note">Mean over seeds; in brackets its 95% bootstrap interval (2000 resamples), '
                      "with two seeds or more.</p>" + table(head, rows, attrs=' id="summary-table"'))
                     if rows else '<p class="note">No finished generation yet.</p>'))
    sections.append(("cells", "Cells", cells_section(manifest)))
    extras = extra_figures(run_dir)
    if extras:
        sections.append(("more-figures", "More figures", "".join(extras)))
    sections.append(("metrics", "Every metric, per generation and cell",
                     '<p class="note">Each table: one row per generation, one column per cell; the values of '
                     "metrics.csv, shown to 6 significant digits.</p>" + "".join(metric_tables(df, metrics))))
    sections.append(("provenance", "Provenance", provenance_section(manifest)))
    sections.append(("config", "Configuration (config.toml)", f"<pre>{e(_config_text(run_dir))}</pre>"))
    nav = "".join(f'<li><a href="#{key}">{e(title)}</a></li>' for key, title, _ in sections)
    body = "".join(f'<section id="{key}" aria-labelledby="{key}-h"><h2 id="{key}-h">{e(title)}</h2>{content}</section>'
                   for key, title, content in sections)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            '<link rel="icon" href="data:,">'
            f"<title>collapse run {e(name)}</title><style>{CSS}</style></head>\n<body>"
            f'<header><h1>Run {e(name)}</h1><p class="lead">{e(lead)}</p></header>'
            f'<nav aria-label="contents"><ul>{nav}</ul></nav><main>{body}</main></body></html>\n')


def write_report(run_dir: str, output: Optional[str] = None) -> str:
    """Write the report (default RUN_DIR/report.html) atomically; returns its path."""
    output = output or os.path.join(run_dir, REPORT_FILE)
    text = build_report(run_dir)
    parent = os.path.dirname(os.path.abspath(output))
    if not os.path.isdir(parent):
        raise CollapseError(f"-o {output}: no such directory {parent}")
    write_text(output, text)
    return output
