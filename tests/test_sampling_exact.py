"""Exactness of n-gram sampling against kenlm's conditional distributions.

Models: interpolated modified Kneser-Ney bigram and trigram models of train-head.txt
(one story per line), both as lmplz estimates them and as our NGramModel.fit does;
the reference conditional p(w | context) is computed by the `kenlm` module from the
ARPA file, over the whole vocabulary (kenlm.Model.BaseScore with State).

Test: at least 10^6 sampled tokens; for each of the most frequent contexts in the sample,
the empirical next-word counts against the reference by a chi-square goodness-of-fit
test (cells with expected count below 5 pooled into one), at family-wise significance
ALPHA = 1e-3 with a Bonferroni correction over the contexts tested. Temperature, top-k
and top-p are tested the same way against the reference distribution raised to 1/T,
truncated (top-k first, then top-p, as transformers does; ties by word id) and
renormalised.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

import collapse

from lmplz import run_lmplz

kenlm = pytest.importorskip("kenlm")

ALPHA = 1e-3           # family-wise significance of each test function
NUM_CONTEXTS = 12      # most frequent contexts tested per model
MIN_TOKENS = 1_000_000
SENTINEL = np.uint32(0xFFFFFFFF)  # "before <s>": marks contexts shorter than order - 1


@pytest.fixture(scope="module")
def train(train_head_lines):
    return train_head_lines


_models = {}


def get_model(source, order, train, lmplz_path, tmp_path_factory):
    """(NGramModel, kenlm.Model) for an MKN model of train-head, cached per module run."""
    key = (source, order)
    if key not in _models:
        corpus, lines = train
        arpa = tmp_path_factory.mktemp(f"{source}{order}") / "model.arpa"
        if source == "lmplz":
            run_lmplz(lmplz_path, str(lines), str(arpa), order)
        else:
            collapse.NGramModel.fit(corpus, order=order, smoothing="mkn").to_arpa(str(arpa))
        _models[key] = (collapse.NGramModel.from_arpa(str(arpa)), kenlm.Model(str(arpa)))
    return _models[key]


def kenlm_conditional(km, context_words, vocab_words):
    """p(. | context) over vocab_words from kenlm, normalised; <s> has probability 0."""
    state = kenlm.State()
    words = list(context_words)
    if words and words[0] == "<s>":
        km.BeginSentenceWrite(state)
        words = words[1:]
    else:
        km.NullContextWrite(state)
    for w in words:
        out = kenlm.State()
        km.BaseScore(state, w, out)
        state = out
    out = kenlm.State()
    logp = np.array([-np.inf if w == "<s>" else km.BaseScore(state, w, out) for w in vocab_words])
    p = 10.0 ** logp
    assert abs(p.sum() - 1.0) < 1e-3, f"kenlm's conditional sums to {p.sum()}"
    return p / p.sum()


def transitions(corpus, order, max_length=None):
    """(contexts[m, order-1], next words[m]) of every emitted word and </s> in the sample;
    context positions before <s> hold SENTINEL. A sequence cut at max_length has no </s>
    draw: its last target is left out."""
    lengths = corpus.lengths()
    n_docs = corpus.num_documents
    pad = order - 1
    # Each document padded as [SENTINEL]*(pad-1) + [<s>] + words + [</s>].
    plen = lengths + pad + 1
    starts = np.zeros(n_docs + 1, dtype=np.int64)
    np.cumsum(plen, out=starts[1:])
    seq = np.full(starts[-1], SENTINEL, dtype=np.uint32)
    seq[starts[:-1] + pad - 1] = 1
    seq[starts[1:] - 1] = 2
    doc_of_token = np.repeat(np.arange(n_docs), lengths)
    within = np.arange(corpus.num_tokens) - corpus.offsets[:-1][doc_of_token]
    seq[starts[:-1][doc_of_token] + pad + within] = corpus.tokens
    # Targets: every position after the padding and <s>.
    is_target = np.ones(seq.size, dtype=bool)
    for j in range(pad):
        is_target[starts[:-1] + j] = False
    if max_length is not None:
        is_target[starts[1:][lengths >= max_length] - 1] = False
    targets = np.nonzero(is_target)[0]
    ctx = np.stack([seq[targets - pad + j] for j in range(pad)], axis=1)
    return ctx, seq[targets]


def chi_square_pvalue(observed, expected_prob):
    """Goodness of fit of counts to probabilities; expected cells below 5 pooled."""
    n = observed.sum()
    expected = expected_prob * n
    assert not np.any(observed[expected_prob == 0]), "a word of probability 0 was sampled"
    big = expected >= 5
    obs = list(observed[big])
    exp = list(expected[big])
    rest_o, rest_e = observed[~big].sum(), expected[~big].sum()
    if rest_e > 0:
        obs.append(rest_o)
        exp.append(rest_e)
    obs, exp = np.array(obs, dtype=float), np.array(exp, dtype=float)
    if obs.size < 2:
        return 1.0, 0
    stat = float(((obs - exp) ** 2 / exp).sum())
    return float(stats.chi2.sf(stat, obs.size - 1)), obs.size - 1


def reference_transform(p, temperature=1.0, top_k=0, top_p=1.0):
    """Temperature, then top-k, then top-p on the renormalised top-k distribution; ties
    by word id. Returns (probabilities, ambiguous) where ambiguous flags a cut at a
    near-tie that float rounding could move."""
    q = np.zeros_like(p)
    pos = p > 0
    q[pos] = np.exp(np.log(p[pos]) / temperature)
    q /= q.sum()
    order = np.lexsort((np.arange(q.size), -q))  # prob desc, id asc
    order = order[q[order] > 0]
    ambiguous = False
    if top_k and order.size > top_k:
        a, b = q[order[top_k - 1]], q[order[top_k]]
        ambiguous |= bool(a - b <= 1e-6 * a)
        order = order[:top_k]
    if top_p < 1.0:
        mass = q[order] / q[order].sum()
        cum = np.cumsum(mass)
        cut = int(np.searchsorted(cum, top_p)) + 1
        ambiguous |= bool(np.min(np.abs(cum[max(cut - 2, 0):cut + 1] - top_p)) < 1e-6)
        order = order[:cut]
    out = np.zeros_like(q)
    out[order] = q[order]
    return out / out.sum(), ambiguous


def check_contexts(model, km, sample, transform=None, num_contexts=NUM_CONTEXTS, min_count=200, max_length=None):
    ctx, nxt = transitions(sample, model.order, max_length)
    vsize = len(model.vocab)
    keys = np.where(ctx == SENTINEL, vsize, ctx).astype(np.int64)  # SENTINEL -> vsize
    base = np.int64(vsize + 1)
    key = keys[:, 0] if keys.shape[1] == 1 else keys[:, 0] * base + keys[:, 1]
    uniq, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
    top = list(np.argsort(-counts, kind="stable")[:num_contexts])
    # Always test the start context too ([SENTINEL ..] <s>).
    start = np.int64(1) if keys.shape[1] == 1 else np.int64(vsize) * base + 1
    start_index = int(np.searchsorted(uniq, start))
    if start_index < uniq.size and uniq[start_index] == start and start_index not in top:
        top.append(start_index)
    words = model.vocab.words
    tested, results = 0, []
    for c in top:
        if counts[c] < min_count:
            continue
        row = ctx[np.nonzero(inverse == c)[0][0]]
        context_words = [words[i] for i in row if i != SENTINEL]
        p = kenlm_conditional(km, context_words, words)
        if transform is not None:
            p, ambiguous = reference_transform(p, **transform)
            if ambiguous:
                continue
        observed = np.bincount(nxt[inverse == c], minlength=len(words))
        pval, df = chi_square_pvalue(observed, p)
        results.append((" ".join(context_words), int(counts[c]), df, pval))
        tested += 1
    assert tested >= 5, f"only {tested} contexts could be tested"
    threshold = ALPHA / tested
    bad = [r for r in results if r[3] < threshold]
    assert not bad, f"chi-square rejects (context, count, df, p) at {threshold:g}: {bad}"
    return results


@pytest.mark.parametrize("source", ["lmplz", "fit"])
@pytest.mark.parametrize("order", [2, 3])
def test_exact_next_word_distribution(source, order, train, lmplz, tmp_path_factory):
    model, km = get_model(source, order, train, lmplz, tmp_path_factory)
    sample = model.sample(7000, seed=1000 + order, max_length=100_000, threads=2)
    assert sample.num_tokens >= MIN_TOKENS
    assert sample.lengths().max() < 100_000  # every sequence ended with </s>
    results = check_contexts(model, km, sample)
    # The start context and deep (backed-off) draws are both exercised.
    assert any(r[0] == "<s>" for r in results)


@pytest.mark.parametrize("order", [2, 3])
def test_distribution_matches_kenlm(order, train, lmplz, tmp_path_factory):
    """The sampler's whole conditional distribution (backoff formula) equals kenlm's."""
    from collapse.ngram.sampler import sampler_for

    model, km = get_model("lmplz", order, train, lmplz, tmp_path_factory)
    sampler = sampler_for(model, 1.0)
    words = model.vocab.words
    rng = np.random.default_rng(order)
    histories = [["<s>"], ["<s>", "Once"], ["Once", "upon"], ["the"], ["said", ","]]
    histories += [[words[i] for i in rng.integers(3, len(words), size=order - 1)] for _ in range(5)]
    for h in histories:
        ids = np.array([model.vocab.id(w) for w in h], dtype=np.uint32)
        ours = sampler.distribution(ids)
        ref = kenlm_conditional(km, h, words)
        np.testing.assert_allclose(ours, ref, rtol=2e-5, atol=1e-12, err_msg=" ".join(h))


TRANSFORMS = [
    {"temperature": 0.6},
    {"temperature": 1.7},
    {"top_k": 20},
    {"top_p": 0.8},
    {"temperature": 1.3, "top_k": 50, "top_p": 0.9},
]


@pytest.mark.parametrize("transform", TRANSFORMS, ids=lambda t: ",".join(f"{k}={v}" for k, v in t.items()))
def test_tempered_and_truncated(transform, train, lmplz, tmp_path_factory):
    model, km = get_model("lmplz", 3, train, lmplz, tmp_path_factory)
    sample = model.sample(2500, seed=77, max_length=2000, threads=2, **transform)
    assert sample.num_tokens >= 100_000
    check_contexts(model, km, sample, transform=transform, min_count=100, max_length=2000)
