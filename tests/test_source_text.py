"""A corpus keeps each document's source text as loaded (issue 24, "text as it is"): loaders,
selection, concatenation, resampling, the run directory's files and the Accumulate-Subsample
store carry it, aligned with the words; a corpus without it answers with its words joined."""

import dataclasses
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import collapse
from collapse.data import resample
from collapse.data.corpus import Corpus, Vocab, concatenate, iter_lines, load_corpus, whitespace_tokenize
from collapse.data.texts import DocumentTexts
from collapse.errors import CollapseError
from collapse.experiment import sources
from collapse.experiment.config import load_config
from collapse.experiment.loop import SYNTHETIC_ARROW, SYNTHETIC_SOURCE_TEXT, load_corpus_files, save_corpus
from collapse.experiment.synthetic_store import SyntheticStore

# Real-looking documents: capitals, punctuation glued to words, quotes, inner line breaks,
# runs of spaces and a tab, non-ASCII; none starts or ends with whitespace (the paragraph
# and tinystories loaders strip a document's ends).
STORIES = [
    'Once upon a time, Lily found a needle.\nShe said, "Mom, look!"  Her mom smiled.',
    "The dog ran\tfast. It was happy; very happy.",
    "Tom's café was closed… so they went home.\nThe end.",
    "One more: a story with UPPER and lower case, and (brackets).",
]


def joined(words_per_doc):
    return [" ".join(ws) for ws in words_per_doc]


def check_aligned(corpus, texts):
    """Each kept text is the expected one and its whitespace tokens are the document's words."""
    assert corpus.has_source_text
    assert corpus.document_texts() == list(texts)
    words = np.asarray(corpus.vocab.words, dtype=object)
    for i, text in enumerate(texts):
        assert list(words[corpus.document(i)]) == whitespace_tokenize(text)


def test_paragraphs_keep_punctuation_capitals_and_line_breaks(tmp_path):
    p = tmp_path / "stories.txt"
    p.write_text("\n\n".join(STORIES) + "\n\n\n", encoding="utf-8")
    c = load_corpus(str(p), format="paragraphs", keep_text=True)
    check_aligned(c, STORIES)
    assert "\n" in c.document_texts()[0] and '"Mom, look!"' in c.document_texts()[0]
    # the words are what they were without keep_text
    plain = load_corpus(str(p), format="paragraphs")
    assert not plain.has_source_text
    assert np.array_equal(plain.tokens, c.tokens) and plain.vocab == c.vocab


def test_jsonl_and_parquet_and_arrow_keep_the_field_as_stored(tmp_path):
    with_breaks = STORIES + ["  leading and trailing spaces kept \n"]
    p = tmp_path / "c.jsonl"
    p.write_text("".join(json.dumps({"text": t}) + "\n" for t in with_breaks), encoding="utf-8")
    check_aligned(load_corpus(str(p), format="jsonl", keep_text=True), with_breaks)
    table = pa.table({"text": with_breaks})
    pq.write_table(table, tmp_path / "c.parquet")
    check_aligned(load_corpus(str(tmp_path / "c.parquet"), format="parquet", keep_text=True), with_breaks)
    with pa.OSFile(str(tmp_path / "c.arrow"), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    check_aligned(load_corpus(str(tmp_path / "c.arrow"), format="arrow", keep_text=True), with_breaks)


def test_lines_fast_path_keeps_each_line_as_iter_lines_gives_it(tmp_path):
    p = tmp_path / "c.txt"
    p.write_bytes("First, a Line.\n\nthird\tline  with  spaces\r\nlast without newline é".encode("utf-8"))
    c = load_corpus(str(p), format="lines", keep_text=True)
    check_aligned(c, list(iter_lines(str(p))))
    assert c.document_texts()[1] == "" and c.document_texts()[2].endswith("\r")


def test_tinystories_and_word_tokenizer_and_lowercase(tmp_path):
    p = tmp_path / "c.txt"
    p.write_text("".join(s + "\n<|endoftext|>\n" for s in STORIES), encoding="utf-8")
    c = load_corpus(str(p), format="tinystories", keep_text=True)
    check_aligned(c, STORIES)
    # words split off punctuation and lowercased; the text stays as in the file
    w = load_corpus(str(p), format="tinystories", tokenizer="word", lowercase=True, keep_text=True)
    assert w.document_texts() == STORIES
    assert "," in {w.vocab[i] for i in w.document(0)} and "Lily" not in w.vocab and "lily" in w.vocab
    low = load_corpus(str(p), format="tinystories", lowercase=True, keep_text=True)
    assert low.document_texts() == STORIES and "once" in low.vocab and "Once" not in low.vocab


def test_words_only_corpus_answers_with_words_joined_by_single_spaces():
    c = Corpus.from_texts(STORIES)
    assert not c.has_source_text
    assert c.document_texts() == joined(whitespace_tokenize(t) for t in STORIES)
    g = collapse.data.storygrammar.get_grammar()
    sample, _ = g.sample(5, seed=3)
    assert sample.document_texts() == list(sample.texts())


def test_from_texts_builds_a_sample_from_decoded_texts():
    """What a text family's sample() does: decoded texts -> words for the loop + the texts."""
    c = Corpus.from_texts(iter(STORIES), vocab=Vocab(), keep_text=True)  # an iterator is taken once
    check_aligned(c, STORIES)
    same_words = Corpus.from_documents((whitespace_tokenize(t) for t in STORIES), vocab=Vocab())
    assert np.array_equal(c.tokens, same_words.tokens) and c.vocab == same_words.vocab


def test_select_remap_resample_keep_matching_texts():
    c = Corpus.from_texts(STORIES, keep_text=True)
    idx = np.array([3, 0, 0, 2])
    check_aligned(c.select(idx), [STORIES[i] for i in idx])
    check_aligned(resample.gather(c, idx), [STORIES[i] for i in idx])
    drawn = resample.sample_documents(c, 7, seed=5)
    chosen = resample.sample_indices(c.num_documents, 7, seed=5)
    check_aligned(drawn, [STORIES[i] for i in chosen])
    sub = resample.subsample(c, n=2, seed=9)
    kept = resample.subsample_indices(c.num_documents, 9, n=2)
    check_aligned(sub, [STORIES[i] for i in kept])
    bigger = Vocab(["zzz"] + c.vocab.words[3:])
    check_aligned(c.remap(bigger), STORIES)
    check_aligned(c.select(np.zeros(0, dtype=np.int64)), [])


def test_concatenate_with_a_words_only_corpus_gives_texts_for_all():
    kept = Corpus.from_texts(STORIES[:2], keep_text=True)
    words_only = Corpus.from_texts(["A  sampled\tstory ,  here", "another one"])
    both = concatenate([kept, words_only, kept])
    expected = STORIES[:2] + ["A sampled story , here", "another one"] + STORIES[:2]
    check_aligned(both, expected)
    assert not concatenate([words_only, words_only]).has_source_text


def test_mismatched_texts_are_refused():
    c = Corpus.from_texts(STORIES)
    with pytest.raises(CollapseError, match="one per document"):
        c.with_source_text(STORIES[:2])
    with pytest.raises(CollapseError, match="UTF-8"):
        DocumentTexts.from_utf8(b"ok\xff", np.array([0, 3]))


def test_texts_are_one_buffer_not_a_python_object_per_document():
    n = 20_000
    texts = [f"Story {i}: a cat, a dog.\nThe end!" for i in range(n)]
    c = Corpus.from_texts(texts, keep_text=True)
    utf8 = sum(len(t.encode("utf-8")) for t in texts)
    assert utf8 <= c.source_text.nbytes <= utf8 + 8 * (n + 1)  # the text and one int64 offset each
    many = concatenate([c, c.select(np.arange(n // 2))])  # a selection and a concatenation stay compact
    assert many.source_text.nbytes <= 1.5 * (utf8 + 8 * (n + 1))
    assert c.source_text[12_345] == texts[12_345]


def test_save_and_load_round_trip_in_both_formats(tmp_path):
    c = Corpus.from_texts(STORIES, keep_text=True)
    for fmt in ("arrow", "text"):
        d = tmp_path / fmt
        d.mkdir()
        save_corpus(str(d), c, 3, fmt)
        back = load_corpus_files(str(d))
        check_aligned(back, STORIES)
        assert np.array_equal(back.tokens, c.tokens) and back.vocab == c.vocab
        # a corpus without text is saved as before: no text file (a stale one is removed)
        save_corpus(str(d), Corpus.from_texts(STORIES), 3, fmt)
        assert not (d / SYNTHETIC_SOURCE_TEXT).exists()
        assert not load_corpus_files(str(d)).has_source_text
    assert (tmp_path / "arrow" / SYNTHETIC_ARROW).exists()
    assert not [p for p in tmp_path.rglob("*") if ".tmp." in p.name]  # written atomically, nothing left


def test_accumulate_subsample_store_keeps_texts(tmp_path):
    store = SyntheticStore(str(tmp_path / "pool"))
    part = store.put(0, Corpus.from_texts(STORIES, keep_text=True))
    check_aligned(part.gather(np.array([2, 0])), [STORIES[2], STORIES[0]])
    plain = store.put(1, Corpus.from_texts(STORIES))
    assert not plain.gather(np.array([1])).has_source_text


def test_wants_source_text_follows_the_family_flag(tmp_path):
    p = tmp_path / "c.txt"
    docs = [f"Doc {i}: Hello, World!\nLine two." for i in range(40)]
    p.write_text("\n\n".join(docs), encoding="utf-8")
    cfg = load_config({"experiment": {"generations": 1, "paradigms": ["fresh"], "alphas": [0.5],
                                      "progress": False},
                       "data": {"source": "file", "path": str(p), "format": "paragraphs",
                                "heldout_documents": 4, "num_documents": 10},
                       "model": {"order": 2}})
    assert not sources.wants_source_text(cfg)  # the n-gram family reads words only
    data = sources.load_real_data(cfg)
    assert not data.real.has_source_text and not data.heldout.has_source_text

    class ReadsText:
        uses_source_text = True

    assert sources.wants_source_text(cfg, family_of=lambda name: ReadsText)
    data = sources.load_real_data(cfg, keep_text=True)
    for corpus in (data.real, data.heldout, data.fresh(1, 5)):
        texts = corpus.document_texts()
        assert corpus.has_source_text and all(t in docs for t in texts)
        check_aligned(corpus, texts)
    # the words are the same as without text
    words = sources.load_real_data(cfg, keep_text=False)
    assert np.array_equal(words.real.tokens, data.real.tokens) and words.real.vocab == data.real.vocab


def test_tinystories_sample_keeps_its_punctuation(tinystories_dir):
    c = load_corpus(str(tinystories_dir / "train-head.txt"), format="tinystories", keep_text=True)
    first = c.document_texts()[0]
    assert first.startswith("One day, a little girl named Lily found a needle in her room.")
    assert '"Mom, I found this needle.' in first and "\n" in first  # quotes, capitals, paragraph breaks
    assert c.num_documents == len(c.source_text) > 2000
    check_aligned(c.select(np.arange(50)), c.document_texts()[:50])


def test_a_run_whose_family_wants_text_loads_it_and_gives_the_same_metrics(tmp_path, monkeypatch):
    """Keeping the source text changes no number: R, held-out and fresh documents keep their
    texts (checked on what the loop loaded), every paradigm carries them (accumulate and
    accumulate-subsample mix R's texts with the n-gram samples' joined words), metrics equal."""
    from collapse.experiment import loop
    from collapse.experiment.rundir import TIMING_COLUMNS

    p = tmp_path / "c.txt"
    docs = [f"Story {i}: the {'cat' if i % 3 else 'dog'} ran, then sat.\nThe End!" for i in range(120)]
    p.write_text("\n\n".join(docs), encoding="utf-8")
    raw = {"experiment": {"generations": 2, "paradigms": ["replace", "accumulate", "accumulate-subsample", "fresh"],
                          "alphas": [0.5], "workers": 1, "progress": False},
           "data": {"source": "file", "path": str(p), "format": "paragraphs", "heldout_documents": 10,
                    "num_documents": 40},
           "model": {"order": 2}}
    loaded = []
    file_data = sources._file_data
    monkeypatch.setattr(sources, "_file_data", lambda cfg, keep: loaded.append(file_data(cfg, keep)) or loaded[-1])

    def run(out):
        df = collapse.run_experiment(raw, out=str(tmp_path / out))
        return df.drop(columns=[c for c in TIMING_COLUMNS if c in df.columns])

    words = run("words")
    assert not loaded[-1].real.has_source_text
    ngram = sources.registration("ngram")
    monkeypatch.setattr(sources, "registration",
                        lambda name: dataclasses.replace(ngram, uses_source_text=True) if name == "ngram" else None)
    texts = run("texts")
    data = loaded[-1]
    assert data.real.has_source_text and data.heldout.has_source_text and data.fresh(1, 3).has_source_text
    assert all(t in docs for t in data.real.document_texts())
    assert words.equals(texts)
    loop._DATA_CACHE.clear()
