"""Generation 0 shared across cells: a transformer M_0 sampled by a second cell writes its
shards into that cell's own work folder (issue 26, 10a), and a study grown on --resume
(seeds, paradigms, keep fractions, models added) reuses what exists and ends equal to a
study run with the larger config from the start (issue 26, item 3)."""

import copy

import pandas as pd
import pytest

pytest.importorskip("torch", reason="the transformer family needs torch (collapse[torch])")

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
