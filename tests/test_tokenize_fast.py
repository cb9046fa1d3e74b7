"""The C++ whitespace tokenizer (collapse._core.tokenize_whitespace, used by load_corpus and
Corpus.from_texts) against the Python reference (whitespace_tokenize + from_documents)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import collapse
from collapse import _core
from collapse.data.corpus import Corpus, Vocab, _tokenize_bytes, iter_lines, iter_tinystories, whitespace_tokenize
from collapse.errors import CollapseError

# lmplz's delimiters, characters that look like spaces but are not delimiters (\v, \f,
# U+00A0, U+2028, U+0085), multi-byte letters, and the special words themselves.
PIECES = ["a", "b", "ab", "é", "日本", "😀", "x\u00a0y", " ", "  ", "\t", "\n", "\n\n", "\r", "\r\n", "\x00",
          "\v", "\f", "\u00a0", "\u2028", "\x85", "<s>", "<unk>", "</s>"]
texts_st = st.lists(st.sampled_from(PIECES), max_size=40).map("".join)
words_st = st.lists(st.sampled_from(["a", "b", "é", "日本", "a b", "", "x\u00a0y", "<s>", "zz"]), max_size=6)


def reference_lines(text, vocab, grow):
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return Corpus.from_documents(map(whitespace_tokenize, lines), vocab=vocab, grow=grow)


def assert_same(fast, ref):
    assert fast.vocab.words == ref.vocab.words
    np.testing.assert_array_equal(fast.offsets, ref.offsets)
    np.testing.assert_array_equal(fast.tokens, ref.tokens)
    assert fast.tokens.dtype == np.uint32 and fast.offsets.dtype == np.int64


@settings(max_examples=300, deadline=None)
@given(text=texts_st, words=st.none() | words_st, grow=st.booleans())
def test_lines_equal_python_reference(text, words, grow):
    fast = _tokenize_bytes(text.encode("utf-8"), None, None if words is None else Vocab(words), grow)
    ref = reference_lines(text, None if words is None else Vocab(words), grow)
    assert_same(fast, ref)


@settings(max_examples=200, deadline=None)
@given(texts=st.lists(texts_st, max_size=6), words=st.none() | words_st, grow=st.booleans(),
       lowercase=st.booleans())
def test_from_texts_equal_python_reference(texts, words, grow, lowercase):
    fast = Corpus.from_texts(texts, lowercase=lowercase, vocab=None if words is None else Vocab(words), grow=grow)
    tok = (lambda t: whitespace_tokenize(t.lower())) if lowercase else whitespace_tokenize
    ref = Corpus.from_documents(map(tok, texts), vocab=None if words is None else Vocab(words), grow=grow)
    assert_same(fast, ref)


def test_lines_edge_cases():
    assert _tokenize_bytes(b"", None, None, True).num_documents == 0
    c = _tokenize_bytes(b"\n", None, None, True)
    assert c.offsets.tolist() == [0, 0]
    c = _tokenize_bytes(b"a b\n\nb\tc", None, None, True)
    assert c.offsets.tolist() == [0, 2, 2, 4] and c.vocab.words[3:] == ["a", "b", "c"]
    assert c.tokens.tolist() == [3, 4, 4, 5]
    # no growth: unknown words are <unk>, the vocab is unchanged
    v = Vocab(["b"])
    c = _tokenize_bytes(b"a b\n", None, v, False)
    assert c.tokens.tolist() == [0, 3] and v.words == ["<unk>", "<s>", "</s>", "b"]


@settings(max_examples=500, deadline=None)
@given(data=st.binary(max_size=24) | st.lists(st.sampled_from(
    [b"a", b" ", b"\n", b"\xc3", b"\xa9", b"\xe6\x97", b"\xa5", b"\xf0\x9f\x98", b"\x80", b"\xed\xa0\x80",
     b"\xc0\xaf", b"\xf4\x90\x80\x80", b"\xff", b"\xe2\x82\xac"]), max_size=10).map(b"".join))
def test_utf8_validation_matches_python(data):
    try:
        data.decode("utf-8")
        expected = len(data)
    except UnicodeDecodeError as e:
        expected = e.start
    assert _core.first_invalid_utf8(data) == expected
    if expected == len(data):
        _core.tokenize_whitespace(data)
    else:
        line = data.count(b"\n", 0, expected) + 1
        with pytest.raises(ValueError, match=rf"invalid UTF-8 at byte {expected} \(line {line}\)"):
            _core.tokenize_whitespace(data)


def test_load_corpus_bad_utf8_names_file_byte_and_line(tmp_path):
    p = tmp_path / "bad.txt"
    p.write_bytes(b"good line\nbad \xe2\x82 here\n")
    with pytest.raises(CollapseError, match=r"bad.txt: invalid UTF-8 at byte 14 \(line 2\)"):
        collapse.load_corpus(str(p))


def test_bad_arguments_raise_value_error():
    with pytest.raises(ValueError):
        _core.tokenize_whitespace(b"a b", np.array([0, 2], dtype=np.int64))  # does not end at len
    with pytest.raises(ValueError):
        _core.tokenize_whitespace(b"a b", np.array([0, 3, 1, 3], dtype=np.int64))  # decreasing
    with pytest.raises(ValueError):
        _core.tokenize_whitespace(np.zeros(3, dtype=np.int32))  # not bytes
    with pytest.raises(ValueError, match="inside a UTF-8 character"):
        _core.tokenize_whitespace("aé".encode("utf-8"), np.array([0, 2, 3], dtype=np.int64))
    with pytest.raises(ValueError):
        _core.tokenize_whitespace(b"a b", None, [], True, 1, 0)  # min_bytes_per_thread < 1


@pytest.mark.parametrize("fmt", ["lines", "tinystories"])
def test_train_head_equal_python_reference(tinystories_dir, fmt):
    path = str(tinystories_dir / "train-head.txt")
    fast = collapse.load_corpus(path, format=fmt)
    text = (tinystories_dir / "train-head.txt").read_text(encoding="utf-8")
    docs = iter_lines(path) if fmt == "lines" else tinystories_reference(text)
    ref = Corpus.from_documents(map(whitespace_tokenize, docs))
    assert_same(fast, ref)
    # and into an existing vocabulary, without growth
    vocab = Vocab(ref.vocab.words[3:2000])
    fast = collapse.load_corpus(path, format=fmt, vocab=Vocab(vocab.words[3:]), grow=False)
    docs = iter_lines(path) if fmt == "lines" else tinystories_reference(text)
    assert_same(fast, Corpus.from_documents(map(whitespace_tokenize, docs), vocab=vocab, grow=False))


def tinystories_reference(text):
    """The line-by-line TinyStories splitter that iter_tinystories replaced (a regex split)."""
    story, docs = [], []
    for line in text.split("\n"):
        if line.strip() == "<|endoftext|>":
            doc = "\n".join(story).strip()
            if doc:
                docs.append(doc)
            story = []
        else:
            story.append(line)
    doc = "\n".join(story).strip()
    if doc:
        docs.append(doc)
    return docs


@settings(max_examples=300, deadline=None)
@given(pieces=st.lists(st.sampled_from(PIECES + ["<|endoftext|>", "\n<|endoftext|>\n", " <|endoftext|>\t",
                                                  "x<|endoftext|>", "\u2003", "\x1c"]), max_size=30))
def test_tinystories_split_equals_line_by_line_reference(tmp_path_factory, pieces):
    text = "".join(pieces)
    p = tmp_path_factory.mktemp("ts") / "t.txt"
    p.write_bytes(text.encode("utf-8"))
    assert list(iter_tinystories(str(p))) == tinystories_reference(text)


def test_jsonl_and_parquet_equal_python_reference(tmp_path):
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    texts = ["a b\tc", "", "é\u00a0x \v y", "\n\n", "<s> a\r\nb", "日本 😀"]
    ref = Corpus.from_documents(map(whitespace_tokenize, texts))
    p = tmp_path / "t.jsonl"
    p.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    assert_same(collapse.load_corpus(str(p), format="jsonl"), ref)
    q = tmp_path / "t.parquet"
    pq.write_table(pa.table({"text": texts}), str(q))
    assert_same(collapse.load_corpus(str(q), format="parquet"), ref)


@settings(max_examples=200, deadline=None)
@given(text=texts_st, words=words_st, grow=st.booleans(), threads=st.integers(2, 5),
       bounds_given=st.booleans())
def test_result_does_not_depend_on_threads(text, words, grow, threads, bounds_given):
    data = text.encode("utf-8")
    bounds = None
    if bounds_given:  # documents at byte cuts every 7 bytes, moved off continuation bytes
        cuts = sorted({0, len(data), *(c for c in range(0, len(data), 7) if data[c] & 0xC0 != 0x80)})
        bounds = np.asarray(cuts, dtype=np.int64)
    known = Vocab(words).words
    one = _core.tokenize_whitespace(data, bounds, known, grow, threads=1)
    # one byte per thread at least: every document boundary may start a chunk
    many = _core.tokenize_whitespace(data, bounds, known, grow, threads=threads, min_bytes_per_thread=1)
    np.testing.assert_array_equal(one[0], many[0])
    np.testing.assert_array_equal(one[1], many[1])
    assert one[2] == many[2]


def test_threads_on_train_head(tinystories_dir):
    data = (tinystories_dir / "train-head.txt").read_bytes()
    known = Vocab().words
    one = _core.tokenize_whitespace(data, None, known, True, threads=1)
    for threads in (2, 7):
        many = _core.tokenize_whitespace(data, None, known, True, threads=threads, min_bytes_per_thread=1)
        np.testing.assert_array_equal(one[0], many[0])
        np.testing.assert_array_equal(one[1], many[1])
        assert one[2] == many[2]
