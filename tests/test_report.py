"""`collapse report`: one self-contained HTML page per run (config, cells, figures inline as SVG,
summary with intervals over seeds, every metric, provenance), written by `collapse run` and
`collapse demo`, checked in a real headless Chromium where one is installed (issue 23)."""

import html
import json
import os
import re
import subprocess
import sys

import pandas as pd
import pytest
import tomli_w

from browser import Browser, find_chromium
from collapse.experiment import report as report_mod
from collapse.experiment.plot import bootstrap_mean_ci

CONFIG = {  # two seeds (intervals), two paradigms, a filter that starves some cells (ended early)
    "experiment": {"name": "report-test", "generations": 4, "seeds": [0, 1], "paradigms": ["replace", "mix"],
                   "alphas": [0.9], "workers": 1, "progress": False},
    "data": {"source": "grammar", "num_documents": 200, "heldout_documents": 100},
    "model": {"family": "ngram", "order": 3},
    "filter": {"method": "perplexity", "keep_fractions": [0.25], "dedup": True, "oversample": 2.0},
}
ODD = 'run <i>&"odd"'  # a run directory whose name must be escaped wherever the page shows it


def _collapse(*args, **kw):
    return subprocess.run([sys.executable, "-m", "collapse", *map(str, args)], capture_output=True, text=True,
                          timeout=300, **kw)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    cfg = tmp / "config.toml"
    cfg.write_text(tomli_w.dumps(CONFIG))
    out = tmp / ODD
    proc = _collapse("run", cfg, "--out", out)
    assert proc.returncode == 3, proc.stderr  # some cells ended early, by design
    assert f"report: {out / 'report.html'}" in proc.stdout
    return out


def test_run_writes_the_report_and_the_command_rewrites_it(run_dir, tmp_path):
    page = run_dir / "report.html"
    assert page.exists()
    page.unlink()
    proc = _collapse("report", run_dir)
    assert proc.returncode == 0, proc.stderr
    assert page.exists() and proc.stderr.strip() == f"wrote {page}"
    other = tmp_path / "elsewhere.html"
    assert _collapse("report", run_dir, "-o", other).returncode == 0
    # the same page but for the moment it was written
    stamp = re.compile(r"Report written [0-9TZ:-]+")
    assert stamp.sub("", other.read_text()) == stamp.sub("", page.read_text())
    for bad in (tmp_path / "nothing-here", tmp_path):  # no directory; a directory without a run
        proc = _collapse("report", bad)
        assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    proc = _collapse("report", run_dir, "-o", tmp_path / "no" / "such" / "dir.html")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1


def test_the_page_is_self_contained_accessible_and_escaped(run_dir):
    text = (run_dir / "report.html").read_text()
    assert "<script" not in text and "@import" not in text
    assert set(re.findall(r"url\((.)", text)) <= {"#"}  # only the SVG's own clip paths
    assert not re.search(r"\ssrc=", text)
    hrefs = re.findall(r'\s(?:xlink:)?href="([^"]*)"', text)
    assert hrefs and all(h.startswith("#") or h.startswith("data:") for h in hrefs), set(hrefs)
    assert "Content-Security-Policy" in text and 'name="viewport"' in text and "@media print" in text
    svgs = re.findall(r"<figure[^>]*><svg[^>]*>", text)
    assert len(svgs) == 2  # the per-generation figure and the tail figure (the run wrote tails.parquet)
    assert 'aria-label="Run report-test' in svgs[0] and 'aria-label="The tail' in svgs[1]
    for opening in svgs:
        assert 'role="img"' in opening
    assert text.count("<figcaption>") == 2 and "<title id=\"metrics-title\">" in text
    assert ODD not in text and html.escape(ODD) in text  # the directory's name, escaped
    config = (run_dir / "config.toml").read_text()
    assert html.escape(config) in text


def test_extra_figures_come_from_the_registry_when_their_file_exists(run_dir, tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    def draw(d):
        fig = Figure(figsize=(3, 2))
        fig.add_subplot().plot([0, 1, 2], [pd.read_csv(os.path.join(d, "tails.csv")).x.sum(), 1, 0])
        return fig

    extra = report_mod.ExtraFigure("tails.csv", "Tails <of> the sample", "what the tails did", draw)
    monkeypatch.setattr(report_mod, "EXTRA_FIGURES", [extra])
    assert "More figures" not in report_mod.build_report(str(run_dir))  # no file, no section
    (run_dir / "tails.csv").write_text("x\n1\n2\n")
    try:
        text = report_mod.build_report(str(run_dir))
    finally:
        (run_dir / "tails.csv").unlink()
    assert "More figures" in text and "Tails &lt;of&gt; the sample" in text
    assert len(re.findall(r'<svg role="img"', text)) == 2 and "what the tails did</figcaption>" in text


TABLES_JS = """JSON.stringify({
  metrics: [...document.querySelectorAll('table.metric')].map(t => ({
    metric: t.dataset.metric,
    cells: [...t.querySelectorAll('thead span.cell')].map(s => ({...s.dataset})),
    rows: [...t.querySelectorAll('tbody tr')].map(r => [...r.children].map(c => [c.dataset.value ?? null,
                                                                                  c.textContent]))})),
  summary: [...document.querySelectorAll('#summary-table tbody tr')].map(r => [...r.children].map(c =>
      ({...c.dataset, text: c.textContent}))),
  summaryHead: [...document.querySelectorAll('#summary-table thead th')].map(c => c.textContent),
  cells: [...document.querySelectorAll('#cells-table tbody tr')].map(r => [...r.children].map(c => c.textContent)),
  provenance: Object.fromEntries([...document.querySelectorAll('#provenance-table td')].map(
      c => [c.dataset.key, c.textContent])),
  figures: [...document.querySelectorAll('figure svg')].map(s => { const r = s.getBoundingClientRect();
      return {x: r.x + scrollX, y: r.y + scrollY, width: r.width, height: r.height,
              label: s.getAttribute('aria-label'), title: s.querySelector('title').textContent}; }),
})"""


def _key(value):
    return None if value in ("", None) else float(value)


def _check_metric_tables(tables, csv):
    ok = csv[csv.status != "ended"]
    numeric = [c for c in ok.columns if c not in report_mod.NOT_METRICS and ok[c].dtype.kind in "fiu"
               and ok[c].notna().any()]
    assert sorted(t["metric"] for t in tables) == sorted(numeric)
    checked = 0
    for t in tables:
        m = t["metric"]
        for row in t["rows"]:
            g = int(row[0][0])
            for cell, (value, shown) in zip(t["cells"], row[1:]):
                sel = ok[(ok.generation == g) & (ok.paradigm == cell["paradigm"]) & (ok.seed == int(cell["seed"]))]
                alpha = _key(cell["alpha"])
                sel = sel[sel.alpha.isna()] if alpha is None else sel[sel.alpha == alpha]
                if sel.empty:  # a cell that ended before this generation
                    assert value is None and shown == "–"
                    continue
                expected = sel[m].iloc[0]
                if pd.isna(expected):
                    assert value == "" and shown == "–"
                else:  # the data-value is metrics.csv's own text, the shown one its 6 digits
                    assert float(value) == pytest.approx(float(expected), rel=1e-9, abs=0)
                    assert float(shown) == pytest.approx(float(expected), rel=5e-6)
                checked += 1
    assert checked == ok[numeric].size


def _check_summary(summary, head, csv):
    ok = csv[csv.status != "ended"]
    metrics = [h.split("gen")[0] for h in head[7::2]]
    assert metrics == ["heldout_bits_per_word", "kl_truth", "vocab_size", "distinct_2"]
    assert len(summary) == ok.groupby(["paradigm", "alpha"], dropna=False).ngroups == 2
    for row in summary:
        paradigm, alpha, last = row[1]["text"], _key(row[2].get("value")), int(row[6]["value"])
        part = ok[(ok.paradigm == paradigm) & (ok.alpha.isna() if alpha is None else ok.alpha == alpha)]
        assert last == part.generation.max()
        for i, m in enumerate(metrics):
            for j, g in enumerate((0, last)):
                cell = row[7 + 2 * i + j]
                values = part.loc[part.generation == g, m].to_numpy(float)
                assert float(cell["mean"]) == pytest.approx(values.mean(), rel=1e-9)
                if len(values) > 1:
                    lo, hi = bootstrap_mean_ci(values)
                    assert (float(cell["lo"]), float(cell["hi"])) == pytest.approx((lo, hi), rel=1e-9)
                else:
                    assert "lo" not in cell


@pytest.mark.skipif(find_chromium() is None, reason="no Chromium (apt-get install chromium): the report's "
                                                    "browser test is skipped")
def test_the_page_in_a_real_browser(run_dir):
    from PIL import Image, ImageStat
    import io

    csv = pd.read_csv(run_dir / "metrics.csv")
    manifest = json.loads((run_dir / "manifest.json").read_text())
    url = (run_dir / "report.html").resolve().as_uri()
    with Browser(find_chromium()) as b:
        b.call("Emulation.setDeviceMetricsOverride", {"width": 1100, "height": 900, "deviceScaleFactor": 1,
                                                      "mobile": False})
        b.open(url)
        assert b.errors() == []
        assert b.requests() == [url]  # nothing but the file itself
        page = json.loads(b.evaluate(TABLES_JS))

        assert len(page["figures"]) == 2  # the per-generation figure and the tail figure
        for fig in page["figures"]:
            assert fig["width"] > 300 and fig["height"] > 200 and fig["label"] == fig["title"]
            png = b.screenshot({k: fig[k] for k in ("x", "y", "width", "height")})
            grey = Image.open(io.BytesIO(png)).convert("L")
            assert ImageStat.Stat(grey).stddev[0] > 10  # drawn, not blank
            assert grey.getextrema()[0] < 80  # dark strokes (axes, text) are there

        _check_metric_tables(page["metrics"], csv)
        _check_summary(page["summary"], page["summaryHead"], csv)
        cells = {c["id"]: c for c in manifest["cells"]}
        assert [r[0] for r in page["cells"]] == list(cells)
        for r in page["cells"]:
            c = cells[r[0]]
            assert r[7] == f"{c['generations_done']}/{CONFIG['experiment']['generations'] + 1}"
            assert r[8] == c["status"]
            assert (r[9] == "") == (c["status"] != "ended") and (c.get("reason") or "") in r[9]
        prov = manifest["provenance"]
        assert page["provenance"]["numpy"] == prov["numpy"]
        assert page["provenance"]["git_commit"] == (prov["git_commit"] or "–")
        assert page["provenance"]["command"].startswith(prov["command"][0])

        # a phone: the page itself never scrolls sideways (wide tables scroll in their own box)
        b.call("Emulation.setDeviceMetricsOverride", {"width": 375, "height": 800, "deviceScaleFactor": 2,
                                                      "mobile": True})
        assert b.evaluate("document.documentElement.scrollWidth <= innerWidth")
        assert b.evaluate("document.querySelector('figure svg').getBoundingClientRect().width <= innerWidth")
        # print: no navigation, tables unclipped, and a PDF comes out
        b.call("Emulation.setEmulatedMedia", {"media": "print"})
        assert b.evaluate("getComputedStyle(document.querySelector('nav')).display") == "none"
        assert b.evaluate("getComputedStyle(document.querySelector('.scroll')).overflowX") == "visible"
        pdf = b.call("Page.printToPDF", {})["data"]
        assert pdf.startswith("JVBERi0")  # %PDF-
        assert b.errors() == [] and b.requests() == [url]
