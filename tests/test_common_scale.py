"""One scale for both families: bits per word and KL to the truth from document log-probabilities.

- the n-gram's bits per word is log2(10) x (-log10 prob from NGramModel.evaluate) / (words + sentences);
- the transformer's kl_truth on a tiny source whose stories can all be enumerated equals
  the exact KL(P || Q) = sum_x P(x) (ln P(x) - ln Q(x)) within 3 standard errors.
"""

import itertools
import math

import numpy as np
import pytest

from collapse.experiment.scale import bits_per_word, heldout_scale, kl_to_truth
from collapse.data.corpus import Corpus
from collapse.ngram import NGramModel
from collapse.ngram.family import NGramFamily
from collapse.data.storygrammar import get_grammar


def test_ngram_bits_per_word_is_evaluates_log10_prob_per_word_and_sentence():
    g = get_grammar()
    train, _ = g.sample(600, 1)
    heldout, truth = g.sample(200, 2)
    trained = NGramFamily(3, "mkn").fit(train, seed=0)
    got = heldout_scale(trained, heldout, truth)
    ev = NGramModel.fit(train, order=3, smoothing="mkn").evaluate(heldout)
    expect = math.log2(10.0) * (-ev["log10_prob"]) / (ev["tokens"] + ev["sequences"])
    assert got["heldout_bits_per_word"] == pytest.approx(expect, rel=1e-12)
    assert got["heldout_bits_per_word"] == pytest.approx(math.log2(trained.perplexity(heldout)), rel=1e-9)
    # the KL estimate is the mean per-story log-ratio, positive for a model fitted to 600 stories
    lp = trained.document_log_probs(heldout)
    assert got["kl_truth"] == pytest.approx(float(np.mean(truth - lp)), rel=1e-12)
    assert got["kl_truth"] > 3 * got["kl_truth_se"] > 0


def test_estimators_on_known_numbers():
    assert bits_per_word(np.log([0.5, 0.25]), words=1, documents=2) == pytest.approx(1.0)
    mean, se = kl_to_truth(np.array([-1.0, -2.0, -3.0]), np.array([-2.0, -2.0, -5.0]))
    assert mean == pytest.approx(1.0) and se == pytest.approx(1.0 / math.sqrt(3))


# -- the transformer on a source small enough to enumerate ---------------------------------

NAMES = {"Tom": 0.6, "Lily": 0.4}
VERBS = {"saw": 0.5, "liked": 0.3, "had": 0.2}
THINGS = {"a dog": 0.5, "the ball": 0.3, "a cake": 0.2}
ONE_SENTENCE = 0.7  # else two sentences


def _sentences():
    for (n, pn), (v, pv), (t, pt) in itertools.product(NAMES.items(), VERBS.items(), THINGS.items()):
        yield f"{n} {v} {t} .", pn * pv * pt


def _stories():
    """Every story and its exact probability (18 one-sentence + 324 two-sentence stories)."""
    one = list(_sentences())
    out = {s: ONE_SENTENCE * p for s, p in one}
    for (a, pa), (b, pb) in itertools.product(one, one):
        out[f"{a} {b}"] = out.get(f"{a} {b}", 0.0) + (1 - ONE_SENTENCE) * pa * pb
    return out


def _sample(stories, n, seed):
    texts = list(stories)
    p = np.array([stories[t] for t in texts])
    idx = np.random.default_rng(seed).choice(len(texts), size=n, p=p / p.sum())
    chosen = [texts[i] for i in idx]
    return Corpus.from_texts(chosen), np.log([stories[t] for t in chosen])


def test_transformer_kl_truth_equals_exact_kl_within_three_standard_errors():
    torch = pytest.importorskip("torch", reason="the transformer family needs torch (collapse[torch])")
    from collapse.transformer.family import TransformerFamily

    stories = _stories()
    assert sum(stories.values()) == pytest.approx(1.0)
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        family = TransformerFamily.from_config({
            "family": "transformer", "preset": "custom", "hidden_size": 32, "num_layers": 1, "num_heads": 4,
            "window_size": 32, "max_position_embeddings": 64, "context_length": 48, "epochs": 10, "batch_size": 4,
            "micro_batch_size": 4, "lr": 5e-3, "bpe_vocab_size": 300, "device": "cpu", "threads": 1,
            "progress": False})
        train, _ = _sample(stories, 300, 0)
        model = family.fit(train, seed=0)
        heldout, truth = _sample(stories, 1500, 1)
        got = heldout_scale(model, heldout, truth)
        all_stories = Corpus.from_texts(list(stories))
        q = model.document_log_probs(all_stories)
    finally:
        torch.set_num_threads(n)
    p = np.array([stories[t] for t in all_stories.texts()])
    exact = float(np.sum(p * (np.log(p) - q)))
    assert 0.01 < exact < 1.0  # a model that learned the source, not perfectly
    assert abs(got["kl_truth"] - exact) < 3 * got["kl_truth_se"], (got, exact)
    # bits per word is the same per-document numbers on the word scale
    words = heldout.num_tokens + heldout.num_documents
    assert got["heldout_bits_per_word"] == pytest.approx(-model.document_log_probs(heldout).sum() / math.log(2) / words)
