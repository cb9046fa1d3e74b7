"""The protocol between the experiment loop and a model family (fit, sample, perplexity, save, load).

The loop (collapse.experiment.loop) never knows whether it trains an n-gram model or a
transformer. Corpora crossing this boundary are word-level Corpus objects (whitespace
tokens); a family that needs other units (the transformer's BPE) converts inside.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Protocol, Tuple, runtime_checkable

import numpy as np

from ..data.corpus import Corpus, CorpusSummary


@runtime_checkable
class TrainedModel(Protocol):
    def sample(self, num_sequences: int, *, seed: int, threads: int = 0) -> Corpus:
        """num_sequences documents by ancestral sampling, reproducible from seed."""

    def perplexity(self, corpus: Corpus) -> float:
        """Perplexity of held-out text (the family's own units; n-gram: per word + </s>)."""

    def document_log_probs(self, corpus: Corpus) -> "np.ndarray":
        """Natural-log probability of each document as text (n-gram: its words + </s>;
        transformer: its BPE tokens + end-of-text): the common scale of every family
        (collapse.experiment.scale: bits per word, KL to the true source)."""

    def save(self, directory: str) -> None:
        """Write the model's files into directory (atomically, no pickle)."""

    # Optional: num_parameters() -> int, the metrics table's ``params`` (a network's parameters;
    # an n-gram model's stored n-grams). Optional: end_sampling() -> None, called once the generation's sample is drawn (the
    # n-gram family frees its sampler there, before scoring).


@runtime_checkable
class ModelFamily(Protocol):
    name: str

    def fit(self, corpus: Corpus, *, seed: int) -> TrainedModel:
        """Train a fresh model on corpus (from scratch: nothing carries over). A family with
        ``checkpoints = True`` (the transformer's) also takes ``work_dir``: the folder of this
        (cell, generation)'s checkpoints, which the model it returns samples into (and a
        model with ``in_work_dir(directory)`` gives a view of itself that samples into
        another: a generation-0 model shared by the cells of its group)."""

    def load(self, directory: str) -> TrainedModel:
        """Read back what TrainedModel.save wrote: a saved generation's model, for analysis of a
        run directory. A resumed cell refits from its seeds, and only the synthetic corpora
        are read back (tests check the round trip), except that a family with
        ``loads_exactly = True`` (load(save(m)) scores and samples bit for bit as m: the
        transformer's) has the generation-0 model read back from a committed gen_0000
        instead of trained again (a filter's reference, a cell added to a grown study)."""

    def describe(self) -> Dict[str, Any]:
        """The family's settings, for the run's manifest."""

    # Optional class attribute: uses_source_text = True for a family that reads each
    # document's text as loaded (Corpus.source_text / document_texts: a pretrained
    # tokenizer's family); the loop then loads real data with keep_text
    # (collapse.experiment.sources.wants_source_text). Absent: False (words only).


@runtime_checkable
class AccumulatingFamily(Protocol):
    """Optional: a family that keeps accumulate's pool between generations (the n-gram
    family keeps its counts), so generation t costs its new text, not all of D_t."""

    def fit_accumulated(self, parts: int, part: Callable[[int], Corpus], *,
                        seed: int) -> Tuple[TrainedModel, CorpusSummary]:
        """The model fit(concatenate([part(0), ..., part(parts - 1)])) would train (exactly),
        with part(0) = R and part(k + 1) = S_k; part(k) is only called for parts the family
        has not taken in yet (all of them after a resume)."""
