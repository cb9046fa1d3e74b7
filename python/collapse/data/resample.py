"""Finite-corpus resampling in the C++ core (draws, subsets, shuffles of documents), for the paradigms.

Every function takes and returns Corpus objects and is seeded with Philox streams:
the result depends only on the arguments, never on ``threads``.

- ``sample_documents(corpus, n, seed, replace=True)``: n documents drawn uniformly,
  with replacement (draw i uses stream (seed, i)) or without (the first n of
  ``shuffle(corpus, seed)``); Replace / Fresh draw their real data this way.
- ``subsample(corpus, fraction=..., n=..., seed)``: a subset without replacement, kept in
  corpus order (Accumulate-Subsample).
- ``shuffle(corpus, seed)``: the documents in a uniformly random order.
- ``*_indices`` variants return the document indices (int64 numpy arrays).
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np

from .. import _core
from ..errors import CollapseError
from ..validate import integer, integer_array, seed as check_seed, threads as check_threads
from .corpus import Corpus


def _count(name: str, value: object) -> int:
    return integer(name, value, 0)


def _seed(seed: object) -> int:
    return check_seed("seed", seed)


def _check_corpus(corpus: object) -> Corpus:
    if not isinstance(corpus, Corpus):
        raise CollapseError(f"expected a Corpus, got {type(corpus).__name__}")
    return corpus


def gather(corpus: Corpus, indices: np.ndarray, threads: int = 0) -> Corpus:
    """The documents at ``indices`` (in that order, repeats allowed), same vocab; their
    source texts too when the corpus keeps them."""
    _check_corpus(corpus)
    indices = integer_array("indices", indices, np.int64)
    tokens, offsets = _core.gather_documents(corpus.tokens, corpus.offsets, indices,
                                             threads=check_threads("threads", threads))
    text = None if corpus.source_text is None else corpus.source_text.take(indices)
    return Corpus(tokens, offsets, corpus.vocab, source_text=text)


def sample_indices(num_docs: int, n: int, seed: int, replace: bool = True, threads: int = 0) -> np.ndarray:
    num_docs, n, seed, threads = _count("num_docs", num_docs), _count("n", n), _seed(seed), check_threads("threads", threads)
    if replace:
        if num_docs == 0 and n > 0:
            raise CollapseError("cannot draw documents from an empty corpus")
        return _core.draw_with_replacement(num_docs, n, seed, threads)
    if n > num_docs:
        raise CollapseError(f"cannot draw {n} documents without replacement from {num_docs}")
    return _core.draw_without_replacement(num_docs, n, seed, threads)


def sample_documents(corpus: Corpus, n: int, seed: int, replace: bool = True, threads: int = 0) -> Corpus:
    """n documents drawn uniformly from corpus, with or without replacement."""
    _check_corpus(corpus)
    return gather(corpus, sample_indices(corpus.num_documents, n, seed, replace=replace, threads=threads), threads)


def subsample_indices(num_docs: int, seed: int, fraction: Optional[float] = None, n: Optional[int] = None,
                      threads: int = 0) -> np.ndarray:
    num_docs = _count("num_docs", num_docs)
    if (fraction is None) == (n is None):
        raise CollapseError("give exactly one of fraction and n")
    if fraction is not None:
        try:
            fraction = float(fraction)
        except (TypeError, ValueError):
            raise CollapseError(f"fraction must be a number, got {fraction!r}") from None
        if not (0.0 <= fraction <= 1.0) or math.isnan(fraction):
            raise CollapseError(f"fraction must be in [0, 1], got {fraction}")
        n = int(round(fraction * num_docs))
    n = _count("n", n)
    if n > num_docs:
        raise CollapseError(f"cannot subsample {n} documents from {num_docs}")
    return np.sort(_core.draw_without_replacement(num_docs, n, _seed(seed), check_threads("threads", threads)))


def subsample(corpus: Corpus, fraction: Optional[float] = None, *, n: Optional[int] = None, seed: int,
              threads: int = 0) -> Corpus:
    """A uniformly random subset of documents (round(fraction * documents), or n), without
    replacement, kept in corpus order."""
    _check_corpus(corpus)
    idx = subsample_indices(corpus.num_documents, seed, fraction=fraction, n=n, threads=threads)
    return gather(corpus, idx, threads)


def shuffle_indices(num_docs: int, seed: int, threads: int = 0) -> np.ndarray:
    return _core.random_permutation(_count("num_docs", num_docs), _seed(seed), check_threads("threads", threads))


def shuffle(corpus: Corpus, seed: int, threads: int = 0) -> Corpus:
    """The corpus's documents in a uniformly random order."""
    _check_corpus(corpus)
    return gather(corpus, shuffle_indices(corpus.num_documents, seed, threads), threads)
