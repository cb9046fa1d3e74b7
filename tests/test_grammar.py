"""The embedded story grammar: deterministic, exact probabilities, exact marginals."""

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from collapse.data.storygrammar import CLOSING, MIDDLE, OPENING, StoryGrammar, get_grammar, sample_stories


@pytest.fixture(scope="module")
def grammar():
    return get_grammar()


def test_deterministic_per_seed_and_seeds_differ(grammar):
    a, la = grammar.sample(300, seed=7)
    b, lb = grammar.sample(300, seed=7)
    c, _ = grammar.sample(300, seed=8)
    assert np.array_equal(a.tokens, b.tokens) and np.array_equal(a.offsets, b.offsets) and a.vocab == b.vocab
    assert np.array_equal(la, lb)
    assert not np.array_equal(a.tokens[:2000], c.tokens[:2000])


def test_stories_look_like_stories(grammar):
    texts = grammar.texts(50, seed=1)
    assert all(t.split()[0] in ("Once", "One", "There") for t in texts)
    assert all(t.endswith(".") for t in texts)
    assert len(texts) == 50 and min(len(t.split()) for t in texts) >= 15


def test_recorded_probability_is_the_parsed_probability(grammar):
    corpus, logp = grammar.sample(400, seed=3)
    parsed = grammar.corpus_log_probs(corpus)
    np.testing.assert_allclose(parsed, logp, rtol=0, atol=1e-9)
    assert np.all(np.isfinite(logp)) and np.all(logp < 0)


def test_impossible_stories_have_probability_zero(grammar):
    assert grammar.log_prob("Once upon a time".split()) == -math.inf
    assert grammar.log_prob("hello world".split()) == -math.inf
    story = "Once upon a time , there was a little girl named Lily . Lily felt happy . And they all lived happily ever after ."
    lp = grammar.log_prob(story.split())
    assert math.isfinite(lp)
    # by hand: template weights times class-word probabilities times continuation probabilities
    names, feelings = grammar.classes["NAME"], grammar.classes["FEELING"]
    p_name = grammar.class_probs["NAME"][names.index("Lily")]
    p_happy = grammar.class_probs["FEELING"][feelings.index("happy")]
    w_open = sum(w for w, _ in OPENING)
    w_mid = sum(w for w, _ in MIDDLE)
    w_close = sum(w for w, _ in CLOSING)
    c = grammar.continue_prob
    expected = (4.0 / w_open) * p_name * (2.0 / w_mid) * p_name * p_happy * (1 - c) * (2.0 / w_close)
    assert lp == pytest.approx(math.log(expected), abs=1e-12)


def test_exact_structure_counts(grammar):
    ex = grammar.exact()
    counts = dict(zip(ex.words, ex.expected_counts))
    # exactly one opening and one closing sentence per story; their first tokens occur nowhere else
    assert counts["Once"] + counts["One"] + counts["There"] == pytest.approx(1.0, abs=1e-12)
    assert counts["In"] + counts["From"] + counts["And"] + counts["At"] == pytest.approx(1.0, abs=1e-12)
    # the middle sentences: geometric, mean 1 / (1 - continue_prob)
    mid_weight = sum(w for w, _ in MIDDLE)
    they_share = sum(w for w, t in MIDDLE if t.startswith("They ")) / mid_weight
    assert counts["They"] == pytest.approx(they_share / (1 - grammar.continue_prob), rel=1e-12)
    assert sum(ex.unigram().values()) == pytest.approx(1.0, abs=1e-12)


def test_exact_marginals_match_a_large_sample(grammar):
    ex = grammar.exact()
    corpus, logp = grammar.sample(20000, seed=11)
    n_docs = corpus.num_documents
    # length: mean within 4 standard errors
    lens = corpus.lengths()
    assert abs(lens.mean() - ex.expected_length) < 4 * lens.std() / math.sqrt(n_docs)
    # entropy: -E[log p(story)] within 4 standard errors
    assert abs(-logp.mean() - ex.story_entropy) < 4 * logp.std() / math.sqrt(n_docs)
    # unigram counts per story for the frequent words, within 5 standard errors (Poisson-ish bound)
    counts = np.bincount(corpus.tokens, minlength=len(corpus.vocab))
    exact = dict(zip(ex.words, ex.expected_counts))
    for w, i in ((w, corpus.vocab.id(w)) for w in ("Lily", "ball", ".", "park", "happy", "said")):
        est = counts[i] / n_docs
        assert abs(est - exact[w]) < 5 * math.sqrt(exact[w] * 3 / n_docs) + 1e-9, w


def test_zipf_tail_gives_rare_words():
    corpus = sample_stories(2000, seed=0)
    counts = np.bincount(corpus.tokens)[3:]
    assert np.sum((counts >= 1) & (counts <= 2)) > 50  # many rare types
    assert len(corpus.vocab) - 3 < len(get_grammar().words) - 1  # and some never seen


@settings(max_examples=15, deadline=None)
@given(num_names=st.integers(20, 300), zipf=st.floats(0.5, 2.0), cont=st.floats(0.05, 0.95))
def test_any_grammar_is_a_proper_distribution(num_names, zipf, cont):
    g = StoryGrammar(num_names=num_names, zipf=zipf, continue_prob=cont)
    ex = g.exact()
    assert sum(ex.unigram().values()) == pytest.approx(1.0, abs=1e-9)
    corpus, logp = g.sample(30, seed=num_names)
    np.testing.assert_allclose(g.corpus_log_probs(corpus), logp, atol=1e-9)
    # expected sentences: 1 opening + 1/(1-c) middle + 1 closing; every sentence has >= 4 tokens
    assert ex.expected_length >= 4 * (2 + 1 / (1 - cont)) - 1e-9


def test_bad_parameters():
    with pytest.raises(ValueError, match="continue_prob"):
        StoryGrammar(continue_prob=1.0)
    with pytest.raises(ValueError, match="num_names"):
        StoryGrammar(num_names=3)
