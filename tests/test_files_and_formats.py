"""collapse.files (the one atomic, durable writer), the Arrow loader (a Hugging Face
save_to_disk directory or .arrow files, via pyarrow) and the families' save/load round trip."""

import json
import os

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings, strategies as st

import collapse
from collapse import files
from collapse.data.corpus import iter_documents, load_corpus
from collapse.experiment.config import load_config, to_toml
from collapse.ngram.family import NGramFamily

TEXTS = ["the cat sat", "a dog ran far", "the dog sat", "", "a cat ran"]


def test_atomic_write_replaces_whole_and_fsyncs(tmp_path, monkeypatch):
    path = tmp_path / "state.json"
    files.write_json(str(path), {"a": 1})
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    files.write_json(str(path), {"a": 2})
    assert json.loads(path.read_text()) == {"a": 2}
    assert len(synced) == 2  # the file, then its directory
    # a writer that fails leaves the old content and no temporary file
    with pytest.raises(RuntimeError):
        with files.atomic_path(str(path)) as tmp:
            with open(tmp, "w") as f:
                f.write("{half")
            raise RuntimeError("killed")
    assert json.loads(path.read_text()) == {"a": 2}
    assert os.listdir(tmp_path) == ["state.json"]


def test_toml_writer_escapes_what_the_old_one_did_not(tmp_path):
    import tomllib

    tables = {"t": {"text": 'line "one"\nline two\\', "key with space": 1, "skip": None, "xs": [1.5, 2]}}
    files.write_toml(str(tmp_path / "c.toml"), tables, header="# h\n")
    back = tomllib.loads((tmp_path / "c.toml").read_text())
    assert back == {"t": {"text": 'line "one"\nline two\\', "key with space": 1, "xs": [1.5, 2]}}


def _arrow_table():
    return pa.table({"text": TEXTS, "id": list(range(len(TEXTS)))})


def test_arrow_file_and_save_to_disk_directory(tmp_path):
    table = _arrow_table()
    stream = tmp_path / "data.arrow"  # IPC stream: what datasets writes
    with pa.OSFile(str(stream), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    ipc_file = tmp_path / "file.arrow"
    with pa.OSFile(str(ipc_file), "wb") as sink, pa.ipc.new_file(sink, table.schema) as w:
        w.write_table(table)
    # a save_to_disk directory: two shards listed in state.json (out of name order)
    d = tmp_path / "ds"
    d.mkdir()
    for name, part in (("data-00001-of-00002.arrow", table.slice(3)), ("data-00000-of-00002.arrow", table.slice(0, 3))):
        with pa.OSFile(str(d / name), "wb") as sink, pa.ipc.new_stream(sink, part.schema) as w:
            w.write_table(part)
    (d / "state.json").write_text(json.dumps({"_data_files": [{"filename": "data-00000-of-00002.arrow"},
                                                              {"filename": "data-00001-of-00002.arrow"}]}))
    (d / "dataset_info.json").write_text("{}")
    expected = collapse.Corpus.from_texts(TEXTS)
    for path in (stream, ipc_file, d):
        assert list(iter_documents(str(path), "arrow")) == TEXTS
        c = load_corpus(str(path), format="arrow")
        assert c.tokens.tolist() == expected.tokens.tolist() and c.offsets.tolist() == expected.offsets.tolist()
    with pytest.raises(collapse.CollapseError, match="no column 'body'"):
        load_corpus(str(d), format="arrow", field="body")
    # the experiment config accepts the directory for format = "arrow"
    cfg = load_config({"data": {"source": "file", "path": str(d), "format": "arrow", "heldout_fraction": 0.2},
                       "experiment": {"generations": 1}})
    assert cfg.data.path == str(d) and "arrow" in to_toml(cfg)


def test_arrow_cli_estimate(tmp_path):
    import subprocess
    import sys

    stream = tmp_path / "data.arrow"
    table = _arrow_table()
    with pa.OSFile(str(stream), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    proc = subprocess.run([sys.executable, "-m", "collapse", "ngram", "estimate", str(stream), "--format", "arrow",
                           "--order", "2", "-o", str(tmp_path / "m.arpa")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "\\data\\" in (tmp_path / "m.arpa").read_text()


def test_ngram_family_save_load_round_trip(tmp_path):
    corpus = collapse.Corpus.from_texts([t for t in TEXTS if t] * 3)
    family = NGramFamily(order=2)
    trained = family.fit(corpus, seed=0)
    trained.save(str(tmp_path))
    loaded = family.load(str(tmp_path))
    np.testing.assert_allclose(loaded.document_log_probs(corpus), trained.document_log_probs(corpus), rtol=1e-6)
    a, b = trained.sample(20, seed=3), loaded.sample(20, seed=3)
    assert list(a.texts()) == list(b.texts())


WORDS = ["the", "cat", "Grüße", "naïve", "日本", "a\x0bb", "x\x0cy", "z"]


@settings(max_examples=60, deadline=None)
@given(docs=st.lists(st.lists(st.sampled_from(WORDS), max_size=6), min_size=1, max_size=12),
       shuffle=st.randoms(use_true_random=False), corpus_format=st.sampled_from(["arrow", "text"]),
       level=st.sampled_from([0, 1, 6]))
def test_loop_corpus_files_round_trip(tmp_path_factory, docs, shuffle, corpus_format, level):
    # The loop's S_t files (Arrow token ids or gzip text, at any level, + vocabulary): reading
    # them back gives the same ids, offsets (empty documents included) and vocabulary, for words
    # that hold non-ASCII letters or the control characters lmplz keeps inside words (\v, \f).
    from collapse.data.corpus import Corpus, Vocab
    from collapse.experiment.loop import load_corpus_files, save_corpus

    order = list(WORDS)
    shuffle.shuffle(order)
    vocab = Vocab(order)  # ids in an order that is not first appearance
    corpus = Corpus.from_documents(docs, vocab=vocab, grow=False)
    d = str(tmp_path_factory.mktemp("gen"))
    save_corpus(d, corpus, level, corpus_format)
    back = load_corpus_files(d)
    assert back.vocab.words == corpus.vocab.words
    assert np.array_equal(back.tokens, corpus.tokens) and np.array_equal(back.offsets, corpus.offsets)


def test_loop_corpus_files_refuse_bad_utf8(tmp_path):
    import gzip

    from collapse.experiment.loop import SYNTHETIC_TEXT, SYNTHETIC_VOCAB, load_corpus_files

    with gzip.open(tmp_path / SYNTHETIC_VOCAB, "wb") as f:
        f.write(b"cat\n")
    with gzip.open(tmp_path / SYNTHETIC_TEXT, "wb") as f:
        f.write(b"cat\ncat \xff\n")
    with pytest.raises(collapse.CollapseError, match="line 2"):
        load_corpus_files(str(tmp_path))
