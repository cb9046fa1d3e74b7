"""Pruned, unnormalised ARPA models (SRILM-style, by hand, `lmplz --prune`) load, score
as kenlm scores them, and sample from their renormalised conditionals.

Test models are built here: an lmplz trigram model of a small random corpus, then pruned
by hand (bigrams removed while trigrams ending in them stay: n-grams without their
suffix; backoffs made positive; nothing renormalised) and with `lmplz --prune`. kenlm
loads n-grams without their suffix (it inserts "blanks"); it refuses n-grams without
their prefix, whose reference is the ARPA recursion itself (tests/ngram_reference.py).
"""

from __future__ import annotations

import pathlib
import random

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import collapse
from lmplz import build_prefix, find_lmplz, run_lmplz
from ngram_reference import arpa_log10p, arpa_score_sentence, read_arpa_text
from test_sampling_exact import SENTINEL, chi_square_pvalue, transitions

kenlm = pytest.importorskip("kenlm")

WORDS = [f"w{i}" for i in range(24)]


def random_sentences(n, seed):
    rng = random.Random(seed)
    weights = [1.0 / (i + 1) for i in range(len(WORDS))]
    return [" ".join(rng.choices(WORDS, weights)[0] for _ in range(rng.randint(1, 9))) for _ in range(n)]


@pytest.fixture(scope="module")
def base_arpa(lmplz, tmp_path_factory):
    """An lmplz trigram model of 3000 random sentences, and lmplz --prune 0 1 1 of them."""
    d = tmp_path_factory.mktemp("pruned")
    text = d / "train.txt"
    text.write_text("\n".join(random_sentences(3000, 1)) + "\n", encoding="utf-8")
    full, pruned = d / "full.arpa", d / "lmplz-pruned.arpa"
    # --discount_fallback: 24 words leave no unigram of adjusted count 1.
    run_lmplz(lmplz, str(text), str(full), 3, extra=("--discount_fallback",))
    run_lmplz(lmplz, str(text), str(pruned), 3, extra=("--discount_fallback", "--prune", "0", "1", "1"))
    return full, pruned


def write_arpa_text(path, order, grams):
    lines = ["\\data\\"]
    by_order = {n: [g for g in grams if len(g) == n] for n in range(1, order + 1)}
    lines += [f"ngram {n}={len(by_order[n])}" for n in by_order]
    for n, rows in by_order.items():
        lines += ["", f"\\{n}-grams:"]
        for g in rows:
            p, b = grams[g]
            lines.append(f"{p:.7g}\t{' '.join(g)}" + (f"\t{b:.7g}" if n < order else ""))
    lines += ["", "\\end\\", ""]
    pathlib.Path(path).write_text("\n".join(lines), encoding="utf-8")


def hand_prune(grams, order, rng, drop=0.3, positive=0.2, keep_prefixes=True):
    """Drop a fraction of the (n<order)-grams, keeping the higher n-grams that end in them
    (which then lack their suffix); with keep_prefixes, n-grams starting with a dropped
    one go too (kenlm refuses n-grams without their prefix). A fraction of the remaining
    backoffs is made positive. Nothing is renormalised."""
    out = dict(grams)
    dropped = set()
    for g in grams:
        if 1 < len(g) < order and rng.random() < drop:
            dropped.add(g)
    for g in list(out):
        if g in dropped or (keep_prefixes and len(g) > 1 and g[:-1] in dropped):
            del out[g]
    for g, (p, b) in out.items():
        if len(g) < order and rng.random() < positive:
            out[g] = (p, abs(b) + 0.3)
    return out


def lacking_suffix(grams):
    return [g for g in grams if len(g) > 1 and g[1:] not in grams]


def lacking_prefix(grams):
    return [g for g in grams if len(g) > 1 and g[:-1] not in grams]


def score_both(path, sentences):
    model = collapse.NGramModel.from_arpa(str(path))
    corpus = collapse.Corpus.from_texts(sentences, vocab=model.vocab, grow=False)
    km = kenlm.Model(str(path))
    return model, np.asarray(model.score(corpus)), np.array([km.score(s) for s in sentences])


def test_lmplz_prune_and_hand_pruned_score_as_kenlm(base_arpa, tmp_path):
    sentences = random_sentences(400, 7) + ["w0 w1 w2 w3 unknown w0", ""]
    for source in base_arpa:
        order, grams = read_arpa_text(source)
        for seed in range(3):
            pruned = hand_prune(grams, order, random.Random(seed))
            assert lacking_suffix(pruned) and not lacking_prefix(pruned)
            path = tmp_path / f"{source.stem}-{seed}.arpa"
            write_arpa_text(path, order, pruned)
            model, ours, theirs = score_both(path, sentences)
            np.testing.assert_allclose(ours, theirs, atol=2e-5, rtol=0)
            corpus = collapse.Corpus.from_texts(sentences, vocab=model.vocab, grow=False)
            kppl = 10.0 ** (-theirs.sum() / (corpus.num_tokens + corpus.num_documents))
            assert model.perplexity(corpus) == pytest.approx(kppl, rel=1e-5)


def test_kenlm_own_test_model(tmp_path):
    """kenlm's lm/test.arpa (in the sdist that tools/build_lmplz.sh unpacks) stores
    n-grams without their suffix and positive backoffs."""
    found = find_lmplz(build=False)
    candidates = [pathlib.Path(found).resolve().parent.parent / "src" / "lm" / "test.arpa"] if found else []
    candidates.append(build_prefix() / "src" / "lm" / "test.arpa")
    path = next((c for c in candidates if c.exists()), None)
    if path is None:
        pytest.skip("kenlm's lm/test.arpa not found beside lmplz")
    order, grams = read_arpa_text(path)
    assert lacking_suffix(grams)
    words = sorted({w for g in grams for w in g if w not in ("<s>", "</s>")})
    rng = random.Random(3)
    sentences = [" ".join(rng.choice(words) for _ in range(rng.randint(0, 10))) for _ in range(300)]
    _, ours, theirs = score_both(path, sentences)
    np.testing.assert_allclose(ours, theirs, atol=2e-5, rtol=0)


def test_missing_prefix_scores_by_the_arpa_recursion(base_arpa, tmp_path):
    """kenlm refuses these files; SRILM's reading is the recursion with backoff 1 for a
    context that is not stored, which is what the blanks give."""
    order, grams = read_arpa_text(base_arpa[0])
    pruned = hand_prune(grams, order, random.Random(11), keep_prefixes=False)
    assert lacking_prefix(pruned)
    path = tmp_path / "noprefix.arpa"
    write_arpa_text(path, order, pruned)
    with pytest.raises(Exception):
        kenlm.Model(str(path))
    sentences = random_sentences(300, 5)
    model = collapse.NGramModel.from_arpa(str(path))
    ours = model.score(collapse.Corpus.from_texts(sentences, vocab=model.vocab, grow=False))
    ref = [arpa_score_sentence(order, pruned, s.split()) for s in sentences]
    np.testing.assert_allclose(ours, ref, atol=2e-5, rtol=0)
    # The sampler's conditionals: the recursion's, renormalised (<s> excluded).
    sampler = collapse._core.Sampler(model._core, 1.0)
    words = model.vocab.words
    rng = random.Random(2)
    for _ in range(30):
        history = ["<s>"] + [rng.choice(WORDS) for _ in range(rng.randint(0, 3))]
        ref = np.array([0.0 if w == "<s>" else 10.0 ** arpa_log10p(order, pruned, history, w) for w in words])
        got = sampler.distribution(np.array([model.vocab.id(w) for w in history], dtype=np.uint32))
        np.testing.assert_allclose(got, ref / ref.sum(), rtol=1e-5, atol=1e-12)
    assert model.sample(200, seed=3).num_documents == 200


@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
# drop <= 0.3: kenlm's probing hash keeps spare room for only so many blanks (it refuses
# heavier pruning with ProbingSizeException); we have no such limit.
@given(seed=st.integers(0, 2**32 - 1), drop=st.floats(0.05, 0.3), positive=st.floats(0.0, 0.5))
def test_random_pruning_scores_as_kenlm(base_arpa, tmp_path, seed, drop, positive):
    order, grams = read_arpa_text(base_arpa[0])
    pruned = hand_prune(grams, order, random.Random(seed), drop=drop, positive=positive)
    path = tmp_path / f"p{seed}.arpa"
    write_arpa_text(path, order, pruned)
    _, ours, theirs = score_both(path, random_sentences(60, seed))
    np.testing.assert_allclose(ours, theirs, atol=2e-5, rtol=0)


def kenlm_conditional_renormalised(km, context_words, vocab_words):
    """kenlm's 10^score(w | context) over the vocabulary (<s> excluded), divided by its sum."""
    state = kenlm.State()
    km.BeginSentenceWrite(state)
    for w in context_words[1:]:  # context_words[0] == "<s>"
        out = kenlm.State()
        km.BaseScore(state, w, out)
        state = out
    out = kenlm.State()
    p = np.array([0.0 if w == "<s>" else 10.0 ** km.BaseScore(state, w, out) for w in vocab_words])
    return p / p.sum(), p.sum()


def test_sampler_draws_renormalised_conditionals(base_arpa, tmp_path):
    """Chi-square of the sampled next words against kenlm's conditionals, renormalised, on
    a hand-pruned model whose conditionals do not sum to one."""
    order, grams = read_arpa_text(base_arpa[0])
    pruned = hand_prune(grams, order, random.Random(5), drop=0.25, positive=0.3)
    path = tmp_path / "sampled.arpa"
    write_arpa_text(path, order, pruned)
    model, km = collapse.NGramModel.from_arpa(str(path)), kenlm.Model(str(path))
    sample = model.sample(40_000, seed=17, max_length=200, threads=2)
    ctx, nxt = transitions(sample, order, None)
    words = model.vocab.words
    vsize = len(words)
    keys = np.where(ctx == SENTINEL, vsize, ctx).astype(np.int64)
    key = keys[:, 0] * (vsize + 1) + keys[:, 1]
    uniq, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
    results, sums = [], []
    for c in np.argsort(-counts, kind="stable")[:25]:
        row = ctx[np.nonzero(inverse == c)[0][0]]
        context = [words[i] for i in row if i != SENTINEL]
        # A full context (order - 1 words) is what kenlm keeps of "<s> context" too.
        p, total = kenlm_conditional_renormalised(km, context if context[0] == "<s>" else ["<s>", *context], words)
        sums.append(total)
        observed = np.bincount(nxt[inverse == c], minlength=vsize)
        results.append((" ".join(context), int(counts[c]), *chi_square_pvalue(observed, p)))
    assert max(abs(s - 1.0) for s in sums) > 0.05, "the model is normalised: the test would prove nothing"
    assert len(results) >= 20 and min(r[1] for r in results) >= 1000, results
    threshold = 1e-3 / len(results)
    bad = [r for r in results if r[2] < threshold]
    assert not bad, f"chi-square rejects (context, count, p, df) at {threshold:g}: {bad}"
