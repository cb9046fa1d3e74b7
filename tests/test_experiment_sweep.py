"""Sweeps: the same cells give the same metrics serially, in local processes and on Ray;
quality filters keep the size the paradigm needs."""

import pandas as pd
import pytest

import collapse
from collapse.experiment.rundir import TIMING_COLUMNS

SWEEP = {
    "experiment": {"generations": 2, "paradigms": ["replace", "mix"], "alphas": [0.5], "seeds": [0, 5],
                   "progress": False},
    "data": {"source": "grammar", "num_documents": 150, "heldout_documents": 60},
    "model": {"family": "ngram", "orders": [2, 3]},
}


def without_timing(df):
    return df.drop(columns=[c for c in TIMING_COLUMNS if c in df.columns]).reset_index(drop=True)


def with_executor(**kw):
    cfg = {k: dict(v) for k, v in SWEEP.items()}
    cfg["experiment"].update(kw)
    return cfg


@pytest.fixture(scope="module")
def serial():
    return without_timing(collapse.run_experiment(with_executor(workers=1)))


def test_sweep_is_the_product(serial):
    assert len(serial) == 2 * 2 * 2 * 3  # paradigms x orders x seeds x generations
    assert set(serial.order) == {2, 3} and set(serial.seed) == {0, 5}


def test_process_pool_gives_identical_metrics(serial):
    parallel = without_timing(collapse.run_experiment(with_executor(workers=2)))
    pd.testing.assert_frame_equal(serial, parallel, check_exact=True)


def test_ray_gives_identical_metrics(serial, tmp_path):
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install collapse[ray])")
    try:
        df = collapse.run_experiment(with_executor(executor="ray", workers=2), out=str(tmp_path / "ray"))
    finally:
        if ray.is_initialized():
            ray.shutdown()
    pd.testing.assert_frame_equal(serial, without_timing(df), check_exact=True)
    assert (tmp_path / "ray" / "manifest.json").exists()


def test_perplexity_filter_keeps_size_and_lowers_perplexity(tmp_path):
    base = {"experiment": {"generations": 1, "paradigms": ["replace"], "progress": False, "workers": 1},
            "data": {"source": "grammar", "num_documents": 200, "heldout_documents": 60},
            "model": {"order": 3}}
    flt = dict(base, filter={"method": "perplexity", "keep_fractions": [1.0, 0.3], "dedup": True})
    df = collapse.run_experiment(flt, out=str(tmp_path / "f"))
    assert set(df.filter_keep) == {1.0, 0.3}
    assert (df.synthetic_documents == 200).all() and (df.train_documents == 200).all()
    # kept documents have a lower perplexity under M_0 than unfiltered ones: their text is
    # closer to the real data, so the self-perplexity of the kept sample drops
    g0 = df[df.generation == 0].set_index("filter_keep")
    assert g0.loc[0.3, "self_ppl"] < 0.9 * g0.loc[1.0, "self_ppl"]
    assert g0.loc[0.3, "filter_pass_rate"] < 0.5
    # dedup: no document repeated within a filtered sample
    from collapse.experiment.loop import load_corpus_files

    corpus = load_corpus_files(str(tmp_path / "f" / "replace_o3_k0.3_s0" / "gen_0001"))
    docs = [d.tobytes() for d in corpus.documents()]
    assert len(set(docs)) == len(docs)
