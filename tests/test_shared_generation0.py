"""Generation 0 shared across cells: a transformer M_0 sampled by a second cell writes its
shards into that cell's own work folder (issue 26, 10a), and a study grown on --resume
(seeds, paradigms, keep fractions, models added) reuses what exists and ends equal to a
study run with the larger config from the start (issue 26, item 3)."""

import copy
import re

import pandas as pd
import pytest

pytest.importorskip("torch", reason="the transformer family needs torch (collapse[torch])")

from collapse.errors import CollapseError  # noqa: E402
from collapse.experiment.loop import run_experiment  # noqa: E402
from collapse.experiment.rundir import TIMING_COLUMNS  # noqa: E402

NEO = {"name": "neo", "family": "transformer", "preset": "custom", "hidden_size": 16, "num_layers": 2,
       "num_heads": 2, "window_size": 16, "max_position_embeddings": 128, "context_length": 96, "epochs": 1,
       "batch_size": 8, "micro_batch_size": 8, "lr": 3e-3, "bpe_vocab_size": 300, "max_new_tokens": 60,
       "sample_batch_size": 50, "device": "cpu", "threads": 1, "progress": False}


def _config(generations=1, seeds=(0,), paradigms=("replace",), keeps=None, models=(NEO,), workers=1):
    cfg = {"experiment": {"name": "shared", "generations": generations, "seeds": list(seeds),
                          "paradigms": list(paradigms), "workers": workers, "progress": False},
           "data": {"source": "grammar", "num_documents": 60, "heldout_documents": 20, "seed": 1},
           "model": [copy.deepcopy(m) for m in models]}
    if keeps is not None:
        cfg["filter"] = {"method": "perplexity", "keep_fractions": list(keeps), "max_rounds": 20}
    return cfg


def _rows(df: pd.DataFrame) -> pd.DataFrame:
    df = df.drop(columns=[c for c in df.columns if c in TIMING_COLUMNS])
    return df.sort_values(["model", "paradigm", "filter_keep", "seed", "generation"]).reset_index(drop=True)


def test_filter_keep_fractions_share_a_transformer_generation0(tmp_path):
    # before: the second cell sampled M_0 into the first cell's removed work folder
    # (FileNotFoundError), because the shards' folder was a family attribute the loop set per cell
    out = tmp_path / "run"
    df = run_experiment(_config(keeps=[1.0, 0.5]), out=str(out))
    assert sorted(df.filter_keep.unique()) == [0.5, 1.0]
    assert (df.status == "ok").all() and len(df) == 2 * 2
    assert not list(out.rglob("work_*"))  # every cell's checkpoints and shards removed on commit
    # the cell with keep 0.5 alone draws the same generations as inside the two-cell study
    alone = run_experiment(_config(keeps=[0.5]), out=str(tmp_path / "alone"))
    pd.testing.assert_frame_equal(_rows(alone), _rows(df[df.filter_keep == 0.5]))


TRI = {"name": "tri", "family": "ngram", "orders": [2]}


def _grow(tmp_path, small, large):
    """Run ``small``, resume it with ``large``; run ``large`` from scratch; both frames."""
    grown, fresh = tmp_path / "grown", tmp_path / "fresh"
    run_experiment(small, out=str(grown))
    stamps = {p: p.stat().st_mtime_ns for p in grown.rglob("gen_*/*") if p.is_file()}
    df = run_experiment(large, out=str(grown), resume=True)
    assert stamps and all(p.stat().st_mtime_ns == t for p, t in stamps.items()), "a finished cell was redone"
    return df, run_experiment(large, out=str(fresh)), grown, fresh


def test_grow_seeds_paradigms_and_orders_equals_a_fresh_larger_study(tmp_path):
    small = _config(seeds=[0], paradigms=["replace"], models=[TRI, NEO])
    large = _config(seeds=[0, 1], paradigms=["replace", "accumulate-subsample"],
                    models=[{**TRI, "orders": [2, 3]}, NEO])
    df, direct, grown, fresh = _grow(tmp_path, small, large)
    assert len(df) == (2 + 1) * 2 * 2 * 2  # (two orders + neo) x paradigms x seeds x generations 0..1
    pd.testing.assert_frame_equal(_rows(df), _rows(direct))
    # the new paradigm's generation 0 is the existing cell's (reused, not trained again), byte for byte
    reused = df[(df.paradigm == "accumulate-subsample") & (df.seed == 0) & (df.generation == 0)
                & (df.model == "neo")]
    assert (reused.fit_seconds == 0).all()
    for cell in ("neo_accumulate-subsample_s0", "tri_accumulate-subsample_o2_s0"):
        for f in sorted((fresh / cell / "gen_0000").iterdir()):
            assert f.read_bytes() == (grown / cell / "gen_0000" / f.name).read_bytes(), f


def test_grow_keep_fractions_loads_the_saved_generation0_model(tmp_path):
    # keep 0.5 draws its own S_0 from M_0: the transformer's M_0 is read back from the
    # finished cell's gen_0000 (not trained again) and gives exactly what a fresh M_0 gives
    df, direct, _, _ = _grow(tmp_path, _config(keeps=[1.0]), _config(keeps=[1.0, 0.5]))
    pd.testing.assert_frame_equal(_rows(df), _rows(direct))
    assert sorted(df.filter_keep.unique()) == [0.5, 1.0]


def test_resume_refuses_what_changes_existing_cells_naming_the_field(tmp_path):
    out = str(tmp_path / "run")
    run_experiment(_config(seeds=[0, 1], models=[TRI]), out=out)
    cases = [
        (_config(seeds=[1], models=[TRI]), "experiment.seeds: [0, 1] -> [1]"),
        (_config(seeds=[0, 1], models=[{**TRI, "smoothing": "kn"}]), "model[0].smoothing: 'mkn' -> 'kn'"),
        (_config(seeds=[0, 1], models=[{**TRI, "orders": [3]}]), "model[0].orders: [2] -> [3]"),
        (_config(seeds=[0, 1], models=[{**TRI, "name": "bi"}]), "model: 'tri' is gone"),
        ({**_config(seeds=[0, 1], models=[TRI]), "data": {"source": "grammar", "num_documents": 61,
                                                           "heldout_documents": 20, "seed": 1}},
         "data.num_documents: 60 -> 61"),
    ]
    for cfg, message in cases:
        with pytest.raises(CollapseError, match=re.escape(message)):
            run_experiment(cfg, out=out, resume=True)
