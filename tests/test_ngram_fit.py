"""NGramModel.fit: vocabulary, threads, degenerate corpora and their fallback (against
lmplz --discount_fallback), bad input."""

from __future__ import annotations

import numpy as np
import pytest

import collapse
from collapse import _core

from lmplz import read_arpa_dict, run_lmplz


def corpus_of(lines):
    return collapse.Corpus.from_texts(lines)


DEGENERATE = {
    "one repeated document": ["the cat sat on the mat"] * 20,
    "tiny vocabulary": ["a b a b", "b a", "a a a b"] * 3,
    "single word": ["hello"],
    "empty documents": ["", "", "x"],
    "all documents empty": ["", ""],
    "no singletons": ["a b c", "a b c", "c b a", "c b a"],
    "mixed lengths": ["a b c d e f g", "a b c", "c d e f", "g f e d c b a", "a"],
}


def test_vocabulary_holds_only_occurring_words_in_first_appearance_order():
    vocab = collapse.Vocab(["zebra", "b", "a", "unused"])
    corpus = collapse.Corpus.from_documents([["a", "b"], ["a", "zebra"]], vocab=vocab)
    model = collapse.NGramModel.fit(corpus, order=2)
    assert model.vocab.words == ["<unk>", "<s>", "</s>", "a", "b", "zebra"]
    ids, _, _ = model.table(1)
    assert sorted(ids[:, 0].tolist()) == list(range(6))


def test_result_does_not_depend_on_threads(tinystories_dir):
    corpus = collapse.load_corpus(str(tinystories_dir / "valid-head.txt"), format="lines")
    models = [collapse.NGramModel.fit(corpus, order=4, threads=t) for t in (1, 2, 3)]
    for n in range(1, 5):
        ref = models[0].table(n)
        for m in models[1:]:
            for a, b in zip(ref, m.table(n)):
                np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", sorted(DEGENERATE))
@pytest.mark.parametrize("order", [2, 3, 5])
def test_degenerate_corpora_match_lmplz_discount_fallback(name, order, lmplz, tmp_path):
    """Where lmplz needs --discount_fallback we use the same fallback: same model."""
    lines = DEGENERATE[name]
    text = tmp_path / "c.txt"
    text.write_text("\n".join(lines) + "\n", encoding="utf-8")
    model = collapse.NGramModel.fit(corpus_of(lines), order=order)
    assert set(model.discount_policy) <= {"chen-goodman", "fallback"}
    for policy, d in zip(model.discount_policy, model.discounts):
        if policy == "fallback":
            assert d == (0.5, 1.0, 1.5)
    ours = tmp_path / "ours.arpa"
    model.to_arpa(str(ours))
    stderr = run_lmplz(lmplz, str(text), str(tmp_path / "lm.arpa"), order, extra=("--discount_fallback",))
    substituted = sorted(int(x) + 1 for x in __import__("re").findall(r"fallback discounts for order (\d+)", stderr))
    assert substituted == [i + 1 for i, p in enumerate(model.discount_policy) if p == "fallback"]
    a, b = read_arpa_dict(ours), read_arpa_dict(tmp_path / "lm.arpa")
    assert set(a) == set(b)
    for key in a:
        if key != (1, "<s>"):
            assert a[key] == pytest.approx(b[key], abs=1e-4), key


def test_random_small_corpora_match_lmplz(lmplz, tmp_path):
    rng = np.random.default_rng(7)
    for trial in range(15):
        V, D = int(rng.integers(1, 8)), int(rng.integers(1, 15))
        lines = [" ".join(f"w{int(x)}" for x in rng.integers(0, V, size=int(rng.integers(0, 9)))) for _ in range(D)]
        order = int(rng.integers(2, 6))
        text = tmp_path / "r.txt"
        text.write_text("\n".join(lines) + "\n", encoding="utf-8")
        collapse.NGramModel.fit(corpus_of(lines), order=order).to_arpa(str(tmp_path / "ours.arpa"))
        run_lmplz(lmplz, str(text), str(tmp_path / "lm.arpa"), order, extra=("--discount_fallback",))
        a, b = read_arpa_dict(tmp_path / "ours.arpa"), read_arpa_dict(tmp_path / "lm.arpa")
        assert set(a) == set(b), (trial, lines)
        for key in a:
            if key != (1, "<s>"):
                assert a[key] == pytest.approx(b[key], abs=1e-4), (trial, lines, key)


@pytest.mark.parametrize("smoothing", ["mkn", "kn", "addk", "mle"])
@pytest.mark.parametrize("name", sorted(DEGENERATE))
def test_degenerate_corpora_never_give_nan(smoothing, name, tmp_path):
    corpus = corpus_of(DEGENERATE[name])
    model = collapse.NGramModel.fit(corpus, order=4, smoothing=smoothing)
    for n in range(1, 5):
        _, lp, lb = model.table(n)
        assert np.all(np.isfinite(lp)) and np.all(np.isfinite(lb))
    ppl = model.perplexity(collapse.Corpus.from_texts(["a b c unseen", "the cat"]))
    assert np.isfinite(ppl) and ppl >= 1.0
    path = tmp_path / "m.arpa"
    model.to_arpa(str(path))
    assert collapse.NGramModel.from_arpa(str(path)).num_ngrams() == model.num_ngrams()


def test_corpus_with_unk_tokens():
    vocab = collapse.Vocab(["a"])
    corpus = collapse.Corpus(np.array([3, 0, 3, 0], dtype=np.uint32), np.array([0, 2, 4]), vocab)
    model = collapse.NGramModel.fit(corpus, order=2)
    ids, lp, _ = model.table(1)
    assert lp[ids[:, 0].tolist().index(0)] > -5  # <unk> seen, a real probability


@pytest.mark.parametrize("kwargs, match", [
    (dict(order=0), "order"), (dict(order=collapse.ngram.MAX_ORDER + 1), "order"), (dict(order=2.5), "order"),
    (dict(smoothing="witten-bell"), "smoothing"), (dict(smoothing="addk", add_k=0.0), "add-k"),
    (dict(smoothing="addk", add_k=float("nan")), "add-k"),
])
def test_bad_arguments_raise_value_error(kwargs, match):
    corpus = corpus_of(["a b c"])
    with pytest.raises(ValueError, match=match):
        collapse.NGramModel.fit(corpus, **kwargs)


def test_empty_corpus_raises():
    empty = collapse.Corpus(np.zeros(0, np.uint32), np.zeros(1, np.int64), collapse.Vocab())
    with pytest.raises(ValueError, match="empty"):
        collapse.NGramModel.fit(empty, order=3)


def test_core_rejects_bad_input_with_value_error():
    with pytest.raises(ValueError, match="order"):
        _core.fit_ngram(np.array([3], np.uint32), np.array([0, 1]), ["<unk>", "<s>", "</s>", "a"], 9)
    with pytest.raises(ValueError, match="<s> or </s>"):
        _core.fit_ngram(np.array([1], np.uint32), np.array([0, 1]), ["<unk>", "<s>", "</s>"], 2)
    with pytest.raises(ValueError, match="outside"):
        _core.fit_ngram(np.array([7], np.uint32), np.array([0, 1]), ["<unk>", "<s>", "</s>"], 2)
    with pytest.raises(ValueError, match="offsets"):
        _core.fit_ngram(np.array([3], np.uint32), np.array([0, 2]), ["<unk>", "<s>", "</s>", "a"], 2)
    with pytest.raises(ValueError, match="empty"):
        _core.fit_ngram(np.zeros(0, np.uint32), np.array([0]), ["<unk>", "<s>", "</s>"], 2)


def test_order_six_arpa_loads_in_kenlm_and_scores_alike(tmp_path):
    kenlm = pytest.importorskip("kenlm")  # the PyPI module supports orders up to 6
    lines = ["one two three four five six seven eight nine ten", "one two three four", "ten nine eight"] * 3
    model = collapse.NGramModel.fit(corpus_of(lines), order=6)
    path = tmp_path / "m6.arpa"
    model.to_arpa(str(path))
    km = kenlm.Model(str(path))
    assert km.order == 6
    for line in ["one two three four five six seven eight nine ten", "ten nine unknown eight", ""]:
        ours = model.score(corpus_of([line]))[0]
        assert ours == pytest.approx(km.score(line, bos=True, eos=True), abs=1e-4)


def test_order_eight_matches_lmplz(lmplz, tmp_path):
    lines = ["one two three four five six seven eight nine ten", "one two three four", "ten nine eight",
             "two three four five six seven eight nine one", "nine ten one two"] * 3
    text = tmp_path / "c.txt"
    text.write_text("\n".join(lines) + "\n", encoding="utf-8")
    model = collapse.NGramModel.fit(corpus_of(lines), order=8)
    assert len(model.num_ngrams()) == 8 and model.num_ngrams()[7] > 0
    model.to_arpa(str(tmp_path / "ours.arpa"))
    try:
        run_lmplz(lmplz, str(text), str(tmp_path / "lm.arpa"), 8, extra=("--discount_fallback",))
    except RuntimeError as e:
        if "KENLM_MAX_ORDER" in str(e) or "max order" in str(e).lower():
            pytest.skip("this lmplz was built without order 8 support")
        raise
    a, b = read_arpa_dict(tmp_path / "ours.arpa"), read_arpa_dict(tmp_path / "lm.arpa")
    assert set(a) == set(b)
    for key in a:
        if key != (1, "<s>"):
            assert a[key] == pytest.approx(b[key], abs=1e-4), key
