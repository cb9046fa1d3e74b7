"""collapse plot and collapse demo write real PNGs and tables."""

import pathlib
import struct
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def cli(*args):
    return subprocess.run([sys.executable, "-m", "collapse", *map(str, args)], capture_output=True, text=True)


def png_size(path: pathlib.Path):
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    width, height = struct.unpack(">II", data[16:24])  # IHDR
    return len(data), width, height


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "demo"
    proc = cli("demo", "--out", out, "--generations", "2")
    assert proc.returncode == 0, proc.stderr
    return out, proc


def test_demo_writes_metrics_png_and_table(demo_dir):
    out, proc = demo_dir
    df = pd.read_csv(out / "metrics.csv")
    assert set(df.paradigm) >= {"replace", "accumulate", "accumulate-subsample"}
    assert sorted(df.generation.unique()) == [0, 1, 2]
    nbytes, w, h = png_size(out / "demo.png")
    assert nbytes > 20_000 and w >= 600 and h >= 400
    assert "held-out perplexity" in proc.stdout and "replace" in proc.stdout
    assert "gen   2/2" in proc.stderr  # one progress line per generation


def test_plot_one_metric_and_overlay(demo_dir, tmp_path):
    out, _ = demo_dir
    png = tmp_path / "ppl.png"
    proc = cli("plot", out, "--metric", "heldout_ppl", "-o", png)
    assert proc.returncode == 0, proc.stderr
    assert png_size(png)[0] > 10_000
    both = tmp_path / "both.png"
    proc = cli("plot", out, out, "--metric", "vocab_size,kl_unigram", "-o", both)
    assert proc.returncode == 0, proc.stderr
    assert png_size(both)[0] > 10_000


def test_plot_a_simulate_run_directory(tmp_path):
    # the run-directory format of `collapse simulate`: bands over seeds and trials
    rows = []
    rng = np.random.default_rng(0)
    for paradigm, alpha in (("replace", np.nan), ("mix", 0.5)):
        for seed in (0, 1):
            for trial in range(3):
                for g in range(6):
                    rows.append({"paradigm": paradigm, "alpha": alpha, "seed": seed, "trial": trial, "generation": g,
                                 "entropy": 3 - 0.1 * g + rng.normal(0, 0.05), "support": 20 - g, "sum_p2": 0.1,
                                 "kl_to_truth": 0.05 * g, "tv_to_truth": 0.02 * g})
    run = tmp_path / "sim"
    run.mkdir()
    pd.DataFrame(rows).to_csv(run / "metrics.csv", index=False)
    png = tmp_path / "sim.png"
    proc = cli("plot", run, "-o", png)
    assert proc.returncode == 0, proc.stderr
    assert "kl_to_truth" in proc.stderr and png_size(png)[0] > 10_000


def test_plot_errors_are_one_line(demo_dir, tmp_path):
    out, _ = demo_dir
    proc = cli("plot", out, "--metric", "no_such_metric", "-o", tmp_path / "x.png")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert "no_such_metric" in proc.stderr
    proc = cli("plot", tmp_path / "missing", "-o", tmp_path / "x.png")
    assert proc.returncode == 2 and "no such run directory" in proc.stderr


def test_figure_of_a_two_model_study(tmp_path):
    """One line per model x paradigm, seeds as a band, readable labels, one legend, PNG and SVG."""
    from collapse.experiment.plot import plot_runs

    rows = []
    for model, family in (("trigram-mkn", "ngram"), ("gpt-neo-cpu", "transformer")):
        for paradigm in ("replace", "accumulate-subsample"):
            for seed in (0, 1):
                for g in range(4):
                    rows.append({"model": model, "family": family, "paradigm": paradigm, "seed": seed,
                                 "generation": g, "heldout_bits_per_word": 2 + g * 0.1 + seed * 0.01,
                                 "kl_truth": 30 + g + seed, "vocab_size": 1000 - g, "distinct_2": 0.3})
    run = tmp_path / "study"
    run.mkdir()
    pd.DataFrame(rows).to_csv(run / "metrics.csv", index=False)
    drawn = plot_runs([str(run)], str(tmp_path / "fig.png"))
    assert drawn == ["heldout_bits_per_word", "kl_truth", "vocab_size", "distinct_2"]
    png_size(tmp_path / "fig.png")
    svg = (tmp_path / "fig.svg").read_text()
    for text in ("bits per word", "nats per story", "generation", "trigram-mkn Replace",
                 "gpt-neo-cpu Accumulate-Subsample"):
        assert text in svg, text
    again = tmp_path / "again.png"
    plot_runs([str(run)], str(again))
    assert (tmp_path / "again.svg").read_text() == svg  # no date, stable ids
