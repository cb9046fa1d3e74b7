"""collapse plot --x AXIS (issue 19): a metric at one generation, or its slope, against a sweep axis,
on small real runs; its bootstrap intervals against a direct resampling in numpy; the metrics
table's params column for both families."""

import pathlib
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import collapse
from collapse.experiment.config import parse_config

TINY_TRANSFORMER = dict(family="transformer", preset="custom", hidden_size=16, num_layers=1, num_heads=2,
                        window_size=16, max_position_embeddings=128, context_length=64, epochs=1, batch_size=16,
                        micro_batch_size=8, bpe_vocab_size=280, max_new_tokens=40, sample_batch_size=32,
                        perplexity_stride=32, device="cpu", precision="fp32", threads=1, progress=False)


def cli(*args):
    return subprocess.run([sys.executable, "-m", "collapse", *map(str, args)], capture_output=True, text=True)


@pytest.fixture(scope="module")
def ngram_run(tmp_path_factory):
    """n-gram orders 2 and 3 on the embedded grammar, Replace and Mix(0.25, 0.75), filter keep 1
    and 0.75, 3 seeds, 2 generations: every axis but model has more than one value."""
    out = tmp_path_factory.mktemp("summary") / "ngram"
    cfg = parse_config({
        "experiment": {"name": "s", "generations": 2, "seeds": [0, 1, 2], "paradigms": ["replace", "mix"],
                       "alphas": [0.25, 0.75], "workers": 1, "progress": False},
        "data": {"source": "grammar", "num_documents": 100, "heldout_documents": 30},
        "model": {"family": "ngram", "orders": [2, 3]},
        "filter": {"method": "perplexity", "keep_fractions": [1.0, 0.75]},
        "output": {"save_models": False},
    }, base_dir=str(out.parent))
    collapse.run_experiment(cfg, out=str(out))
    return out


@pytest.fixture(scope="module")
def mixed_run(tmp_path_factory):
    """A trigram and a tiny GPT-Neo side by side (the model and params axes across families), 2 seeds, 1 generation."""
    pytest.importorskip("torch")
    out = tmp_path_factory.mktemp("summary") / "mixed"
    cfg = parse_config({
        "experiment": {"name": "m", "generations": 1, "seeds": [0, 1], "paradigms": ["replace"], "workers": 1,
                       "progress": False},
        "data": {"source": "grammar", "num_documents": 40, "heldout_documents": 20},
        "model": [{"name": "trigram", "family": "ngram", "order": 3}, {"name": "neo-tiny", **TINY_TRANSFORMER}],
        "output": {"save_models": True},
    }, base_dir=str(out.parent))
    collapse.run_experiment(cfg, out=str(out))
    return out


@pytest.mark.parametrize("axis", ["alpha", "params", "order", "filter_keep"])
def test_summary_figure_for_every_axis_of_an_ngram_sweep(ngram_run, axis, tmp_path):
    png = tmp_path / f"{axis}.png"
    proc = cli("plot", ngram_run, "--x", axis, "--metric", "kl_truth", "--generation", "last", "-o", png)
    assert proc.returncode == 0, proc.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.with_suffix(".svg").exists()
    svg = png.with_suffix(".svg").read_text()
    for text in ("at the last generation", "mean of 3 seeds", "95% bootstrap CI", "Mix"):
        assert text in svg, text


@pytest.mark.parametrize("axis", ["model", "params"])
def test_summary_figure_across_families(mixed_run, axis, tmp_path):
    png = tmp_path / f"{axis}.png"
    proc = cli("plot", mixed_run, "--x", axis, "--metric", "heldout_bits_per_word,kl_truth", "-o", png)
    assert proc.returncode == 0, proc.stderr
    svg = png.with_suffix(".svg").read_text()
    for text in ("ngram", "transformer", "mean of 2 seeds"):
        assert text in svg, text
    if axis == "model":
        assert "trigram" in svg and "neo-tiny" in svg  # the models as tick labels


def test_points_are_the_seeds_values_at_the_generation(ngram_run):
    from collapse.experiment.summary import summary_points

    df = pd.read_csv(ngram_run / "metrics.csv")
    points = summary_points([str(ngram_run)], "order", "kl_truth", 1)
    assert len(points) == 3 * 2 * 2  # (replace, mix at 2 alphas) x 2 keeps: 6 lines, each at orders 2 and 3
    for p in points:
        line = dict(p.line)
        rows = df[(df.generation == 1) & (df.paradigm == line["paradigm"]) & (df.order == p.x)
                  & (df.filter_keep == line["filter_keep"])]
        if line.get("alpha", "") != "":
            rows = rows[rows.alpha == line["alpha"]]
        assert sorted(p.values) == pytest.approx(sorted(rows.kl_truth))
        assert p.mean == pytest.approx(rows.kl_truth.mean())


def test_bootstrap_interval_against_a_direct_resampling_in_numpy(ngram_run):
    from collapse.experiment.summary import summary_points

    for p in summary_points([str(ngram_run)], "alpha", "heldout_bits_per_word", "last"):
        x = p.values
        assert x.size == 3
        # the same percentile bootstrap, written out: 2000 resamples with replacement, seed 0
        idx = np.random.default_rng(0).integers(0, x.size, size=(2000, x.size))
        lo, hi = np.quantile(x[idx].mean(axis=1), [0.025, 0.975])
        assert (p.low, p.high) == pytest.approx((lo, hi), rel=1e-12)
        # and an independent one (another seed, many resamples): the interval is the bootstrap's, not the seed's
        idx = np.random.default_rng(12345).integers(0, x.size, size=(100_000, x.size))
        lo2, hi2 = np.quantile(x[idx].mean(axis=1), [0.025, 0.975])
        spread = x.max() - x.min()
        assert abs(p.low - lo2) <= 0.05 * spread + 1e-12 and abs(p.high - hi2) <= 0.05 * spread + 1e-12
        eps = 1e-9 * abs(x).max()  # a mean of equal values may round past them
        assert x.min() - eps <= p.low <= p.mean <= p.high <= x.max() + eps


def test_slope_is_the_least_squares_slope_per_seed(ngram_run):
    from scipy import stats

    from collapse.experiment.summary import summary_points

    df = pd.read_csv(ngram_run / "metrics.csv")
    points = summary_points([str(ngram_run)], "filter_keep", "kl_truth", "last", slope=True)
    p = next(p for p in points if dict(p.line)["paradigm"] == "replace" and dict(p.line)["order"] == 3
             and p.x == 1.0)
    cell = df[(df.paradigm == "replace") & (df.order == 3) & (df.filter_keep == 1.0)]
    want = [stats.linregress(part.generation, part.kl_truth).slope for _, part in cell.groupby("seed")]
    assert sorted(p.values) == pytest.approx(sorted(want))


def test_one_seed_says_1_seed_and_draws_no_interval(ngram_run, tmp_path):
    png = tmp_path / "one.png"
    proc = cli("plot", ngram_run, "--x", "alpha", "--metric", "kl_truth", "--seeds", "1", "-o", png)
    assert proc.returncode == 0, proc.stderr
    svg = png.with_suffix(".svg").read_text()
    assert "1 seed (no interval)" in svg and "bootstrap" not in svg


@pytest.mark.parametrize("args, says", [
    (["--x", "size"], "--x: one of alpha, params, order, filter_keep, model"),
    (["--x", "alpha", "--metric", "nope"], "no column 'nope'"),
    (["--x", "alpha", "--generation", "first"], "a generation number or 'last'"),
    (["--x", "alpha", "--generation", "-1"], "must be >= 0"),
    (["--x", "alpha", "--generation", "9"], "the runs have generations 0..2"),
    (["--x", "alpha", "--paradigms", "replace"], "no run has values of 'alpha'"),  # Replace has no alpha
    (["--generation", "1"], "go with --x"),
    (["--slope"], "go with --x"),
])
def test_bad_summary_options_are_one_line_errors(ngram_run, tmp_path, args, says):
    proc = cli("plot", ngram_run, *args, "-o", tmp_path / "x.png")
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and says in proc.stderr, proc.stderr
    assert not (tmp_path / "x.png").exists()


def test_no_matching_runs_is_a_one_line_error(ngram_run, tmp_path):
    empty = tmp_path / "no-run"
    empty.mkdir()
    proc = cli("plot", empty, "--x", "alpha")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "no metrics.csv" in proc.stderr


def test_ngram_params_are_the_stored_ngrams(ngram_run):
    from collapse.data.storygrammar import get_grammar
    from collapse.ngram.family import NGramFamily

    corpus = get_grammar(1000, 1.1, 0.8).sample(200, 3)[0]
    trained = NGramFamily(order=3).fit(corpus, seed=0)
    stored = sum(trained.model.table(n)[0].shape[0] for n in range(1, 4))
    assert trained.num_parameters() == stored > 0
    df = pd.read_csv(ngram_run / "metrics.csv")
    g0 = df[df.generation == 0].groupby("order")["params"].agg(["min", "max"])
    assert (g0["min"] == g0["max"]).all()  # M_0 is the same for every seed and paradigm (the real set is)
    assert g0.loc[2, "min"] < g0.loc[3, "min"]  # a trigram model stores the bigram model's n-grams and more
    assert df["params"].notna().all() and (df["params"] == df["params"].round()).all()


def test_transformer_params_are_the_networks_parameters(mixed_run):
    from collapse.transformer.family import TransformerFamily

    df = pd.read_csv(mixed_run / "metrics.csv")
    neo = df[df.model == "neo-tiny"]
    gen0 = next(pathlib.Path(mixed_run).glob("*neo-tiny*s0/gen_0000"))
    model = TransformerFamily.load(str(gen0))
    assert set(neo["params"]) == {sum(p.numel() for p in model.model.parameters())}
    assert model.num_parameters() == sum(p.numel() for p in model.model.parameters())


def test_model_axis_keeps_an_ngram_tables_orders_apart(ngram_run):
    # one [model] table with orders [2, 3] is two models: the axis names both, 3 seeds each
    # (first written, the axis pooled the orders: 6 values a point, a mean of two models)
    from collapse.experiment.summary import summary_points

    points = summary_points([str(ngram_run)], "model", "kl_truth", "last")
    assert {p.x for p in points} == {"ngram order 2", "ngram order 3"}
    assert all(p.values.size == 3 for p in points)


def test_legend_columns_fit_long_labels_across_the_figure():
    """Labels naming several run directories are long: fewer legend columns, so the legend
    stays inside the figure (it ran off both edges with one column per line)."""
    from collapse.experiment.summary import _legend_columns

    short = ["Replace · ngram"] * 8
    long = ["Accumulate-Subsample · study-data-type-grammar · transformer"] * 8
    assert _legend_columns(short, 9.0, 4) == 4
    assert _legend_columns(long, 9.0, 4) == 2
    assert _legend_columns(long, 3.0, 4) == 1 and _legend_columns([], 9.0, 4) == 1
