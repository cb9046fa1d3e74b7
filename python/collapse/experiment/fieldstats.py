"""The metrics the literature reports on generated text: self-BLEU-4 and the Zipf exponent.

Self-BLEU (Zhu et al. 2018, Texygen): each of a fixed-seed subset of documents is scored by
sentence-level BLEU-4 against the rest of the subset as references, and the scores are
averaged. Each score is exactly NLTK's ``corpus_bleu([others], [doc])`` (uniform weights
over n = 1..4, ``SmoothingFunction().method1``, closest reference length for the brevity
penalty; tested against NLTK), computed here with numpy over all documents at once, because
NLTK's loop over 100 x 99 reference sets takes seconds per generation.
"""

from __future__ import annotations

import math
from typing import List, Sequence

import numpy as np

SELF_BLEU_DOCUMENTS = 100   # the subset's size (every document when the sample has fewer)
BLEU_ORDER = 4
BLEU_EPSILON = 0.1          # NLTK SmoothingFunction().method1: epsilon added to zero matches
KEY_BITS = 62               # n-grams whose packed ids need more bits take numpy's row-wise unique
ZIPF_MIN_COUNT = 2          # types seen once form the flat tail of a rank-frequency plot


def self_bleu_subset(num_documents: int, seed: int, size: int = SELF_BLEU_DOCUMENTS) -> np.ndarray:
    """Indices (ascending) of the documents self-BLEU scores: ``size`` drawn without
    replacement by ``numpy.random.default_rng(seed)``, or all of them when there are fewer."""
    if num_documents <= size:
        return np.arange(num_documents)
    return np.sort(np.random.default_rng(seed).choice(num_documents, size, replace=False))


def _ngram_ids(ids: np.ndarray, owner: np.ndarray, n: int) -> tuple:
    """(an id per distinct n-gram, its document) for every n-gram inside a document of the
    concatenated ``ids`` (renumbered 0..V-1) whose documents are ``owner``: the n ids
    packed into one int64 key, or numpy's row-wise unique when V**n would not fit."""
    size = ids.size - n + 1
    if size <= 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    inside = owner[:size] == owner[n - 1:n - 1 + size]
    bits = max(1, int(ids.max()).bit_length())
    if bits * n > KEY_BITS:
        rows = np.lib.stride_tricks.sliding_window_view(ids, n)[inside]
        return np.unique(rows, axis=0, return_inverse=True)[1].reshape(-1), owner[:size][inside]
    key = np.zeros(size, dtype=np.int64)
    for j in range(n):
        key = (key << bits) | ids[j:j + size]
    return np.unique(key[inside], return_inverse=True)[1], owner[:size][inside]


def _clipped_matches(ids: np.ndarray, owner: np.ndarray, d: int, n: int) -> np.ndarray:
    """For each of the ``d`` documents, its n-gram matches clipped by the most any *other*
    document holds (BLEU's modified precision numerator with the rest as references)."""
    gid, doc_of = _ngram_ids(ids, owner, n)
    if gid.size == 0:
        return np.zeros(d)
    pair, count = np.unique(gid * d + doc_of, return_counts=True)
    g, doc = pair // d, pair % d
    # per n-gram: the largest count (and its document) and the second largest, so that the
    # most any other document holds is the second where this document holds the first
    order = np.lexsort((-count, g))
    g, doc, count = g[order], doc[order], count[order]
    first = np.ones(g.size, dtype=bool)
    first[1:] = g[1:] != g[:-1]
    top_at = np.flatnonzero(first)
    groups = np.cumsum(first) - 1
    top, top_doc = count[top_at], doc[top_at]
    second = np.zeros(top_at.size, dtype=np.int64)
    has_second = top_at + 1 < g.size
    has_second[has_second] = ~first[top_at[has_second] + 1]
    second[has_second] = count[top_at[has_second] + 1]
    others = np.where(doc == top_doc[groups], second[groups], top[groups])
    return np.bincount(doc, weights=np.minimum(count, others), minlength=d)


def _closest_other_length(lengths: np.ndarray) -> np.ndarray:
    """NLTK's closest_ref_length among the other documents: the nearest length, the shorter
    on a tie."""
    diff = np.abs(lengths[None, :] - lengths[:, None]).astype(np.float64)
    key = diff * (lengths.max() + 1) + lengths[None, :]
    np.fill_diagonal(key, np.inf)
    return lengths[np.argmin(key, axis=1)]


def sentence_bleus_against_rest(docs: Sequence[np.ndarray]) -> np.ndarray:
    """BLEU-4 of every document against all the others (NLTK's definition, method1)."""
    lengths = np.array([len(x) for x in docs], dtype=np.int64)
    flat = np.concatenate([np.asarray(x).reshape(-1) for x in docs]) if docs else np.zeros(0)
    ids = np.unique(flat, return_inverse=True)[1].reshape(-1).astype(np.int64)
    owner = np.repeat(np.arange(len(docs), dtype=np.int64), lengths)
    log_p = np.zeros(len(docs))
    matches_1 = None
    for n in range(1, BLEU_ORDER + 1):
        num = _clipped_matches(ids, owner, len(docs), n)
        den = np.maximum(1, lengths - n + 1).astype(np.float64)
        if n == 1:
            matches_1 = num
        log_p += np.log(np.where(num > 0, num, BLEU_EPSILON) / den) / BLEU_ORDER
    ref = _closest_other_length(lengths).astype(np.float64)
    c = lengths.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        bp = np.where(c > ref, 1.0, np.where(c == 0, 0.0, np.exp(1.0 - ref / np.maximum(c, 1))))
    return np.where(matches_1 > 0, bp * np.exp(log_p), 0.0)


def self_bleu4(documents: List[np.ndarray]) -> float:
    """Mean BLEU-4 of each document against the rest (NaN for fewer than two documents)."""
    if len(documents) < 2:
        return math.nan
    return float(sentence_bleus_against_rest(documents).mean())


def zipf_exponent(counts: np.ndarray, min_count: int = ZIPF_MIN_COUNT) -> float:
    """s in frequency ~ rank^(-s): minus the least-squares slope of ln(count) on ln(rank),
    ranks 1, 2, ... by decreasing count over every type, fitted over the types seen at least
    ``min_count`` times (NaN with fewer than two such ranks)."""
    c = np.sort(np.asarray(counts, dtype=np.float64))[::-1]
    c = c[c >= min_count]
    if c.size < 2:
        return math.nan
    x = np.log(np.arange(1, c.size + 1, dtype=np.float64))
    y = np.log(c)
    xc = x - x.mean()
    return float(-(xc * (y - y.mean())).sum() / (xc * xc).sum())
