"""What a run directory keeps ([output]): models of the first, every k-th and the last
generation; S_t as Arrow token ids by default, gzip text on request, and both read back
(a run written before the Arrow format resumes)."""

import os
import pathlib

import numpy as np
import pandas as pd
import pytest
from collapse.data.corpus import Corpus
from collapse.errors import CollapseError
from collapse.experiment.config import ConfigError, OutputTable, parse_config, to_toml
from collapse.experiment.loop import (
    SYNTHETIC_ARROW,
    SYNTHETIC_TEXT,
    SYNTHETIC_VOCAB,
    load_corpus_files,
    run_experiment,
    save_corpus,
)
from collapse.experiment.rundir import TIMING_COLUMNS

CELL = "accumulate-subsample_o2_s0"


def _raw(generations, **output):
    return {"experiment": {"generations": generations, "paradigms": ["accumulate-subsample"], "workers": 1,
                           "progress": False},
            "data": {"source": "grammar", "num_documents": 120, "heldout_documents": 30, "seed": 2},
            "model": {"order": 2}, "output": output}


def _generations_with(run: pathlib.Path, name: str):
    return sorted(int(p.parent.name[4:]) for p in (run / CELL).glob(f"gen_*/{name}"))


def _metrics(run: pathlib.Path) -> pd.DataFrame:
    df = pd.read_csv(run / "metrics.csv")
    return df.drop(columns=[c for c in TIMING_COLUMNS if c in df.columns])


@pytest.mark.parametrize("save,every,generations,expected", [
    (True, 10, 20, [0, 10, 20]),
    (True, 10, 6, [0, 6]),
    (True, 5, 12, [0, 5, 10, 12]),
    (True, 1, 3, [0, 1, 2, 3]),
    (False, 10, 20, []),
])
def test_keeps_model_policy(save, every, generations, expected):
    out = OutputTable(save_models=save, model_every=every)
    assert [t for t in range(generations + 1) if out.keeps_model(t, generations)] == expected


def test_default_config_keeps_first_every_tenth_and_last():
    out = parse_config(_raw(3)).output
    assert (out.save_models, out.model_every, out.corpus_format) == (True, 10, "arrow")
    # the written config carries them (and an old config without them parses to the defaults)
    assert "model_every = 10" in to_toml(parse_config(_raw(3))) and 'corpus_format = "arrow"' in to_toml(
        parse_config(_raw(3)))


@pytest.mark.parametrize("output,field", [({"model_every": 0}, "output.model_every"),
                                          ({"corpus_format": "csv"}, "output.corpus_format")])
def test_bad_output_settings_name_the_field(output, field):
    with pytest.raises(ConfigError, match=f"^{field}:"):
        parse_config(_raw(2, **output))


def test_a_run_saves_models_per_policy_and_arrow_corpora(tmp_path):
    run = tmp_path / "run"
    run_experiment(parse_config(_raw(7, model_every=3)), out=str(run))
    assert _generations_with(run, "model.arpa.gz") == [0, 3, 6, 7]
    assert _generations_with(run, SYNTHETIC_ARROW) == list(range(8))
    assert _generations_with(run, SYNTHETIC_TEXT) == []


def test_resuming_an_old_text_run_with_the_new_defaults_equals_an_unbroken_run(tmp_path):
    # An "old" run: every model, S_t as gzip text, and a config.toml without the new keys
    # (as written before they existed). Extending it under the new defaults reads its text
    # corpora (Accumulate-Subsample draws from every S_k), writes Arrow from there on, and
    # ends with the metrics of an unbroken run; the old run's end keeps its model (it was
    # the last when written), and so does the new end.
    old, full = tmp_path / "old", tmp_path / "full"
    run_experiment(parse_config(_raw(3, model_every=1, corpus_format="text")), out=str(old))
    config = old / "config.toml"
    config.write_text("".join(line for line in config.read_text().splitlines(keepends=True)
                              if not line.startswith(("model_every", "corpus_format"))))
    run_experiment(parse_config(_raw(13)), out=str(old), resume=True)
    run_experiment(parse_config(_raw(13)), out=str(full))
    pd.testing.assert_frame_equal(_metrics(old), _metrics(full))
    assert _generations_with(old, SYNTHETIC_TEXT) == [0, 1, 2, 3]
    assert _generations_with(old, SYNTHETIC_ARROW) == list(range(4, 14))
    assert _generations_with(old, "model.arpa.gz") == [0, 1, 2, 3, 10, 13]
    assert _generations_with(full, "model.arpa.gz") == [0, 10, 13]
    for t in range(4, 14):  # what the extension wrote is byte-identical to the unbroken run's
        for name in (SYNTHETIC_ARROW, SYNTHETIC_VOCAB):
            rel = os.path.join(CELL, f"gen_{t:04d}", name)
            assert (old / rel).read_bytes() == (full / rel).read_bytes(), rel
    for t in range(4):  # and what it read is the same corpus in the other format
        a = load_corpus_files(str(old / CELL / f"gen_{t:04d}"))
        b = load_corpus_files(str(full / CELL / f"gen_{t:04d}"))
        assert a.vocab.words == b.vocab.words
        assert np.array_equal(a.tokens, b.tokens) and np.array_equal(a.offsets, b.offsets)


def test_a_damaged_arrow_corpus_names_its_directory(tmp_path):
    gen = tmp_path / "gen_0000"
    gen.mkdir()
    save_corpus(str(gen), Corpus.from_texts(["a b c", "", "c a"]), 6)
    data = (gen / SYNTHETIC_ARROW).read_bytes()
    (gen / SYNTHETIC_ARROW).write_bytes(data[: len(data) // 2])
    with pytest.raises(CollapseError, match=f"^{gen}: "):
        load_corpus_files(str(gen))
