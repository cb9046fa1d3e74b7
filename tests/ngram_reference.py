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


def read_arpa_text(path) -> Tuple[int, Dict[Tuple[str, ...], Tuple[float, float]]]:
    """(order, {words: (log10 prob, log10 backoff)}) straight from an ARPA file's lines,
    nothing filled in: the reference for models that lack prefixes or suffixes."""
    grams: Dict[Tuple[str, ...], Tuple[float, float]] = {}
    order, section = 0, 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line.startswith("ngram ") and "=" in line:
                order = max(order, int(line[6:].split("=")[0]))
            elif line.startswith("\\") and line.endswith("-grams:"):
                section = int(line[1:-len("-grams:")])
            elif line == "\\end\\":
                section = 0
            elif section and line:
                fields = line.split()
                words = tuple(fields[1:1 + section])
                backoff = float(fields[1 + section]) if len(fields) > 1 + section else 0.0
                grams[words] = (float(fields[0]), backoff)
    return order, grams


def arpa_log10p(order: int, grams: Dict[Tuple[str, ...], Tuple[float, float]], history: Sequence[str], w: str) -> float:
    """log10 p(w | history) by the ARPA recursion: the stored n-gram's prob, else the
    context's backoff (0 when the context is not stored) plus p(w | shorter history)."""
    h = tuple(history)[-(order - 1):] if order > 1 else ()
    acc = 0.0
    while True:
        if h + (w,) in grams:
            return acc + grams[h + (w,)][0]
        if not h:
            return acc + grams[("<unk>",)][0]
        acc += grams.get(h, (0.0, 0.0))[1]
        h = h[1:]


def arpa_score_sentence(order: int, grams, words: Sequence[str]) -> float:
    """log10 p(<s> words </s>) by arpa_log10p, words outside the unigrams scored as <unk>."""
    hist = ["<s>"]
    total = 0.0
    for w in [*words, "</s>"]:
        w = w if (w,) in grams else "<unk>"
        total += arpa_log10p(order, grams, hist, w)
        hist.append(w)
    return total
