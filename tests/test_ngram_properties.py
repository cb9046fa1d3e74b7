"""Property tests (hypothesis) of the n-gram core on small random corpora."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import collapse
from collapse import _core

from ngram_reference import BOS, BackoffTables, naive_counts

docs_strategy = st.lists(st.lists(st.integers(0, 5), min_size=0, max_size=9), min_size=1, max_size=8)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def corpus_of(docs):
    return collapse.Corpus.from_documents([[f"w{x}" for x in d] for d in docs])


@SETTINGS
@given(docs=docs_strategy, order=st.integers(1, 8), threads=st.sampled_from([1, 2, 3]),
       extra_ids=st.sampled_from([0, 2**12, 2**20, 2**31]))
def test_counts_equal_naive_count(docs, order, threads, extra_ids):
    """extra_ids widens the declared vocabulary so that keys need 1 to 4 machine words."""
    corpus = corpus_of(docs)
    got = _core.count_ngrams(corpus.tokens, corpus.offsets, len(corpus.vocab) + extra_ids, order, threads)
    want = naive_counts([corpus.document(i) for i in range(corpus.num_documents)], order)
    assert len(got) == order
    for n, ((ids, raw, adj), table) in enumerate(zip(got, want), 1):
        rows = [tuple(r) for r in ids.tolist()]
        assert rows == sorted(rows), "rows must be sorted lexicographically"
        assert dict(zip(rows, zip(raw.tolist(), adj.tolist()))) == table, f"order {n}"


def _contexts(model, rng):
    """Every stored context, the empty one, and random (mostly unseen) ones."""
    ctxs = {()}
    for n in range(1, model.order):
        ids, _, _ = model.table(n)
        ctxs.update(tuple(r) for r in ids.tolist())
    V = len(model.vocab)
    for _ in range(10):
        k = int(rng.integers(1, max(2, model.order)))
        h = [int(x) for x in rng.integers(0, V, size=k)]
        h = [w for w in h if w != BOS]
        if rng.random() < 0.5:
            h = [BOS] + h
        ctxs.add(tuple(h))
    return ctxs


@SETTINGS
@given(docs=docs_strategy, order=st.integers(1, 5), smoothing=st.sampled_from(["mle", "addk", "kn", "mkn"]),
       k=st.sampled_from([0.01, 0.5, 1.0, 3.0]), seed=st.integers(0, 2**31))
def test_every_conditional_distribution_sums_to_one(docs, order, smoothing, k, seed):
    corpus = corpus_of(docs)
    model = collapse.NGramModel.fit(corpus, order=order, smoothing=smoothing, add_k=k)
    for n in range(1, order + 1):
        _, lp, lb = model.table(n)
        assert np.all(np.isfinite(lp)) and np.all(np.isfinite(lb))
        assert np.all(lp <= 1e-6)
    tables = BackoffTables(model)
    rng = np.random.default_rng(seed)
    for h in _contexts(model, rng):
        total = tables.distribution_sum(h)
        assert total == pytest.approx(1.0, abs=2e-4), (smoothing, h, total)
    if smoothing in ("mkn", "kn"):
        assert len(model.discount_policy) == order
        for policy, d in zip(model.discount_policy, model.discounts):
            if policy == "fallback":
                assert d in ((0.5, 1.0, 1.5), (0.5, 0.5, 0.5))
            else:
                assert all(0.0 <= d[j] <= j + 1 for j in range(3))


@SETTINGS
@given(docs=docs_strategy, held=docs_strategy, order=st.integers(1, 5),
       smoothing=st.sampled_from(["mle", "addk", "kn", "mkn"]), threads=st.sampled_from([1, 2]))
def test_scores_follow_the_backoff_formula(docs, held, order, smoothing, threads):
    """C++ scoring equals the backoff recursion in Python, unknown words as <unk>."""
    model = collapse.NGramModel.fit(corpus_of(docs), order=order, smoothing=smoothing)
    test = collapse.Corpus.from_documents([[f"w{x}" for x in d] for d in held])  # w6.. unseen possible
    res = model.evaluate(test, threads=threads)
    tables = BackoffTables(model)
    ids = test.vocab.map_to(model.vocab)[test.tokens]
    want = [tables.score_document(ids[test.offsets[i]:test.offsets[i + 1]]) for i in range(test.num_documents)]
    np.testing.assert_allclose(res["log10_probs"], want, atol=1e-4)
    assert res["oov"] == int(np.sum(ids == 0))
    assert res["tokens"] == test.num_tokens and res["sequences"] == test.num_documents
    ppl = 10 ** (-sum(want) / (test.num_tokens + test.num_documents))
    assert math.isfinite(res["perplexity"]) and res["perplexity"] == pytest.approx(ppl, rel=1e-4)


@pytest.mark.parametrize("order, extra_ids", [(3, 0), (3, 2**14), (5, 2**16), (8, 0)])
def test_counts_equal_naive_count_on_a_larger_skewed_corpus(order, extra_ids):
    """Big enough for the counting's large-bucket path (a very frequent first word)."""
    rng = np.random.default_rng(order)
    docs = []
    for _ in range(400):
        n = int(rng.integers(0, 120))
        frequent = rng.random(n) < 0.3
        docs.append([0 if f else int(x) for f, x in zip(frequent, rng.zipf(1.3, size=n) % 3000)])
    corpus = corpus_of(docs)
    got = _core.count_ngrams(corpus.tokens, corpus.offsets, len(corpus.vocab) + extra_ids, order, 2)
    want = naive_counts([corpus.document(i) for i in range(corpus.num_documents)], order)
    for n, ((ids, raw, adj), table) in enumerate(zip(got, want), 1):
        rows = [tuple(r) for r in ids.tolist()]
        assert dict(zip(rows, zip(raw.tolist(), adj.tolist()))) == table, f"order {n}"


@SETTINGS
@given(docs=docs_strategy, order=st.integers(1, 5), smoothing=st.sampled_from(["kn", "mkn"]),
       steps=st.lists(st.integers(0, 2), min_size=1, max_size=5), seed=st.integers(0, 2**31))
def test_pruned_models_stay_normalised_and_consistent(docs, order, smoothing, steps, seed):
    """lmplz's --prune (random non-decreasing thresholds): every conditional still sums to
    one, and every kept n-gram's prefix and suffix are kept."""
    prune = list(np.cumsum(steps))[:order]
    model = collapse.NGramModel.fit(corpus_of(docs), order=order, smoothing=smoothing, prune=prune)
    kept = {n: {tuple(r) for r in model.table(n)[0].tolist()} for n in range(1, order + 1)}
    for n in range(2, order + 1):
        for g in kept[n]:
            assert g[:-1] in kept[n - 1] and g[1:] in kept[n - 1], (prune, g)
    tables = BackoffTables(model)
    for h in _contexts(model, np.random.default_rng(seed)):
        assert tables.distribution_sum(h) == pytest.approx(1.0, abs=2e-4), (prune, h)
