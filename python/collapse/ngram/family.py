"""The n-gram family behind the experiment loop's protocol (collapse.experiment.family): fit, sample, save, load.

Models are saved as gzip-compressed ARPA files (deterministic gzip: mtime 0, no file
name), so a run directory is byte-identical between runs of the same config.
"""

from __future__ import annotations

import gzip
import io
import os
import shutil
import tempfile
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from ..data.corpus import Corpus, CorpusSummary
from ..experiment.family import ModelFamily, RunContext, TrainedModel, run_context
from ..files import write_bytes
from ..validate import prune_thresholds
from .model import NGramModel
from .pool import NGramPool
from .sampler import DEFAULT_MAX_LENGTH

MODEL_FILE = "model.arpa.gz"


def deterministic_gzip(data: bytes, level: int = 6) -> bytes:
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=level, mtime=0) as f:
        f.write(data)
    return buf.getvalue()


class NGramTrained(TrainedModel):
    """A fitted NGramModel behind the TrainedModel protocol."""

    def __init__(self, model: NGramModel, threads: int = 1, compression: int = 6) -> None:
        self.model = model
        self.threads = threads
        self.compression = compression

    def sample(self, num_sequences: int, *, seed: int, context: Optional[RunContext] = None,
               threads: int = 0) -> Corpus:
        """threads: a direct caller's shorthand for context.threads (0: the family's)."""
        return self.model.sample(num_sequences, seed=seed, threads=run_context(context, threads=threads).threads
                                 or self.threads)

    def num_parameters(self) -> int:
        """The metrics table's ``params`` for an n-gram model: the number of n-grams it stores
        (every order's rows, each with a probability and a backoff weight), not a count of floats."""
        return int(sum(self.model.num_ngrams()))

    def length_limit(self) -> str:
        """What cuts a sampled document short (for the loop's warning)."""
        return f"the sampler's max_length of {DEFAULT_MAX_LENGTH} words"

    def end_sampling(self) -> None:
        """The loop is done sampling this model: free its sampler (up to ~1.9x the tables)
        before scoring builds its index (~1.3x), so that the two are not held together."""
        self.model.release_samplers()

    def perplexity(self, corpus: Corpus) -> float:
        return self.model.perplexity(corpus, threads=self.threads)

    def document_log_probs(self, corpus: Corpus) -> np.ndarray:
        """Natural-log probability of every document (``</s>`` included)."""
        return np.asarray(self.model.score(corpus, threads=self.threads), dtype=np.float64) * np.log(10.0)

    def save(self, directory: str) -> None:
        os.makedirs(directory, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=directory) as tmp:
            arpa = os.path.join(tmp, "model.arpa")
            self.model.to_arpa(arpa, threads=self.threads)
            with open(arpa, "rb") as f:
                data = f.read()
        write_bytes(os.path.join(directory, MODEL_FILE), deterministic_gzip(data, self.compression))


class NGramFamily(ModelFamily):
    """fit = NGramModel.fit(corpus, order, smoothing, prune); deterministic (the seed is unused).

    Under accumulate the family keeps the pool's counts (NGramPool) from one generation to
    the next and merges in only the new synthetic corpus (fit_accumulated): the same model
    as fit on the concatenation, at the cost of the new text."""

    name = "ngram"
    pools_accumulate = True

    def __init__(self, order: int = 3, smoothing: str = "mkn", threads: int = 1, compression: int = 6,
                 prune: Optional[List[int]] = None) -> None:
        self.order = int(order)
        self.smoothing = smoothing
        # lmplz's --prune, expanded to this order; applied at every fit, the pool's included
        self.prune = prune_thresholds("prune", prune, self.order, smoothing)
        self.threads = int(threads)
        self.compression = int(compression)
        self._pool: Optional[NGramPool] = None
        self._pool_parts = 0

    def fit_accumulated(self, parts: int, part: Callable[[int], Corpus], *, seed: int,
                        context: Optional[RunContext] = None) -> Tuple[NGramTrained, CorpusSummary]:
        del seed, context  # deterministic; the family's threads are [experiment] threads already
        if self._pool is None or self._pool_parts > parts:
            self._pool, self._pool_parts = NGramPool(self.order, threads=self.threads), 0
        while self._pool_parts < parts:
            self._pool.add(part(self._pool_parts))
            self._pool_parts += 1
        model = self._pool.fit(smoothing=self.smoothing, prune=self.prune)
        stats = CorpusSummary(self._pool.num_documents, self._pool.num_tokens, self._pool.num_words)
        return NGramTrained(model, self.threads, self.compression), stats

    def fit(self, corpus: Corpus, *, seed: int, context: Optional[RunContext] = None) -> NGramTrained:
        del seed, context  # n-gram estimation has no randomness; it keeps nothing in a work folder
        model = NGramModel.fit(corpus, order=self.order, smoothing=self.smoothing, threads=self.threads,
                               prune=self.prune)
        return NGramTrained(model, self.threads, self.compression)

    def load(self, directory: str) -> NGramTrained:
        path = os.path.join(directory, MODEL_FILE)
        with tempfile.TemporaryDirectory() as tmp:
            arpa = os.path.join(tmp, "model.arpa")
            with gzip.open(path, "rb") as src, open(arpa, "wb") as dst:
                shutil.copyfileobj(src, dst)
            model = NGramModel.from_arpa(arpa)
        return NGramTrained(model, self.threads, self.compression)

    def describe(self) -> Dict[str, Any]:
        pruned = {"prune": self.prune} if self.prune else {}  # absent when unpruned: old runs' keys unchanged
        return {"family": "ngram", "order": self.order, "smoothing": self.smoothing, **pruned}
