"""Finite-corpus resampling: statistics, invariants (hypothesis), determinism, errors."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

import collapse
from collapse import resample


@functools.lru_cache(maxsize=8)
def make_corpus(num_docs, seed=0, vocab_size=50):
    rng = np.random.default_rng(seed)
    words = [f"t{i}" for i in range(vocab_size)]
    docs = [[words[j] for j in rng.integers(0, vocab_size, size=rng.integers(0, 8))] for _ in range(num_docs)]
    return collapse.Corpus.from_documents(docs)


def doc_tuples(corpus):
    return [tuple(d.tolist()) for d in corpus.documents()]


# -- with replacement: multinomial counts -----------------------------------------------------

def test_with_replacement_counts_are_uniform_multinomial():
    d, n = 1000, 1_000_000
    idx = resample.sample_indices(d, n, seed=3, replace=True)
    counts = np.bincount(idx, minlength=d)
    # Goodness of fit to Multinomial(n, 1/d) over the d cells.
    assert stats.chisquare(counts).pvalue > 1e-4


def test_with_replacement_mean_and_variance():
    """Over many seeds, each document's count has mean n/d and variance n(1/d)(1-1/d),
    and two documents' counts have covariance -n/d^2 (multinomial)."""
    d, n, reps = 8, 400, 3000
    counts = np.stack([np.bincount(resample.sample_indices(d, n, seed=s), minlength=d) for s in range(reps)])
    p = 1.0 / d
    mean, var, cov = n * p, n * p * (1 - p), -n * p * p
    # Standard errors: mean from var/reps, variance from about var*sqrt(2/reps).
    assert np.all(np.abs(counts.mean(axis=0) - mean) < 5 * np.sqrt(var / reps))
    assert np.all(np.abs(counts.var(axis=0, ddof=1) - var) < 5 * var * np.sqrt(2.0 / reps))
    c01 = np.cov(counts[:, 0], counts[:, 1])[0, 1]
    assert abs(c01 - cov) < 5 * var * np.sqrt(2.0 / reps)


def test_sample_documents_gathers_the_drawn_documents():
    c = make_corpus(50)
    idx = resample.sample_indices(c.num_documents, 80, seed=1)
    s = resample.sample_documents(c, 80, seed=1)
    assert s.vocab is c.vocab
    assert doc_tuples(s) == [tuple(c.document(i).tolist()) for i in idx]
    ref = c.select(idx)
    np.testing.assert_array_equal(s.tokens, ref.tokens)
    np.testing.assert_array_equal(s.offsets, ref.offsets)


# -- without replacement ---------------------------------------------------------------------------

def test_without_replacement_never_repeats():
    for seed in range(20):
        idx = resample.sample_indices(500, 300, seed=seed, replace=False)
        assert idx.size == 300 and np.unique(idx).size == 300
        assert idx.min() >= 0 and idx.max() < 500
    full = resample.sample_indices(500, 500, seed=1, replace=False)
    assert sorted(full.tolist()) == list(range(500))
    # The first n documents drawn are the first n of the permutation.
    np.testing.assert_array_equal(resample.sample_indices(500, 37, seed=1, replace=False), full[:37])
    np.testing.assert_array_equal(resample.shuffle_indices(500, seed=1), full)


def test_without_replacement_is_uniform():
    """Every document is included with probability n/d, and each position holds each
    document with probability 1/d."""
    d, n, reps = 10, 3, 20000
    draws = np.stack([resample.sample_indices(d, n, seed=s, replace=False) for s in range(reps)])
    incl = np.bincount(draws.ravel(), minlength=d)
    assert stats.chisquare(incl).pvalue > 1e-4
    assert stats.chisquare(np.bincount(draws[:, 0], minlength=d)).pvalue > 1e-4
    # Pairs (first, second) are uniform over the d(d-1) ordered pairs.
    pairs = np.bincount(draws[:, 0] * d + draws[:, 1], minlength=d * d).reshape(d, d)
    off = pairs[~np.eye(d, dtype=bool)]
    assert np.all(np.diag(pairs) == 0)
    assert stats.chisquare(off).pvalue > 1e-4


def test_shuffle_is_a_permutation_of_documents():
    c = make_corpus(300, seed=2)
    s = resample.shuffle(c, seed=9)
    assert sorted(doc_tuples(s)) == sorted(doc_tuples(c))
    assert doc_tuples(s) != doc_tuples(c)
    assert s.num_tokens == c.num_tokens


# -- subsample ------------------------------------------------------------------------------------

def test_subsample_fraction_and_n():
    c = make_corpus(101, seed=4)
    s = resample.subsample(c, 0.3, seed=2)
    assert s.num_documents == round(0.3 * 101)
    idx = resample.subsample_indices(101, seed=2, fraction=0.3)
    assert np.all(np.diff(idx) > 0)  # a subset, in corpus order
    assert doc_tuples(s) == [tuple(c.document(i).tolist()) for i in idx]
    assert resample.subsample(c, n=7, seed=2).num_documents == 7
    assert resample.subsample(c, 1.0, seed=2).num_documents == 101
    assert resample.subsample(c, 0.0, seed=2).num_documents == 0


def test_subsample_inclusion_is_uniform():
    d, reps = 12, 6000
    incl = np.zeros(d)
    for s in range(reps):
        incl[resample.subsample_indices(d, seed=s, fraction=0.25)] += 1
    assert stats.chisquare(incl).pvalue > 1e-4


# -- determinism and thread independence ------------------------------------------------------------

@pytest.mark.parametrize("fn", [
    lambda c, t: resample.sample_documents(c, 300_000, seed=7, threads=t),
    lambda c, t: resample.sample_documents(c, 150_000, seed=7, replace=False, threads=t),
    lambda c, t: resample.subsample(c, 0.4, seed=7, threads=t),
    lambda c, t: resample.shuffle(c, seed=7, threads=t),
])
def test_same_output_for_any_thread_count(fn):
    c = make_corpus(200_000, seed=11)
    outs = [fn(c, t) for t in (1, 2, 4)]
    for o in outs[1:]:
        assert o.tokens.tobytes() == outs[0].tokens.tobytes()
        assert o.offsets.tobytes() == outs[0].offsets.tobytes()


def test_with_replacement_prefix_property():
    a = resample.sample_indices(1000, 500, seed=2)
    b = resample.sample_indices(1000, 200, seed=2)
    np.testing.assert_array_equal(a[:200], b)


# -- invariants (hypothesis) --------------------------------------------------------------------------

corpora = st.lists(st.lists(st.sampled_from(["a", "b", "c", "d"]), max_size=5), min_size=1, max_size=30)


@settings(max_examples=60, deadline=None)
@given(corpora, st.integers(0, 2 ** 64 - 1), st.integers(0, 60), st.booleans())
def test_sample_documents_invariants(docs, seed, n, replace):
    c = collapse.Corpus.from_documents(docs)
    if not replace and n > c.num_documents:
        with pytest.raises(ValueError):
            resample.sample_documents(c, n, seed=seed, replace=False)
        return
    s = resample.sample_documents(c, n, seed=seed, replace=replace)
    assert s.num_documents == n and s.vocab is c.vocab
    originals = doc_tuples(c)
    got = doc_tuples(s)
    assert all(d in originals for d in got)
    if not replace:
        idx = resample.sample_indices(c.num_documents, n, seed=seed, replace=False)
        assert len(set(idx.tolist())) == n
        assert got == [originals[i] for i in idx]


@settings(max_examples=60, deadline=None)
@given(corpora, st.integers(0, 2 ** 64 - 1), st.floats(0.0, 1.0))
def test_subsample_and_shuffle_invariants(docs, seed, fraction):
    c = collapse.Corpus.from_documents(docs)
    s = resample.subsample(c, fraction, seed=seed)
    assert s.num_documents == round(fraction * c.num_documents)
    idx = resample.subsample_indices(c.num_documents, seed=seed, fraction=fraction)
    assert np.all(np.diff(idx) > 0)
    sh = resample.shuffle(c, seed=seed)
    assert sorted(doc_tuples(sh)) == sorted(doc_tuples(c))
    assert sh.num_tokens == c.num_tokens


# -- bad input --------------------------------------------------------------------------------------

@pytest.mark.parametrize("call", [
    lambda c: resample.sample_documents(c, -1, seed=0),
    lambda c: resample.sample_documents(c, 2.5, seed=0),
    lambda c: resample.sample_documents(c, 5, seed=-1),
    lambda c: resample.sample_documents(c, 11, seed=0, replace=False),
    lambda c: resample.subsample(c, 1.5, seed=0),
    lambda c: resample.subsample(c, float("nan"), seed=0),
    lambda c: resample.subsample(c, seed=0),
    lambda c: resample.subsample(c, 0.5, n=3, seed=0),
    lambda c: resample.subsample(c, n=11, seed=0),
    lambda c: resample.shuffle("not a corpus", seed=0),
    lambda c: resample.gather(c, np.array([0, 10])),
    lambda c: resample.sample_documents(collapse.Corpus(np.zeros(0, np.uint32), np.zeros(1, np.int64), c.vocab), 1, seed=0),
])
def test_bad_arguments_raise_value_error(call):
    with pytest.raises(ValueError):
        call(make_corpus(10))
