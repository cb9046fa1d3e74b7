"""One definition of each paradigm: the document-level rules (collapse.experiment.paradigms, used
by the experiment loop and the n-gram simulator) and the C++ categorical kernel's count-level
form give the same process.

A categorical model is a corpus of one-token documents (one per outcome drawn); its MLE
refit is the corpus itself, and sampling n draws from it is drawing n documents uniformly
with replacement. Run both ways on a small case (K = 3 outcomes, N = 4, G = 4), the
distribution of generation G's p must agree (chi-square test of homogeneity on the
histogram of the final p vectors), for every paradigm; the same test tells different
paradigms apart, which shows it has the power to see a wrong rule.
"""

import collections

import numpy as np
import pytest
from scipy import stats

import collapse
from collapse import resample
from collapse.data.corpus import Corpus, Vocab
from collapse.experiment.paradigms import synthetic_size, training_corpus

P0 = np.array([0.5, 0.3, 0.2])
N, G, TRIALS = 4, 4, 1000
CASES = [("replace", None), ("accumulate", None), ("accumulate-subsample", None), ("mix", 0.5), ("fresh", 0.25)]


def draw_truth(rng: np.random.Generator, vocab: Vocab, n: int) -> Corpus:
    ids = rng.choice(len(P0), size=n, p=P0).astype(np.uint32) + 3
    return Corpus(ids, np.arange(n + 1, dtype=np.int64), vocab)


def python_final_p(paradigm, alpha, trials, seed):
    """Generation G's p per trial, by the document-level definition."""
    vocab = Vocab([f"o{i}" for i in range(len(P0))])
    out = []
    for trial in range(trials):
        rng = np.random.Generator(np.random.Philox(key=seed * 100_003 + trial))
        real = draw_truth(rng, vocab, N)
        train, synthetic = real, []
        for t in range(1, G):  # C++ generation g is the loop's generation g - 1
            n = synthetic_size(paradigm, alpha, N)
            base = int(rng.integers(2 ** 63))
            synthetic.append(resample.sample_documents(train, n, seed=base, replace=True) if n else None)
            train = training_corpus(paradigm, alpha, t, real, synthetic,
                                    lambda purpose, b=base: b + purpose, lambda _t, k: draw_truth(rng, vocab, k))
        counts = np.bincount(train.tokens.astype(np.int64) - 3, minlength=len(P0))
        out.append(tuple(np.round(counts / counts.sum(), 9)))
    return out


def kernel_final_p(paradigm, alpha, trials, seed):
    r = collapse.simulate(p0=P0, N=N, generations=G, trials=trials, paradigm=paradigm, alpha=alpha, seed=seed)
    return [tuple(np.round(row, 9)) for row in r.final_p]


def homogeneity_pvalue(a, b):
    ca, cb = collections.Counter(a), collections.Counter(b)
    keys = sorted(set(ca) | set(cb), key=lambda k: -(ca[k] + cb[k]))
    table = np.array([[ca[k] for k in keys], [cb[k] for k in keys]], dtype=float)
    # pool the rare categories (expected count < 5) into one column
    expected_min = table.sum(axis=0) * min(table.sum(axis=1)) / table.sum()
    big = expected_min >= 5
    pooled = np.column_stack([table[:, big], table[:, ~big].sum(axis=1, keepdims=True)]) if (~big).any() else table
    pooled = pooled[:, pooled.sum(axis=0) > 0]
    return stats.chi2_contingency(pooled)[1]


@pytest.fixture(scope="module")
def kernel_runs():
    return {p: kernel_final_p(p, a, TRIALS, seed=11) for p, a in CASES}


@pytest.mark.parametrize("paradigm,alpha", CASES, ids=[c[0] for c in CASES])
def test_document_rules_and_the_kernel_give_the_same_process(kernel_runs, paradigm, alpha):
    python = python_final_p(paradigm, alpha, TRIALS, seed=5)
    assert homogeneity_pvalue(python, kernel_runs[paradigm]) > 1e-4


def test_the_comparison_tells_paradigms_apart(kernel_runs):
    # the test above has power: the Python rules of one paradigm against the kernel's run
    # of another are rejected
    for ours, theirs in [("accumulate", "accumulate-subsample"), ("replace", "accumulate-subsample"),
                         ("mix", "fresh")]:
        alpha = dict(CASES)[ours]
        if ours == "mix":  # the same alpha on both sides: only the real part's rule differs
            python = python_final_p("mix", 0.25, TRIALS, seed=5)
        else:
            python = python_final_p(ours, alpha, TRIALS, seed=5)
        assert homogeneity_pvalue(python, kernel_runs[theirs]) < 1e-6, (ours, theirs)
