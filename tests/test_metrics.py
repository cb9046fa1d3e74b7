"""Collapse metrics against independent references (plain Python, scipy)."""

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy.stats import entropy as scipy_entropy

from collapse import _core
from collapse.data.corpus import Corpus, Vocab
from collapse.experiment.metrics import (RARE_MAX_COUNT, Reference, diversity, entropy_bits, generation_metrics,
                              unigram_kl_tv)


def reference_diversity(docs, n):
    grams = [tuple(d[i:i + n]) for d in docs for i in range(len(d) - n + 1)]
    repeated = sum(len(g) - len(set(g)) for g in ([tuple(d[i:i + n]) for i in range(len(d) - n + 1)] for d in docs))
    return len(set(grams)), len(grams), repeated


docs_strategy = st.lists(st.lists(st.integers(0, 6), max_size=12), max_size=15)


@settings(max_examples=150, deadline=None)
@given(docs=docs_strategy, big=st.sampled_from([0, 1 << 17, (1 << 32) - 8]))
def test_ngram_diversity_matches_python(docs, big):
    # big shifts the ids so that packed keys need the wide (128-bit) path
    docs = [[x + big for x in d] for d in docs]
    tokens = np.array([x for d in docs for x in d], dtype=np.uint32)
    offsets = np.zeros(len(docs) + 1, dtype=np.int64)
    np.cumsum([len(d) for d in docs], out=offsets[1:])
    for repeat_n in (1, 2, 4):
        out = _core.ngram_diversity(tokens, offsets, 4, repeat_n)
        for n in range(1, 5):
            distinct, total, _ = reference_diversity(docs, n)
            assert out["distinct"][n - 1] == distinct and out["total"][n - 1] == total
        _, total, repeated = reference_diversity(docs, repeat_n)
        assert out["repeated"] == repeated and out["repeat_total"] == total


def numpy_diversity(tokens, offsets, n, bits):
    """(distinct n-grams, positions, within-document repeats) by numpy.unique on packed keys."""
    doc = np.repeat(np.arange(len(offsets) - 1, dtype=np.uint64), np.diff(offsets))
    size = len(tokens) - n + 1
    inside = doc[:size] == doc[n - 1:n - 1 + size]
    keys = np.zeros(size, dtype=np.uint64)
    for j in range(n):
        keys = (keys << np.uint64(bits)) | tokens[j:j + size].astype(np.uint64)
    keys, doc = keys[inside], doc[:size][inside]
    per_doc = np.unique(np.stack([doc, keys], axis=1), axis=0).shape[0]
    return np.unique(keys).size, keys.size, keys.size - per_doc


@pytest.mark.parametrize("vocab", [1300, 40000])
def test_ngram_diversity_large_corpus_any_threads(vocab):
    # Big enough for the bucketed radix sort (buckets of more than 512 keys) and, with one
    # document of 70,000 tokens, for the sorted path of long documents; 40,000 ids need 16
    # bits, so 4-gram keys with their padding id fill all 64.
    rng = np.random.default_rng(vocab)
    lengths = np.concatenate([rng.integers(0, 120, 3000), [70_000], rng.integers(1, 5, 500)])
    offsets = np.zeros(lengths.size + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    # Zipf-like ids: a few very frequent first ids make the buckets uneven, as in text
    tokens = np.minimum(rng.zipf(1.3, offsets[-1]), vocab - 1).astype(np.uint32)
    tokens[tokens.size // 3: tokens.size // 3 + 40] = 7  # a run: repeats inside a document
    bits = int(tokens.max()).bit_length()
    results = [_core.ngram_diversity(tokens, offsets, 4, 4, threads) for threads in (1, 2, 3)]
    for out in results[1:]:
        assert out["distinct"].tolist() == results[0]["distinct"].tolist()
        assert (out["repeated"], out["repeat_total"]) == (results[0]["repeated"], results[0]["repeat_total"])
    for n in range(1, 5):
        distinct, total, repeated = numpy_diversity(tokens, offsets, n, bits)
        assert (results[0]["distinct"][n - 1], results[0]["total"][n - 1]) == (distinct, total)
        if n == 4:
            assert (results[0]["repeated"], results[0]["repeat_total"]) == (repeated, total)
            assert repeated > 0


def test_ngram_diversity_rejects_bad_input():
    t = np.array([1, 2, 3], dtype=np.uint32)
    with pytest.raises(ValueError):
        _core.ngram_diversity(t, np.array([0, 2], dtype=np.int64), 4, 4)  # offsets do not end at 3
    with pytest.raises(ValueError):
        _core.ngram_diversity(t, np.array([0, 3], dtype=np.int64), 5, 4)
    with pytest.raises(ValueError):
        _core.ngram_diversity(t, np.array([0, 3], dtype=np.int64), 2, 3)
    with pytest.raises(ValueError):
        _core.ngram_diversity(t, np.array([0, 3], dtype=np.int64), 4, 4, 100000)


@settings(max_examples=100, deadline=None)
@given(r=st.lists(st.integers(0, 20), min_size=5, max_size=5), s=st.lists(st.integers(0, 20), min_size=5, max_size=5),
       novel=st.integers(0, 5))
def test_unigram_kl_and_tv_match_scipy(r, s, novel):
    real = np.array([0, 0, 0] + r, dtype=float)
    synth = np.array([0, 0, 0] + s, dtype=float)
    kl, tv = unigram_kl_tv(real, synth, float(novel))
    rr, ss = np.array(r + [0.0]), np.array(s + [float(novel)])
    keep = (rr > 0) | (ss > 0)
    rr, ss = rr[keep], ss[keep]
    if rr.sum() == 0 or ss.sum() == 0:
        assert math.isnan(kl) and math.isnan(tv)
        return
    expected_kl = scipy_entropy(rr + 0.5, ss + 0.5, base=2)
    expected_tv = 0.5 * np.abs(rr / rr.sum() - ss / ss.sum()).sum()
    assert kl == pytest.approx(expected_kl, abs=1e-12)
    assert tv == pytest.approx(expected_tv, abs=1e-12)
    assert entropy_bits(ss) == pytest.approx(scipy_entropy(ss, base=2), abs=1e-12)


class UniformModel:
    """A model with a closed-form perplexity: uniform over V words plus </s>."""

    def __init__(self, v):
        self.v = v

    def perplexity(self, corpus):
        return float(self.v + 1)

    def document_log_probs(self, corpus):
        return -(corpus.lengths() + 1) * np.log(self.v + 1.0)


def test_generation_metrics_on_a_hand_made_case():
    vocab = Vocab(["a", "b", "c", "d"])
    real = Corpus.from_documents([["a", "b", "c"], ["a", "b", "d"], ["a", "a"]], vocab=vocab)
    synth = Corpus.from_documents([["a", "b", "a", "b", "a", "b"], ["b", "e"]])  # 'e' is novel, 'c', 'd' lost
    heldout = Corpus.from_documents([["a", "b"]])
    ref = Reference.build(real, heldout)
    m = generation_metrics(UniformModel(4), real, synth, ref)
    assert m["heldout_ppl"] == 5.0 and m["self_ppl"] == 5.0
    assert m["heldout_bits_per_word"] == pytest.approx(math.log2(5.0))  # the common scale: log2 of 5 per word
    assert m["vocab_size"] == 3                      # a, b, e
    assert m["types_lost"] == 2                      # c and d of the real corpus
    assert m["train_vocab_size"] == 4
    # rare = real count <= 2: b (2), c (1), d (1); synthetic tokens of those: b x4 of 8
    assert RARE_MAX_COUNT == 2 and m["rare_mass"] == pytest.approx(4 / 8)
    assert m["mean_length"] == 4.0
    # 4-grams of doc 1: abab, baba, abab -> one repeat of three; doc 2 has none
    assert m["repetition"] == pytest.approx(1 / 3)
    assert m["distinct_1"] == pytest.approx(3 / 8)
    assert m["distinct_2"] == pytest.approx(3 / 6)    # ab, ba (doc 1), be (doc 2) of 6 bigrams
    counts = np.array([3, 4, 0, 0, 1.0])             # a, b, c, d, novel
    assert m["entropy"] == pytest.approx(scipy_entropy(counts[counts > 0], base=2))
    real_c = np.array([4, 2, 1, 1, 0.0])
    assert m["kl_unigram"] == pytest.approx(scipy_entropy(real_c + 0.5, counts + 0.5, base=2))
    assert math.isnan(m["kl_truth"]) and math.isnan(m["kl_unigram_truth"])


def test_diversity_of_an_empty_corpus_is_nan_not_a_crash():
    empty = Corpus(np.zeros(0, np.uint32), np.zeros(1, np.int64), Vocab())
    d = diversity(empty)
    assert all(math.isnan(d[f"distinct_{n}"]) for n in range(1, 5)) and d["repetition"] == 0.0


class TruthModel:
    """The grammar itself as a model: its perplexity is exp(-sum ln p_true / (tokens + docs))."""

    def __init__(self, grammar):
        self.g = grammar

    def perplexity(self, corpus):
        lp = self.g.corpus_log_probs(corpus)
        return float(np.exp(-lp.sum() / (corpus.num_tokens + corpus.num_documents)))

    def document_log_probs(self, corpus):
        return self.g.corpus_log_probs(corpus)


class PerplexityOnly(TruthModel):
    document_log_probs = None

    def __getattribute__(self, name):
        if name == "document_log_probs":
            raise AttributeError(name)
        return object.__getattribute__(self, name)


def test_kl_truth_is_zero_for_the_true_source_and_positive_otherwise():
    from collapse.data.storygrammar import get_grammar

    g = get_grammar()
    real, _ = g.sample(300, seed=1)
    heldout, lp = g.sample(100, seed=2)
    ref = Reference.build(real, heldout, grammar=g, heldout_logprobs=lp)
    m = generation_metrics(TruthModel(g), real, real, ref)
    assert m["kl_truth"] == pytest.approx(0.0, abs=1e-12) and m["kl_truth_se"] == pytest.approx(0.0, abs=1e-12)
    assert m["heldout_bits_per_word"] == pytest.approx(math.log2(m["heldout_ppl"]))
    assert m["kl_unigram_truth"] > 0  # a finite sample is not the exact marginal
    m2 = generation_metrics(UniformModel(len(real.vocab)), real, real, ref)
    assert m2["kl_truth"] > 1.0 and m2["kl_truth_se"] > 0
    # a model that cannot score documents has no place on the common scale
    assert math.isnan(generation_metrics(PerplexityOnly(g), real, real, ref)["kl_truth"])
