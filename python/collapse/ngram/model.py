"""NGramModel: an n-gram model in backoff form held by the C++ core (fit, score, ARPA in and out, sample).

Estimation and scoring run in the C++ core (``collapse._core``); the model itself is a
``_core.BackoffModel`` held as ``self._core``. See docs/ngram.md for the definitions.
"""

from __future__ import annotations

import math
import os
from typing import Dict, List, Optional, Tuple, Union

import numpy as np

from .. import _core
from ..data.corpus import Corpus, Vocab
from ..errors import CollapseError
from ..files import atomic_path
from ..validate import prune_thresholds as check_prune
from ..validate import threads as check_threads
from .sampler import release_samplers, sample_ngram

SMOOTHINGS = ("mkn", "kn", "addk", "mle")
MAX_ORDER: int = int(_core.MAX_NGRAM_ORDER)
_SIZE_SUFFIXES = {"": 1, "B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def check_order(order) -> int:  # noqa: ANN001
    """``order`` as an int in [1, MAX_ORDER], or CollapseError (for fit and NGramPool)."""
    if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or not 1 <= order <= MAX_ORDER:
        raise CollapseError(f"n-gram order must be an integer between 1 and {MAX_ORDER}, got {order!r}")
    return int(order)


def memory_bytes(memory: Union[int, str, None]) -> int:
    """Counting's memory budget in bytes from an int (bytes) or a string as lmplz's -S takes
    it: ``"512M"``, ``"2G"``, ``"25%"`` (of physical RAM); None or 0: the default (RAM / 4)."""
    if memory is None:
        return 0
    if isinstance(memory, bool):
        raise CollapseError(f"memory must be a size such as 2G or 25%, got {memory!r}")
    if isinstance(memory, (int, np.integer)):
        if memory < 0:
            raise CollapseError(f"memory must be positive, got {memory}")
        return int(memory)
    text = str(memory).strip().upper()
    try:
        if text.endswith("%"):
            fraction = float(text[:-1]) / 100.0
            if not 0.0 < fraction <= 1.0:
                raise ValueError
            return max(1, int(fraction * os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")))
        suffix = text[-1] if text and text[-1] in _SIZE_SUFFIXES else ""
        value = float(text[:len(text) - len(suffix)])
        if not (math.isfinite(value) and value > 0):
            raise ValueError
        return max(1, int(value * _SIZE_SUFFIXES[suffix]))
    except ValueError:
        raise CollapseError(f"memory must be a size such as 2G, 512M or 25%, got {memory!r}") from None


def temp_directory(temp_dir: Optional[str]) -> str:
    """Where counting spills sorted runs ('' for $TMPDIR or /tmp); must be an existing directory."""
    if temp_dir is None or temp_dir == "":
        return ""
    path = os.fspath(temp_dir)
    if not os.path.isdir(path):
        raise CollapseError(f"temp_dir is not a directory: {path}")
    return path


def perplexity_from_log10(total_log10: float, predicted: int) -> float:
    """10^(-total / predicted); inf where that is past the largest float (a file may hold
    log10 probabilities like -1e11: the perplexity is then as good as infinite)."""
    try:
        return float(10.0 ** (-total_log10 / predicted))
    except OverflowError:
        return math.inf

class NGramModel:
    """An n-gram model in backoff form, held by the C++ core."""

    def __init__(self, core: "_core.BackoffModel") -> None:
        self._core = core
        self.vocab = Vocab(core.vocab[3:])
        self._index: Optional["_core.NGramIndex"] = None

    @property
    def order(self) -> int:
        return self._core.order

    @property
    def smoothing(self) -> str:
        return self._core.smoothing

    @property
    def discount_policy(self) -> List[str]:
        """Per order, the discounting actually used ("chen-goodman", "kn", "fallback"); empty
        for MLE, add-k and models read from ARPA."""
        return list(self._core.discount_policy)

    @property
    def discounts(self) -> List[Tuple[float, ...]]:
        """Per order, (D1, D2, D3+) for Kneser-Ney models."""
        return [tuple(d) for d in self._core.discounts]

    # -- estimation --------------------------------------------------------------------
    @classmethod
    def fit(cls, corpus: Corpus, order: int = 3, smoothing: str = "mkn", add_k: float = 1.0,
            threads: int = 0, memory: Union[int, str, None] = None,
            temp_dir: Optional[str] = None, prune: Optional[List[int]] = None) -> "NGramModel":
        """Estimate from ``corpus``: every document is ``<s> w1 .. wk </s>`` as in lmplz.

        smoothing: ``mkn`` (interpolated modified Kneser-Ney, lmplz's model), ``kn`` (one
        discount per order), ``addk`` (add-``add_k``, in exact backoff form) or ``mle``.
        threads: 0 for all cores. memory: counting's budget for its sort buffers and sorted
        runs (bytes, or ``"2G"``, ``"25%"``; default a quarter of RAM): past it, sorted runs
        go to a temporary directory under ``temp_dir`` (default $TMPDIR or /tmp), removed
        afterwards, and are merged. The model is the same whatever the budget.
        prune: lmplz's ``--prune`` (Kneser-Ney only): thresholds per order, non-decreasing,
        the last repeated; n-grams whose count is at most their order's threshold are
        removed, and the ARPA file equals ``lmplz --prune`` 's (docs/ngram.md, Pruning).
        """
        if not isinstance(corpus, Corpus):
            raise CollapseError("fit needs a collapse.Corpus")
        if smoothing not in SMOOTHINGS:
            raise CollapseError(f"unknown smoothing {smoothing!r} (choose from {', '.join(SMOOTHINGS)})")
        order = check_order(order)
        if smoothing == "addk" and not (isinstance(add_k, (int, float)) and math.isfinite(add_k) and add_k > 0):
            raise CollapseError(f"add-k needs a finite k > 0, got {add_k!r}")
        if corpus.num_documents == 0:
            raise CollapseError("cannot fit an n-gram model on an empty corpus")
        thresholds = check_prune("prune", prune, order, smoothing)
        budget, spill_dir = memory_bytes(memory), temp_directory(temp_dir)
        try:
            core = _core.fit_ngram(corpus.tokens, corpus.offsets, corpus.vocab.words, int(order), smoothing,
                                   float(add_k), check_threads("threads", threads), budget, spill_dir,
                                   thresholds)
        except RuntimeError as e:  # the spill directory could not be written (disk full, ...)
            raise CollapseError(str(e)) from None
        return cls(core)

    # -- scoring -----------------------------------------------------------------------
    def _model_ids(self, corpus: Corpus) -> np.ndarray:
        if corpus.vocab is self.vocab or corpus.vocab == self.vocab:
            return corpus.tokens
        table = corpus.vocab.map_to(self.vocab)
        return table[corpus.tokens]

    def _scorer(self, threads: int = 1) -> "_core.NGramIndex":
        """The scoring index, built on first use (on ``threads`` threads) and kept."""
        if self._index is None:
            self._index = _core.NGramIndex(self._core, threads)
        return self._index

    def release_samplers(self) -> None:
        """Drop the cached samplers (each about 2x the tables; collapse.ngram.sampler), e.g.
        before scoring builds its index, so that the two are not held together."""
        release_samplers(self)

    def score(self, corpus: Corpus, threads: int = 0) -> np.ndarray:
        """log10 probability of each document (float64), ``</s>`` included, as
        ``kenlm.Model.score(line, bos=True, eos=True)``; unknown words scored as ``<unk>``."""
        return self.evaluate(corpus, threads=threads)["log10_probs"]

    log10_probs = score

    def evaluate(self, corpus: Corpus, threads: int = 0) -> Dict[str, object]:
        """Per-document log10 probs and the corpus totals: perplexity, log10_prob, tokens
        (words, ``</s>`` excluded), sequences, oov."""
        if not isinstance(corpus, Corpus):
            raise CollapseError("scoring needs a collapse.Corpus")
        ids = self._model_ids(corpus)
        threads = check_threads("threads", threads)
        per_doc, tokens, oov = self._scorer(threads).score(ids, corpus.offsets, threads)
        total = float(per_doc.sum())
        sequences = corpus.num_documents
        predicted = tokens + sequences
        ppl = perplexity_from_log10(total, predicted) if predicted else float("nan")
        return {"perplexity": ppl, "log10_prob": total, "tokens": int(tokens), "sequences": int(sequences),
                "oov": int(oov), "log10_probs": per_doc}

    def perplexity(self, corpus: Corpus, threads: int = 0) -> float:
        """10^(-sum log10 p / (words + sequences)), ``</s>`` counted (kenlm's definition)."""
        if corpus.num_documents == 0:
            raise CollapseError("cannot compute perplexity of an empty corpus")
        return float(self.evaluate(corpus, threads=threads)["perplexity"])

    # -- tables and files ----------------------------------------------------------------
    def table(self, n: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(ids[rows, n] uint32, log10_prob float32, log10_backoff float32) of order n."""
        return self._core.table(n)

    def num_ngrams(self) -> List[int]:
        return list(self._core.num_ngrams())

    @classmethod
    def from_arpa(cls, path: str) -> "NGramModel":
        if not os.path.exists(path):
            raise CollapseError(f"no such file: {path}")
        if os.path.isdir(path):
            raise CollapseError(f"{path} is a directory, not an ARPA file")
        core = _core.read_arpa(os.fspath(path))
        try:
            return cls(core)
        except UnicodeDecodeError:
            raise CollapseError(f"{path}: an n-gram word is not valid UTF-8") from None

    def to_arpa(self, path: str, threads: int = 0) -> None:
        """Write the model as an ARPA file (atomically: collapse.files); lines are formatted
        on ``threads`` threads (0: all cores), the file is the same for any count."""
        threads = check_threads("threads", threads)
        with atomic_path(os.fspath(path)) as tmp:
            self._core.write_arpa(tmp, threads)

    def sample(self, num_sequences: int, seed: int = 0, temperature: float = 1.0, top_k: int = 0,
               top_p: float = 1.0, max_length: int = 4096, threads: int = 0) -> "Corpus":
        """Exact ancestral samples from <s> to </s> (or max_length words) as a Corpus; see
        collapse.ngram.sampler.sample_ngram."""
        return sample_ngram(self, num_sequences, seed=seed, temperature=temperature, top_k=top_k, top_p=top_p,
                            max_length=max_length, threads=threads)

    def __repr__(self) -> str:
        counts = "/".join(str(c) for c in self._core.num_ngrams())
        return f"NGramModel(order={self.order}, smoothing={self.smoothing!r}, ngrams={counts})"
