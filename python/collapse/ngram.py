"""NGramModel: the n-gram family of the experiment loop (fit / sample / score)."""

from __future__ import annotations

import os

from . import _core
from .corpus import Vocab
from .errors import CollapseError


class NGramModel:
    """An n-gram model in backoff form, held by the C++ core."""

    def __init__(self, core: "_core.BackoffModel") -> None:
        self._core = core
        self.vocab = Vocab(core.vocab[3:])

    @property
    def order(self) -> int:
        return self._core.order

    @property
    def smoothing(self) -> str:
        return self._core.smoothing

    @classmethod
    def from_arpa(cls, path: str) -> "NGramModel":
        if not os.path.exists(path):
            raise CollapseError(f"no such file: {path}")
        return cls(_core.read_arpa(os.fspath(path)))

    def to_arpa(self, path: str) -> None:
        self._core.write_arpa(os.fspath(path))

    def sample(self, num_sequences: int, seed: int = 0, temperature: float = 1.0, top_k: int = 0,
               top_p: float = 1.0, max_length: int = 4096, threads: int = 0) -> "Corpus":
        """Exact ancestral samples from <s> to </s> (or max_length words) as a Corpus; see
        collapse.sampling.sample_ngram."""
        from .sampling import sample_ngram

        return sample_ngram(self, num_sequences, seed=seed, temperature=temperature, top_k=top_k, top_p=top_p,
                            max_length=max_length, threads=threads)

    def __repr__(self) -> str:
        counts = "/".join(str(c) for c in self._core.num_ngrams())
        return f"NGramModel(order={self.order}, smoothing={self.smoothing!r}, ngrams={counts})"
