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


def study_rows(models=(("trigram-mkn", "ngram"), ("gpt-neo-cpu", "transformer")),
               paradigms=("replace", "accumulate-subsample"), seeds=(0, 1), generations=4, kl=True):
    rows = []
    for model, family in models:
        for paradigm in paradigms:
            for seed in seeds:
                for g in range(generations):
                    rows.append({"model": model, "family": family, "paradigm": paradigm, "seed": seed,
                                 "generation": g, "heldout_bits_per_word": 2 + g * 0.1 + seed * 0.01,
                                 "kl_truth": 30 + g + seed if kl else np.nan, "vocab_size": 1000 - g,
                                 "distinct_2": 0.3})
    return rows


def write_run(path: pathlib.Path, rows) -> pathlib.Path:
    path.mkdir(parents=True)
    pd.DataFrame(rows).to_csv(path / "metrics.csv", index=False)
    return path


def test_figure_of_a_two_model_study(tmp_path):
    """One line per model x paradigm, seeds as a band, readable labels, one legend, PNG and SVG."""
    from collapse.experiment.plot import plot_runs

    run = write_run(tmp_path / "study", study_rows())
    fig = plot_runs([str(run)], str(tmp_path / "fig.png"))
    assert fig.metrics == ["heldout_bits_per_word", "kl_truth", "vocab_size", "distinct_2"]
    assert fig.paths == [str(tmp_path / "fig.png"), str(tmp_path / "fig.svg")]
    png_size(tmp_path / "fig.png")
    svg = (tmp_path / "fig.svg").read_text()
    for text in ("bits per word", "nats per story", "generation", "trigram-mkn", "gpt-neo-cpu", "Replace",
                 "Accumulate-Subsample", "mean of 2 seeds", "95% bootstrap CI"):
        assert text in svg, text
    again = tmp_path / "again.png"
    plot_runs([str(run)], str(again))
    assert (tmp_path / "again.svg").read_text() == svg  # no date, stable ids, a seeded bootstrap
    assert again.read_bytes() == (tmp_path / "fig.png").read_bytes()


def png_dpi(path: pathlib.Path):
    from PIL import Image

    with Image.open(path) as im:
        return tuple(round(v) for v in im.info["dpi"])


def test_png_is_300_dpi_by_default(tmp_path):
    from collapse.experiment.plot import plot_runs

    run = write_run(tmp_path / "study", study_rows())
    plot_runs([str(run)], str(tmp_path / "fig.png"))
    assert png_dpi(tmp_path / "fig.png") == (300, 300)
    proc = cli("plot", run, "--dpi", 72, "--size", "5,4", "-o", tmp_path / "small.png")
    assert proc.returncode == 0, proc.stderr
    assert png_dpi(tmp_path / "small.png") == (72, 72)
    assert png_size(tmp_path / "small.png")[1:] == (360, 288)  # 5 x 4 inches at 72 dpi


def line_style(line):
    return line.get_linestyle(), line.get_marker()


def test_paradigms_have_distinct_colours_and_models_distinct_styles(tmp_path):
    from matplotlib.colors import to_hex

    from collapse.experiment.plot import plot_runs

    paradigms = ("replace", "accumulate", "accumulate-subsample", "mix", "fresh")
    run = write_run(tmp_path / "study", study_rows(paradigms=paradigms, seeds=(0,)))
    fig = plot_runs([str(run)])
    lines = fig.axes[0].get_lines()
    assert len(lines) == 2 * len(paradigms)
    by_model = {}
    for line in lines:
        by_model.setdefault(line_style(line), []).append(to_hex(line.get_color()))
    assert len(by_model) == 2  # the two models: two line style + marker pairs
    for colours in by_model.values():
        assert len(set(colours)) == len(paradigms)  # within a model every paradigm its own colour
    first, second = by_model.values()
    assert first == second  # the same paradigm has the same colour in both models


def test_one_seed_draws_no_band_and_says_1_seed(tmp_path):
    from collapse.experiment.plot import plot_runs

    run = write_run(tmp_path / "study", study_rows(seeds=(0,)))
    fig = plot_runs([str(run)])
    assert all(not ax.collections for ax in fig.axes)  # no fill_between
    title = fig.legends[0].get_title().get_text()
    assert "1 seed" in title and "CI" not in title


def band_at(ax, colour, x):
    """(low, high) of the band of that colour at generation x."""
    from matplotlib.colors import to_hex

    for coll in ax.collections:
        if to_hex(coll.get_facecolor()[0]) == colour:
            ys = [y for vx, y in coll.get_paths()[0].vertices if vx == x]
            return min(ys), max(ys)
    raise AssertionError(f"no band of colour {colour}")


def test_several_seeds_band_is_the_bootstrap_ci_of_the_mean(tmp_path):
    from matplotlib.colors import to_hex

    from collapse.experiment.plot import bootstrap_mean_ci, plot_runs

    rng = np.random.default_rng(1)
    rows = [{"paradigm": "replace", "seed": s, "generation": g, "heldout_bits_per_word": 2 + g + rng.normal(0, 0.3)}
            for s in range(6) for g in range(3)]
    run = write_run(tmp_path / "study", rows)
    fig = plot_runs([str(run)], metrics=["heldout_bits_per_word"])
    ax = fig.axes[0]
    colour = to_hex(ax.get_lines()[0].get_color())
    df = pd.DataFrame(rows)
    for g in range(3):
        values = df[df.generation == g].heldout_bits_per_word.to_numpy()
        lo, hi = band_at(ax, colour, g)
        assert (lo, hi) == pytest.approx(bootstrap_mean_ci(values))
        assert values.min() < lo < values.mean() < hi < values.max()  # narrower than min-max
    assert "mean of 6 seeds; band: 95% bootstrap CI of the mean" in fig.legends[0].get_title().get_text()


def test_bootstrap_mean_ci_matches_scipy_and_known_cases():
    from scipy import stats

    from collapse.experiment.plot import bootstrap_mean_ci

    x = np.random.default_rng(3).exponential(size=40)
    ours = bootstrap_mean_ci(x, resamples=40_000)
    ref = stats.bootstrap((x,), np.mean, method="percentile", n_resamples=40_000, random_state=0)
    assert ours == pytest.approx((ref.confidence_interval.low, ref.confidence_interval.high), abs=0.01)
    se = x.std(ddof=1) / np.sqrt(x.size)  # the normal approximation, roughly
    assert ours == pytest.approx((x.mean() - 1.96 * se, x.mean() + 1.96 * se), abs=0.05)
    assert bootstrap_mean_ci([2.5, 2.5, 2.5]) == (2.5, 2.5)
    assert bootstrap_mean_ci([1.0, np.nan, 3.0]) == bootstrap_mean_ci([1.0, 3.0])
    assert all(np.isnan(bootstrap_mean_ci([np.nan])))
    assert bootstrap_mean_ci(x) == bootstrap_mean_ci(x)  # a fixed seed


def test_a_metric_with_no_values_gets_no_panel(tmp_path):
    from collapse.experiment.plot import plot_runs

    run = write_run(tmp_path / "file-data", study_rows(models=(("trigram", "ngram"),), kl=False))
    fig = plot_runs([str(run)])  # the default set, kl_truth all NaN (file data)
    assert fig.metrics == ["heldout_bits_per_word", "vocab_size", "distinct_2"]
    assert len(fig.axes) == 3 and all(ax.get_visible() and ax.get_lines() for ax in fig.axes)
    fig = plot_runs([str(run)], metrics=["kl_truth", "vocab_size"])
    assert fig.metrics == ["vocab_size"] and fig.dropped == ["kl_truth"] and len(fig.axes) == 1
    proc = cli("plot", run, "--metric", "kl_truth,vocab_size", "-o", tmp_path / "x.png")
    assert proc.returncode == 0 and "no panel: kl_truth" in proc.stderr


def test_plot_options(tmp_path):
    from collapse.experiment.plot import plot_runs

    run = write_run(tmp_path / "study", study_rows(paradigms=("replace", "accumulate", "mix"), seeds=(0, 1, 2)))
    proc = cli("plot", run, "--title", "Collapse at a glance", "--seeds", "0,2", "--paradigms", "replace,mix",
               "--dpi", 50)
    assert proc.returncode == 0, proc.stderr
    svg = (run / "metrics.svg").read_text()  # the default output: in the run directory
    assert png_dpi(run / "metrics.png") == (50, 50)
    assert "Collapse at a glance" in svg and "mean of 2 seeds" in svg
    assert "Mix" in svg and "Replace" in svg and "Accumulate" not in svg
    fig = plot_runs([str(run)], metrics=["heldout_bits_per_word", "distinct_2"], logy=True, seeds=[1])
    assert [ax.get_yscale() for ax in fig.axes] == ["log", "log"]
    zero = write_run(tmp_path / "zero", [dict(r, distinct_2=0.0) for r in study_rows()])
    fig = plot_runs([str(zero)], metrics=["heldout_bits_per_word", "distinct_2"], logy=True)
    assert [ax.get_yscale() for ax in fig.axes] == ["log", "linear"] and "distinct_2" in fig.notes[0]
    other = write_run(tmp_path / "other", study_rows())
    proc = cli("plot", run, other, "--dpi", 50)
    assert proc.returncode == 0, proc.stderr
    assert (run / "metrics-with-other.png").exists() and (run / "metrics-with-other.svg").exists()


@pytest.mark.parametrize("args,says", [
    (("--size", "0,3"), "--size"), (("--size", "abc"), "--size"), (("--size", "3"), "--size"),
    (("--dpi", "0"), "--dpi"), (("--dpi", "x"), "--dpi"), (("--seeds", "a"), "--seeds"),
    (("--seeds", "7"), "no seed 7"), (("--paradigms", "nope"), "no paradigm nope"),
    (("--paradigms", ","), "--paradigms"), (("--size", "300,3"), "pixels"),
])
def test_bad_plot_options_are_one_line_errors(tmp_path, args, says):
    run = write_run(tmp_path / "study", study_rows())
    proc = cli("plot", run, *args)
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and says in proc.stderr, proc.stderr
    assert not (run / "metrics.png").exists()
