"""Independent pure-Python references for the n-gram tests: naive counting and the
backoff formula read straight off a model's tables."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Dict, List, Sequence, Tuple

BOS, EOS, UNK = 1, 2, 0


def padded(doc: Sequence[int]) -> List[int]:
    return [BOS, *map(int, doc), EOS]


def naive_counts(docs: Sequence[Sequence[int]], order: int):
    """Per order n: {ngram: (raw, adjusted)} as lmplz defines them (see ngram_count.hpp)."""
    raw = [Counter() for _ in range(order + 1)]
    for doc in docs:
        seq = padded(doc)
        for n in range(1, order + 1):
            for s in range(len(seq) - n + 1):
                raw[n][tuple(seq[s:s + n])] += 1
    left = [defaultdict(set) for _ in range(order + 1)]
    for n in range(2, order + 1):
        for g in raw[n]:
            left[n - 1][g[1:]].add(g[0])
    out = []
    for n in range(1, order + 1):
        table = {}
        for g, c in raw[n].items():
            if n == order or g[0] == BOS:
                adj = c
            else:
                adj = len(left[n][g])
            if n == 1 and g == (BOS,):
                adj = 0
            table[g] = (c, adj)
        if n == 1 and (UNK,) not in table:
            table[(UNK,)] = (0, 0)
        out.append(table)
    return out


class BackoffTables:
    """p(w | h) through the ARPA backoff recursion, from NGramModel.table(n)."""

    def __init__(self, model) -> None:
        self.order = model.order
        self.prob: Dict[Tuple[int, ...], float] = {}
        self.backoff: Dict[Tuple[int, ...], float] = {}
        for n in range(1, model.order + 1):
            ids, lp, lb = model.table(n)
            for row, p, b in zip(ids.tolist(), lp.tolist(), lb.tolist()):
                self.prob[tuple(row)] = p
                self.backoff[tuple(row)] = b
        self.vocab_size = len(model.vocab)

    def log10p(self, history: Sequence[int], w: int) -> float:
        h = tuple(history)[-(self.order - 1):] if self.order > 1 else ()
        acc = 0.0
        while True:
            g = h + (w,)
            if g in self.prob:
                return acc + self.prob[g]
            if not h:
                raise KeyError(f"word {w} is not a unigram")
            acc += self.backoff.get(h, 0.0)
            h = h[1:]

    def predictable(self) -> List[int]:
        return [w for w in range(self.vocab_size) if w != BOS]

    def distribution_sum(self, history: Sequence[int]) -> float:
        return sum(10.0 ** self.log10p(history, w) for w in self.predictable())

    def score_document(self, doc: Sequence[int]) -> float:
        hist = [BOS]
        total = 0.0
        for w in [*map(int, doc), EOS]:
            total += self.log10p(hist, w)
            hist.append(w)
        return total
