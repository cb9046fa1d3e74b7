"""Fuzz target: ARPA file -> NGramModel.from_arpa -> score -> perplexity -> sample -> to_arpa -> read back."""

from __future__ import annotations

import harness
from harness import NGramModel, collapse

TEXTS = ["a b c", "the cat sat", "", "<unk> </s> <s> x"]


def test_one_input(data: bytes) -> None:
    model = NGramModel.from_arpa(harness.write("in.arpa", data))
    words = [w for w in model.vocab.words[3:40]]
    texts = TEXTS + [" ".join(words), " ".join(reversed(words))]
    corpus = collapse.Corpus.from_texts(texts, vocab=model.vocab, grow=False)
    harness.check_model(model, corpus)


if __name__ == "__main__":
    harness.run(test_one_input)
