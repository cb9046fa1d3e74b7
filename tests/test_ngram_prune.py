"""Pruning as `lmplz --prune`: the ARPA of NGramModel.fit(prune=...) equals lmplz's (same
n-grams, log10 probabilities and backoffs within 1e-4) at orders 3 and 5 on train-head and
on a corpus of many singletons, with two threshold vectors each; it scores as kenlm scores
it, samples its conditionals exactly, and the pool prunes its merged counts. Bad
thresholds are a one-line error everywhere (Python, CLI, the core).
"""

from __future__ import annotations

import random

import numpy as np
import pytest

import collapse
from collapse import _core
from collapse.errors import CollapseError
from collapse.ngram.pool import NGramPool
from conftest import run_cli
from lmplz import read_arpa_dict, run_lmplz

kenlm = pytest.importorskip("kenlm")

# "0 1": the last threshold repeated; "1 1 2": unigrams pruned too, and a rising vector.
THRESHOLDS = [[0, 1], [1, 1, 2]]


@pytest.fixture(scope="module")
def singletons(tmp_path_factory):
    """Zipf-distributed words over a 5000-word vocabulary: most n-grams are seen once."""
    rng = random.Random(3)
    words = [f"w{i}" for i in range(5000)]
    weights = [1.0 / (i + 1) for i in range(len(words))]
    lines = [" ".join(rng.choices(words, weights, k=rng.randint(1, 12))) for _ in range(4000)]
    path = tmp_path_factory.mktemp("singletons") / "train.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return collapse.load_corpus(str(path)), path


@pytest.fixture(scope="module")
def corpora(train_head_lines, singletons):
    return {"tinystories": train_head_lines, "singletons": singletons}


def assert_same_arpa(ours, ref, tol=1e-4):
    a, b = read_arpa_dict(ours), read_arpa_dict(ref)
    # lmplz writes <s>'s never-used probability as 0, we as -99 (docs/ngram.md): its backoff counts
    a[(1, "<s>")] = (0.0, a[(1, "<s>")][1])
    assert set(a) == set(b), (f"{len(set(a) - set(b))} n-grams only ours, e.g. {sorted(set(a) - set(b))[:3]}; "
                              f"{len(set(b) - set(a))} only lmplz's, e.g. {sorted(set(b) - set(a))[:3]}")
    worst = max((max(abs(a[k][0] - b[k][0]), abs(a[k][1] - b[k][1])), k) for k in b)
    assert worst[0] <= tol, f"worst difference {worst}: ours {a[worst[1]]}, lmplz {b[worst[1]]}"


_fits = {}


def pruned_pair(name, order, prune, corpora, lmplz, tmp_path_factory):
    """(our ARPA, lmplz's ARPA) of one corpus, order and threshold vector, cached."""
    key = (name, order, tuple(prune))
    if key not in _fits:
        corpus, lines = corpora[name]
        d = tmp_path_factory.mktemp(f"{name}{order}")
        ours, ref = d / "ours.arpa", d / "lmplz.arpa"
        model = collapse.NGramModel.fit(corpus, order=order, prune=prune, threads=2)
        model.to_arpa(str(ours))
        # --discount_fallback: the singletons' 5-grams have no adjusted count 3 (our estimator
        # applies the same fallback; it changes nothing where lmplz would not throw)
        run_lmplz(lmplz, str(lines), str(ref), order, extra=("--discount_fallback", "--prune", *map(str, prune)))
        _fits[key] = (model, ours, ref)
    return _fits[key]


@pytest.mark.parametrize("name", ["tinystories", "singletons"])
@pytest.mark.parametrize("order", [3, 5])
@pytest.mark.parametrize("prune", THRESHOLDS, ids=lambda p: "-".join(map(str, p)))
def test_pruned_arpa_equals_lmplz(name, order, prune, corpora, lmplz, tmp_path_factory):
    model, ours, ref = pruned_pair(name, order, prune, corpora, lmplz, tmp_path_factory)
    assert_same_arpa(ours, ref)
    full = collapse.NGramModel.fit(corpora[name][0], order=order, threads=2)
    assert sum(model.num_ngrams()) < 0.8 * sum(full.num_ngrams()), "pruning removed almost nothing"
    assert model.discounts == full.discounts  # discounts come from the counts before pruning


@pytest.mark.parametrize("name", ["tinystories", "singletons"])
@pytest.mark.parametrize("prune", THRESHOLDS, ids=lambda p: "-".join(map(str, p)))
def test_pruned_model_scores_as_kenlm(name, prune, corpora, lmplz, tmp_path_factory):
    """Pruned unigrams leave the vocabulary, as they leave lmplz's file: kenlm and we then
    score such a word as <unk>."""
    model, ours, _ = pruned_pair(name, 5, prune, corpora, lmplz, tmp_path_factory)
    assert len(model.vocab) == model.num_ngrams()[0]  # every word of the model is a unigram
    km = kenlm.Model(str(ours))
    lines = corpora[name][1].read_text(encoding="utf-8").splitlines()[:300] + ["unseen words here", "w1 w2 w3"]
    corpus = collapse.Corpus.from_texts(lines)
    ours_scores = model.score(corpus, threads=2)
    theirs = np.array([km.score(line, bos=True, eos=True) for line in lines])
    np.testing.assert_allclose(ours_scores, theirs, rtol=0, atol=1e-3)


def test_sampler_exact_on_a_pruned_model(corpora, lmplz, tmp_path_factory):
    """tests/test_sampling_exact.py's chi-square test against kenlm's conditionals, on the
    pruned trigram model of train-head."""
    from test_sampling_exact import check_contexts

    model, ours, _ = pruned_pair("tinystories", 3, [0, 1], corpora, lmplz, tmp_path_factory)
    sample = model.sample(7000, seed=1003, max_length=100_000, threads=2)
    assert sample.lengths().max() < 100_000
    results = check_contexts(model, kenlm.Model(str(ours)), sample)
    assert any(r[0] == "<s>" for r in results)


@pytest.mark.parametrize("prune", [[0, 1, 1], [1, 2]])
def test_pooled_pruned_model_equals_pruned_concatenation(prune, singletons, tmp_path):
    corpus = singletons[0]
    parts = [corpus.select(np.arange(i, corpus.num_documents, 3)) for i in range(3)]
    pool = NGramPool(3, threads=2)
    for part in parts:
        pool.add(part)
    pooled, whole = tmp_path / "pooled.arpa", tmp_path / "whole.arpa"
    pool.fit(prune=prune).to_arpa(str(pooled))
    collapse.NGramModel.fit(collapse.concatenate(parts), order=3, prune=prune).to_arpa(str(whole))
    assert pooled.read_bytes() == whole.read_bytes()
    unpruned = pool.fit()
    assert sum(pool.fit(prune=prune).num_ngrams()) < sum(unpruned.num_ngrams())


@pytest.mark.parametrize("prune, message", [
    ([0, 2, 1], "non-decreasing"),
    ([0, 1, 1, 1], "order 3"),
    ([0, -1], ">= 0"),
    ("0 1", "list of counts"),
])
def test_bad_thresholds_are_one_line_errors(prune, message, singletons):
    with pytest.raises(CollapseError, match=message):
        collapse.NGramModel.fit(singletons[0], order=3, prune=prune)


def test_pruning_needs_kneser_ney(singletons):
    with pytest.raises(CollapseError, match="Kneser-Ney"):
        collapse.NGramModel.fit(singletons[0], order=3, smoothing="addk", prune=[0, 1])
    # all-zero thresholds are no pruning, for every smoothing
    collapse.NGramModel.fit(singletons[0], order=2, smoothing="mle", prune=[0, 0])


def test_core_refuses_bad_thresholds_without_crashing(singletons):
    corpus = singletons[0]
    for bad in ([0, 2, 1], [0, 1]):  # decreasing; not one per order
        with pytest.raises(ValueError, match="pruning"):
            _core.fit_ngram(corpus.tokens, corpus.offsets, corpus.vocab.words, 3, "mkn", 1.0, 1, 0, "", bad)


def test_cli_prune(singletons, tmp_path, lmplz):
    out = tmp_path / "m.arpa"
    run_cli("ngram", "estimate", str(singletons[1]), "--order", "3", "--prune", "0", "1", "-o", str(out), check=0)
    ref = tmp_path / "lmplz.arpa"
    run_lmplz(lmplz, str(singletons[1]), str(ref), 3, extra=("--prune", "0", "1"))
    assert_same_arpa(out, ref)
    code, _, err = run_cli("ngram", "estimate", str(singletons[1]), "--order", "3", "--prune", "0", "2", "1",
                           "-o", str(tmp_path / "bad.arpa"))
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "non-decreasing" in lines[0], err
