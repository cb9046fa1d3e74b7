"""Parity with KenLM: our modified Kneser-Ney equals lmplz's model, our scores kenlm's.

On train-head.txt (one story per line, whitespace tokens) at orders 3, 4, 5: the same
n-grams as lmplz, every log10 probability and backoff within 1e-4, the same discounts;
perplexity on valid-head.txt equal to kenlm.Model's on our ARPA within 1e-4 relative; and
lmplz's ARPA read by us scores as kenlm scores it.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import collapse
from collapse.data.corpus import whitespace_tokenize

from lmplz import read_arpa_dict, run_lmplz

kenlm = pytest.importorskip("kenlm")


@pytest.fixture(scope="module")
def train_lines(train_head_lines):
    return train_head_lines


@pytest.fixture(scope="module")
def valid(tinystories_dir):
    path = tinystories_dir / "valid-head.txt"
    return collapse.load_corpus(str(path), format="lines"), path


def kenlm_corpus_perplexity(model, lines):
    """kenlm's perplexity of many sentences: 10^(-sum score / sum (words + 1))."""
    total = sum(model.score(line, bos=True, eos=True) for line in lines)
    words = sum(len(whitespace_tokenize(line)) + 1 for line in lines)
    return 10.0 ** (-total / words), total


def lmplz_discounts(stderr: str):
    out = {}
    for m in re.finditer(r"^(\d+) \d+ D1=(\S+) D2=(\S+) D3\+=(\S+)$", stderr, re.M):
        out[int(m.group(1))] = tuple(float(x) for x in m.group(2, 3, 4))
    return out


@pytest.mark.parametrize("order", [3, 4, 5])
def test_mkn_matches_lmplz(order, lmplz, train_lines, valid, tmp_path):
    corpus, lines_path = train_lines
    ours = collapse.NGramModel.fit(corpus, order=order, smoothing="mkn")
    assert ours.discount_policy == ["chen-goodman"] * order
    our_arpa = tmp_path / "ours.arpa"
    ref_arpa = tmp_path / "lmplz.arpa"
    ours.to_arpa(str(our_arpa))
    stderr = run_lmplz(lmplz, str(lines_path), str(ref_arpa), order, memory="1G")

    # The discounts lmplz reports.
    ref_d = lmplz_discounts(stderr)
    assert sorted(ref_d) == list(range(1, order + 1))
    for n in range(1, order + 1):
        np.testing.assert_allclose(ours.discounts[n - 1], ref_d[n], rtol=1e-5)

    a, b = read_arpa_dict(our_arpa), read_arpa_dict(ref_arpa)
    assert set(a) == set(b), f"{len(set(a) - set(b))} n-grams only ours, {len(set(b) - set(a))} only lmplz's"
    # <s> is never predicted: lmplz writes its unigram probability as 0, we write -99 so
    # that the backoff form's distributions sum to one (docs/ngram.md). Its backoff matches.
    assert a[(1, "<s>")][0] == -99.0 and b[(1, "<s>")][0] in (0.0, -99.0)
    keys = sorted(k for k in a if k != (1, "<s>"))
    pa = np.array([a[k] for k in keys])
    pb = np.array([b[k] for k in keys])
    np.testing.assert_allclose(pa[:, 0], pb[:, 0], atol=1e-4, rtol=0)
    np.testing.assert_allclose(pa[:, 1], pb[:, 1], atol=1e-4, rtol=0)
    assert abs(a[(1, "<s>")][1] - b[(1, "<s>")][1]) <= 1e-4

    # Perplexity on valid-head: ours vs kenlm on our ARPA, and per sentence.
    valid_corpus, valid_path = valid
    lines = valid_path.read_text(encoding="utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    km = kenlm.Model(str(our_arpa))
    kppl, ktotal = kenlm_corpus_perplexity(km, lines)
    res = ours.evaluate(valid_corpus)
    assert res["sequences"] == len(lines)
    assert res["perplexity"] == pytest.approx(kppl, rel=1e-4)
    assert res["log10_prob"] == pytest.approx(ktotal, rel=1e-5)
    per_line = np.array([km.score(line, bos=True, eos=True) for line in lines[:500]])
    np.testing.assert_allclose(res["log10_probs"][:500], per_line, atol=1e-3)
    # OOV: words of valid absent from train, counted as kenlm counts them.
    train_words = set(corpus.vocab.words)
    assert res["oov"] == sum(1 for line in lines for w in whitespace_tokenize(line) if w not in train_words)

    # lmplz's ARPA loads in ours and scores like kenlm scores it.
    theirs = collapse.NGramModel.from_arpa(str(ref_arpa))
    assert theirs.num_ngrams() == ours.num_ngrams()
    kref = kenlm.Model(str(ref_arpa))
    kppl_ref, _ = kenlm_corpus_perplexity(kref, lines)
    assert theirs.perplexity(valid_corpus) == pytest.approx(kppl_ref, rel=1e-4)


def test_whitespace_tokenizer_matches_lmplz_on_tricky_bytes(lmplz, tmp_path):
    """Tabs, vertical tabs, form feeds, CR, NBSP and other Unicode spaces, runs of spaces:
    our whitespace tokenizer yields exactly lmplz's vocabulary."""
    text = ("a\tb  c\rf\n"
            "  lead and trail  \n"
            "nb\u00a0sp ideo\u3000space thin\u2009sp em\u2003sp\n"
            "caf\u00e9 na\u00efve \u00fcber \u65e5\u672c\u8a9e \U0001f600 \u200bzw\n"
            "x\x1fy unit\x1cseparator\n"
            "a b a b a b c\n")
    path = tmp_path / "tricky.txt"
    path.write_bytes(text.encode("utf-8"))
    arpa = tmp_path / "tricky.arpa"
    run_lmplz(lmplz, str(path), str(arpa), 2, extra=("--discount_fallback",))
    lmplz_words = {k[1] for k in read_arpa_dict(arpa) if k[0] == 1}
    corpus = collapse.load_corpus(str(path), format="lines", tokenizer="whitespace")
    ours = set(corpus.vocab.words)
    assert ours == lmplz_words, (sorted(ours - lmplz_words), sorted(lmplz_words - ours))


def test_whitespace_tokenizer_vertical_tab_and_form_feed(lmplz, tmp_path):
    path = tmp_path / "vtff.txt"
    path.write_bytes("c\x0bd\x0ce f\nc f\n".encode("utf-8"))
    arpa = tmp_path / "vtff.arpa"
    run_lmplz(lmplz, str(path), str(arpa), 2, extra=("--discount_fallback",))
    lmplz_words = {k[1] for k in read_arpa_dict(arpa) if k[0] == 1}
    corpus = collapse.load_corpus(str(path), format="lines", tokenizer="whitespace")
    assert set(corpus.vocab.words) == lmplz_words
