"""Pruning in the experiment loop (`prune = [...]` in an n-gram model table): every
generation of every paradigm fits the pruned model of its training corpus, Accumulate's
pool included; and Accumulate-Subsample's S_k wait on disk (experiment.synthetic_store),
memory-mapped one at a time, drawing the very same documents as the in-memory pool.
"""

from __future__ import annotations

import gzip
import os

import numpy as np
import pytest

import collapse
from collapse import _core
from collapse.data.corpus import concatenate
from collapse.errors import CollapseError
from collapse.experiment import synthetic_store
from collapse.experiment.config import parse_config
from collapse.experiment.loop import (PURPOSE_CELL, PURPOSE_PARADIGM, gen_dir, load_corpus_files, run_experiment)
from collapse.experiment.paradigms import draw_from_pool, training_corpus
from collapse.experiment.sources import load_real_data
from collapse.experiment.synthetic_store import STORE_DIR, SyntheticStore

PRUNE = [0, 1]
G = 2


def config(prune=PRUNE, paradigms=("replace", "accumulate", "accumulate-subsample")):
    return {"experiment": {"name": "pruned", "generations": G, "seeds": [0], "paradigms": list(paradigms),
                           "workers": 1, "progress": False},
            "data": {"source": "grammar", "num_documents": 300, "heldout_documents": 40, "seed": 1},
            "output": {"model_every": 1},
            "model": [{"name": "pruned", "family": "ngram", "order": 3, "prune": prune}]}


def saved_arpa(directory):
    with gzip.open(os.path.join(directory, "model.arpa.gz"), "rb") as f:
        return f.read()


def pruned_arpa(corpus, tmp_path):
    path = tmp_path / "expected.arpa"
    collapse.NGramModel.fit(corpus, order=3, prune=PRUNE).to_arpa(str(path))
    return path.read_bytes()


def subsample_corpus(cell, t, real, synthetic):
    """D_t of Accumulate-Subsample drawn in memory, with the loop's seeds."""
    cell_key = _core.derive_seed(_core.derive_seed(cell.seed, PURPOSE_CELL), cell.tag)
    para_key = _core.derive_seed(_core.derive_seed(cell_key, t), PURPOSE_PARADIGM)
    return training_corpus(cell.paradigm, None, t, real, synthetic, lambda p: _core.derive_seed(para_key, p))


def test_every_generation_of_every_paradigm_is_pruned(tmp_path, monkeypatch):
    opened = []
    real_gather = synthetic_store.StoredPart.gather
    monkeypatch.setattr(synthetic_store.StoredPart, "gather",
                        lambda self, idx: opened.append(self.prefix) or real_gather(self, idx))
    raw = config()
    run_dir = tmp_path / "run"
    run_experiment(raw, out=str(run_dir))
    cfg = parse_config(raw)
    real = load_real_data(cfg).real
    for cell in cfg.cells():
        synthetic = [load_corpus_files(gen_dir(str(run_dir), cell, k)) for k in range(G)]
        for t in range(G + 1):
            if t == 0:
                train = real
            elif cell.paradigm == "replace":
                train = synthetic[t - 1].select(np.arange(real.num_documents))
            elif cell.paradigm == "accumulate":
                train = concatenate([real] + synthetic[:t])
            else:
                train = subsample_corpus(cell, t, real, synthetic)
            got = saved_arpa(gen_dir(str(run_dir), cell, t))
            assert got == pruned_arpa(train, tmp_path), f"{cell.id} generation {t}"
        # the store is the cell's until it is done
        assert not (run_dir / cell.id / STORE_DIR).exists()
    # generation t of Accumulate-Subsample mapped S_0 .. S_{t-1}, each once
    assert [os.path.basename(p) for p in opened] == ["s_0000", "s_0000", "s_0001"]


def test_prune_in_a_model_table_is_checked():
    with pytest.raises(CollapseError, match=r"model\[0\]\.prune: must be non-decreasing"):
        parse_config(config(prune=[0, 2, 1]))
    with pytest.raises(CollapseError, match=r"model\[0\]\.prune: has 4 thresholds but the model has order 3"):
        parse_config(config(prune=[0, 1, 1, 1]))
    assert parse_config(config()).models[0].prune == PRUNE


def test_stored_pool_draws_what_the_memory_pool_draws(tmp_path):
    corpus = collapse.Corpus.from_texts([f"a{i % 7} b{i % 5} c{i}" for i in range(500)])
    parts = [corpus.select(np.arange(i, 500, 4)) for i in range(4)]
    store = SyntheticStore(str(tmp_path / "pool"))
    stored = [parts[0]] + [store.put(k, p) for k, p in enumerate(parts[1:])]
    for seed in range(5):
        a, b = draw_from_pool(parts, 180, seed), draw_from_pool(stored, 180, seed)
        assert a.vocab == b.vocab
        assert np.array_equal(a.tokens, b.tokens) and np.array_equal(a.offsets, b.offsets)
    # a part missing from the store is written from its saved corpus (a resumed run)
    again = SyntheticStore(str(tmp_path / "pool")).part(7, lambda: parts[3])
    assert again.num_documents == parts[3].num_documents
