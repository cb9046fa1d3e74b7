"""NGramPool: the n-gram counts of an accumulating corpus, merged corpus by corpus.

Accumulate trains generation t on R + S_0 + ... + S_{t-1}. Recounting that text every
generation costs O(t); the pool keeps its counts (the highest order and the documents'
beginnings, from which everything else follows) and merges each new corpus's counts in,
so a generation costs its own text plus a pass over the tables. ``fit()`` equals
``NGramModel.fit(concatenate(corpora added))`` exactly (same ARPA file).
"""

from __future__ import annotations

import math
from typing import List, Optional, Union

import numpy as np

from .. import _core
from ..data.corpus import Corpus, Vocab
from ..errors import CollapseError
from ..validate import prune_thresholds as check_prune
from ..validate import threads as check_threads
from .model import SMOOTHINGS, NGramModel, check_order, memory_bytes, temp_directory


class NGramPool:
    """Counts of every corpus added, for one order. Vocabularies are merged as
    ``collapse.concatenate`` merges them (the first corpus's, grown)."""

    def __init__(self, order: int = 3, threads: int = 0, memory: Union[int, str, None] = None,
                 temp_dir: Optional[str] = None) -> None:
        self.order = check_order(order)
        self.threads = check_threads("threads", threads)
        self._core = _core.NGramPool(self.order, self.threads, memory_bytes(memory), temp_directory(temp_dir))
        self.vocab: Vocab | None = None

    @property
    def num_documents(self) -> int:
        return int(self._core.documents)

    @property
    def num_tokens(self) -> int:
        return int(self._core.tokens)

    @property
    def num_words(self) -> int:
        """Distinct words occurring in what was added (not <unk>, <s>, </s>)."""
        return int(self._core.num_words)

    @property
    def nbytes(self) -> int:
        """Bytes held by the pool's count tables."""
        return int(self._core.nbytes)

    def add(self, corpus: Corpus) -> None:
        """Count ``corpus`` and merge its counts into the pool (its text is not kept)."""
        if not isinstance(corpus, Corpus):
            raise CollapseError("NGramPool.add needs a collapse.Corpus")
        if corpus.num_documents == 0:
            raise CollapseError("cannot add an empty corpus to an n-gram pool")
        if self.vocab is None:
            vocab = Vocab(corpus.vocab.words[3:])
            ids = corpus.tokens
        else:
            vocab = Vocab(self.vocab.words[3:])
            table = np.fromiter((vocab.add(w) for w in corpus.vocab.words), dtype=np.uint32, count=len(corpus.vocab))
            ids = table[corpus.tokens]
        try:
            self._core.add(ids, corpus.offsets, len(vocab))
        except RuntimeError as e:  # the spill directory could not be written
            raise CollapseError(str(e)) from None
        self.vocab = vocab

    def fit(self, smoothing: str = "mkn", add_k: float = 1.0, prune: Optional[List[int]] = None) -> NGramModel:
        """The model of everything added, as NGramModel.fit on their concatenation (pruned
        with ``prune`` as NGramModel.fit prunes: the merged counts are pruned)."""
        if smoothing not in SMOOTHINGS:
            raise CollapseError(f"unknown smoothing {smoothing!r} (choose from {', '.join(SMOOTHINGS)})")
        if smoothing == "addk" and not (isinstance(add_k, (int, float)) and math.isfinite(add_k) and add_k > 0):
            raise CollapseError(f"add-k needs a finite k > 0, got {add_k!r}")
        thresholds = check_prune("prune", prune, self.order, smoothing)
        if self.vocab is None:
            raise CollapseError("the n-gram pool is empty: add a corpus first")
        return NGramModel(self._core.estimate(self.vocab.words, smoothing, float(add_k), self.threads, thresholds))
