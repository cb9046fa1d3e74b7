import json

import numpy as np
import pytest

import collapse
from collapse.data.corpus import Corpus, Vocab, concatenate, whitespace_tokenize, word_tokenizer


def test_vocab_specials_first():
    v = Vocab(["a", "b", "a"])
    assert v.words == ["<unk>", "<s>", "</s>", "a", "b"]
    assert v.id("zzz") == 0


def test_whitespace_tokenizer_splits_ascii_space_only():
    assert whitespace_tokenize(" a\tb  c\r\n") == ["a", "b", "c"]
    # U+00A0 is not an lmplz separator
    assert whitespace_tokenize("a\u00a0b c") == ["a\u00a0b", "c"]


def test_word_tokenizer():
    assert word_tokenizer()("Lily's dog ran.") == ["Lily's", "dog", "ran", "."]
    assert word_tokenizer(lowercase=True)("The Cat!") == ["the", "cat", "!"]


def test_load_lines_keeps_empty_lines(tmp_path):
    p = tmp_path / "a.txt"
    p.write_text("a b\n\nc\n", encoding="utf-8")
    c = collapse.load_corpus(str(p))
    assert c.num_documents == 3
    assert [len(d) for d in c.documents()] == [2, 0, 1]
    assert list(c.texts()) == ["a b", "", "c"]


def test_load_tinystories(tmp_path):
    p = tmp_path / "t.txt"
    p.write_text("Once upon.\nThe end.\n<|endoftext|>\n\nSecond story.\n<|endoftext|>\n", encoding="utf-8")
    c = collapse.load_corpus(str(p), format="tinystories")
    assert list(c.texts()) == ["Once upon. The end.", "Second story."]


def test_load_jsonl_and_parquet(tmp_path):
    p = tmp_path / "t.jsonl"
    p.write_text(json.dumps({"text": "a b"}) + "\n" + json.dumps({"text": "c"}) + "\n", encoding="utf-8")
    assert list(collapse.load_corpus(str(p), format="jsonl").texts()) == ["a b", "c"]
    import pyarrow as pa
    import pyarrow.parquet as pq

    q = tmp_path / "t.parquet"
    pq.write_table(pa.table({"text": ["x y", "z"]}), q)
    assert list(collapse.load_corpus(str(q), format="parquet").texts()) == ["x y", "z"]


@pytest.mark.parametrize("content,fmt", [(b"\xff\xfe bad", "lines"), (b"{not json}\n", "jsonl"),
                                         (b'{"txt": "a"}\n', "jsonl"), (b"", "lines")])
def test_bad_input_is_value_error(tmp_path, content, fmt):
    p = tmp_path / "bad"
    p.write_bytes(content)
    with pytest.raises(ValueError):
        collapse.load_corpus(str(p), format=fmt)


def test_missing_file_and_unknown_options(tmp_path):
    with pytest.raises(ValueError):
        collapse.load_corpus(str(tmp_path / "nope.txt"))
    p = tmp_path / "a.txt"
    p.write_text("a\n")
    with pytest.raises(ValueError):
        collapse.load_corpus(str(p), format="csv")
    with pytest.raises(ValueError):
        collapse.load_corpus(str(p), tokenizer="bpe")


def test_select_and_concatenate():
    c = Corpus.from_texts(["a b", "c", "d e f"])
    s = c.select(np.array([2, 0, 2]))
    assert list(s.texts()) == ["d e f", "a b", "d e f"]
    other = Corpus.from_texts(["z a"])
    both = concatenate([c, other])
    assert list(both.texts()) == ["a b", "c", "d e f", "z a"]


def test_remap_unknown_to_unk():
    c = Corpus.from_texts(["a b q"])
    v = Vocab(["a", "b"])
    r = c.remap(v)
    assert list(r.tokens) == [3, 4, 0]


@pytest.mark.parametrize("tokenizer", ["word", "whitespace"])
def test_jsonl_lone_surrogate_is_a_clean_error(tmp_path, tokenizer):
    """JSON's "\\udcc3" decodes to a lone surrogate; with the word tokenizer it used to end
    in a pybind11 TypeError at fit time. Now the loader names the line."""
    from conftest import run_cli

    path = tmp_path / "c.jsonl"
    path.write_text('{"text": "a b"}\n{"text": "hello \\udcc3 world"}\n', encoding="ascii")
    with pytest.raises(collapse.CollapseError, match="line 2.*lone surrogate"):
        collapse.load_corpus(str(path), format="jsonl", tokenizer=tokenizer)
    rc, _, err = run_cli("ngram", "estimate", path, "--order", "2", "--format", "jsonl", "--tokenizer", tokenizer,
                         "-o", tmp_path / "m.arpa")
    assert rc == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
