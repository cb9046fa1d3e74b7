"""The protocol between the experiment loop and a model family: base classes, the run context, the registration.

The loop (collapse.experiment.loop) never knows which family it trains: it asks the
family's registration (collapse.experiment.registry) what the family needs, and calls the
methods declared here. Corpora crossing this boundary are word-level Corpus objects
(whitespace tokens); a family that needs other units (the transformer's BPE) converts inside.

Every optional hook has a default here (a no-op, or the answer of a family that does not
have the feature), so the loop calls it on any family without asking whether it exists.
This module imports nothing above ``collapse.data``: the families (collapse.ngram.family,
collapse.transformer.family, a family of a user's own) subclass its classes.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Tuple, Union

import numpy as np

from ..data.corpus import Corpus, CorpusSummary
from ..errors import CollapseError

Settings = Dict[str, Any]  # a model table's own keys, validated (what FamilyRegistration.validate returns)


@dataclass(frozen=True)
class RunContext:
    """Where and how the loop runs one fit or one sample: an argument of each call, never
    state the loop sets on a family, because one model (a shared generation 0) is fitted
    in one cell and sampled by several.

    work_dir: this (cell, generation)'s folder for state a killed run continues from
    (training checkpoints, finished sample shards); kept on --resume, removed once the
    generation is committed; None: keep nothing. threads: the experiment's thread count
    (0: the family's own default). rank / world_size: this process among torchrun's ranks
    (0 of 1 without torchrun)."""

    work_dir: Optional[str] = None
    threads: int = 0
    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        """Whether this process writes shared files (rank 0, or the only process)."""
        return self.rank == 0


NO_CONTEXT = RunContext()  # a call made outside the loop: no work folder, default threads, one process


def run_context(context: Optional[RunContext], **shorthand: Any) -> RunContext:
    """``context`` with the keywords a direct caller may give instead (``threads=1``,
    ``work_dir=...``) put in where given (not None / 0)."""
    base = context if context is not None else NO_CONTEXT
    given = {k: v for k, v in shorthand.items() if v}
    return replace(base, **given) if given else base


class TrainedModel:
    """A model one generation trained: the loop samples S_t from it and scores with it.

    Subclasses implement sample, perplexity, document_log_probs and save; the rest are
    optional hooks with defaults."""

    def sample(self, num_sequences: int, *, seed: int, context: Optional[RunContext] = None) -> Corpus:
        """num_sequences documents by ancestral sampling, reproducible from seed (whatever
        context.threads is). A sample may set ``Corpus.truncated`` (documents cut at the
        sampler's length limit)."""
        raise NotImplementedError

    def perplexity(self, corpus: Corpus) -> float:
        """Perplexity of held-out text in the family's own units (n-gram: per word + </s>;
        transformer: per BPE token + end-of-text)."""
        raise NotImplementedError

    def document_log_probs(self, corpus: Corpus) -> Optional[np.ndarray]:
        """Natural-log probability of each document as text (n-gram: its words + </s>;
        transformer: its BPE tokens + end-of-text): the common scale of every family
        (collapse.experiment.scale: bits per word, KL to the true source). None: the model
        cannot score documents (its columns on that scale are NaN)."""
        raise NotImplementedError

    def save(self, directory: str) -> None:
        """Write the model's files into directory (atomically, no pickle)."""
        raise NotImplementedError

    # -- optional hooks ---------------------------------------------------------------
    def score_documents(self, corpus: Corpus) -> Tuple[Optional[np.ndarray], float]:
        """(document_log_probs(corpus), perplexity(corpus)); a family that gets both from
        one pass (the transformer) overrides it."""
        return self.document_log_probs(corpus), float(self.perplexity(corpus))

    def end_sampling(self) -> None:
        """Called once the generation's sample is drawn (the n-gram model frees its sampler
        there, before scoring builds its index)."""

    def length_limit(self) -> str:
        """What cuts a sampled document short, for the loop's warning."""
        return "the sampler's length limit"

    def num_parameters(self) -> Optional[int]:
        """The metrics table's ``params`` (a network's parameters; an n-gram model's stored
        n-grams); None: NaN."""
        return None

    def extra_metrics(self, heldout: Corpus) -> Dict[str, float]:
        """Columns only this family reports (the transformer's ``paper_ppl``)."""
        return {}

    @staticmethod
    def adapt(model: Any) -> "TrainedModel":
        """``model`` itself when it subclasses TrainedModel; otherwise a view of an object
        written against the duck-typed protocol of earlier versions (its methods where it
        has them, these defaults where it has not), so the metrics call every hook alike."""
        return model if isinstance(model, TrainedModel) else _DuckTypedModel(model)


class _DuckTypedModel(TrainedModel):
    """TrainedModel.adapt's view: the one place that asks an object which methods it has."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def _own(self, name: str) -> Any:
        return getattr(self.inner, name, None)

    def sample(self, num_sequences: int, *, seed: int, context: Optional[RunContext] = None) -> Corpus:
        return self.inner.sample(num_sequences, seed=seed, context=context)

    def perplexity(self, corpus: Corpus) -> float:
        return self.inner.perplexity(corpus)

    def document_log_probs(self, corpus: Corpus) -> Optional[np.ndarray]:
        own = self._own("document_log_probs")
        return own(corpus) if own is not None else None

    def save(self, directory: str) -> None:
        self.inner.save(directory)

    def end_sampling(self) -> None:
        own = self._own("end_sampling")
        if own is not None:
            own()

    def length_limit(self) -> str:
        own = self._own("length_limit")
        return own() if own is not None else super().length_limit()

    def num_parameters(self) -> Optional[int]:
        own = self._own("num_parameters")
        return own() if own is not None else None

    def extra_metrics(self, heldout: Corpus) -> Dict[str, float]:
        own = self._own("extra_metrics")
        return own(heldout) if own is not None else {}


class ModelFamily:
    """What trains a model from a corpus: one instance per cell (FamilyRegistration.factory).

    Subclasses set ``name`` and implement fit and load; the rest are optional hooks with
    defaults. ``loads_exactly``: load(save(m)) scores and samples bit for bit as m (the
    transformer's safetensors), so a cell whose group already committed generation 0 reads
    M_0 back instead of training it again; otherwise --resume refits from seeds and reads
    only the synthetic corpora. ``pools_accumulate``: the family implements fit_accumulated."""

    name: str = ""
    loads_exactly: bool = False
    pools_accumulate: bool = False
    # True: generation t > 0 continues training M_{t-1} (the hf family's init = "previous"):
    # the loop passes it as fit(..., previous=M_{t-1}), keeps every generation's model saved
    # (output.save_models is forced) and, on resume, loads M_{t-1} from its generation folder
    # (the family must also load exactly)
    continues_previous: bool = False

    def fit(self, corpus: Corpus, *, seed: int, context: Optional[RunContext] = None) -> TrainedModel:
        """Train a fresh model on corpus (from scratch: nothing carries over). A family that
        checkpoints keeps its training state in context.work_dir and continues from what it
        finds there."""
        raise NotImplementedError

    def load(self, directory: str) -> TrainedModel:
        """Read back what TrainedModel.save wrote: a saved generation's model, for analysis
        of a run directory (and M_0, for a family that ``loads_exactly``)."""
        raise NotImplementedError

    # -- optional hooks ---------------------------------------------------------------
    def describe(self) -> Dict[str, Any]:
        """The family's settings, for the run's manifest."""
        return {"family": self.name}

    def prepare(self, real: Corpus) -> None:
        """Called once per cell before generation 0, and again on resume: fix what the
        family derives from the real corpus (the transformer's BPE), so a resumed run
        derives exactly what the uninterrupted one did."""

    def fit_accumulated(self, parts: int, part: Callable[[int], Corpus], *, seed: int,
                        context: Optional[RunContext] = None) -> Tuple[TrainedModel, CorpusSummary]:
        """Only for ``pools_accumulate``: the model fit(concatenate([part(0), ...,
        part(parts - 1)])) would train (exactly), keeping accumulate's pool between
        generations (the n-gram family keeps merged counts), with part(0) = R and part(k + 1)
        = S_k; part(k) is only called for parts the family has not taken in yet (all of
        them after a resume)."""
        raise CollapseError(f"the {self.name or type(self).__name__} family keeps no accumulate pool")

    # True for a family that reads each document's text as loaded (Corpus.source_text /
    # document_texts: a pretrained tokenizer's family); its FamilyRegistration says the same,
    # and the loop then loads real data with keep_text (sources.wants_source_text)
    uses_source_text: bool = False


# -- registration ---------------------------------------------------------------------

class DeviceUse(NamedTuple):
    """Where a family's cells run (collapse.experiment.ranks): on CUDA or not, the GPUs
    visible, the device setting ("auto", "cpu", "cuda:N") and whether cells may share a GPU."""
    uses_cuda: bool
    gpus: int
    device: str
    share: bool


@dataclass(frozen=True)
class Resources:
    """What the loop's scheduling asks of a family (collapse.experiment.loop, ranks).

    torchrun: under torchrun the ranks train and sample each cell together (DDP); a study
    with a family without it is refused there. cheap_fit: fitting M_0 again costs less than
    an idle worker and gives the same model, so a generation-0 group may be halved to give
    every worker work; a family without it has its groups started first and split only
    after generation 0 (each cell's later generations a task of their own). device: the
    family's DeviceUse from its settings (None: CPU only; the loop then ignores GPUs)."""
    torchrun: bool = False
    cheap_fit: bool = False
    device: Optional[Callable[[Settings], DeviceUse]] = None


@dataclass(frozen=True)
class FamilyOptions:
    """What a family's factory gets besides its settings: the cell's sweep value (an n-gram
    model's order; None for a family without a sweep), [experiment] threads, [output]
    compression and [experiment] progress."""
    order: Optional[int] = None
    threads: int = 1
    compression: int = 6
    progress: bool = True


def _no_sweep(settings: Settings) -> List[Optional[int]]:
    return [None]


@dataclass(frozen=True)
class FamilyRegistration:
    """A model family as the experiment knows it (collapse.register_family).

    validate(table, base_dir) -> settings: reads the [[model]] table (a
    collapse.experiment.tables.Table, its ``family`` and ``name`` already taken) with the
    config's error style ("model[1].x: ..."), resolves file paths against base_dir (the
    config's folder), and returns the settings (a dict of TOML values); keys it did not
    read are refused afterwards ("unknown key", with a "did you mean").
    factory(settings, options) -> ModelFamily: the family of one cell.
    describe(settings) -> dict: the model's entry in manifest.json (default: the settings).
    to_toml(settings) -> dict: the model's keys in the run's config.toml (default: the
    settings), which must parse back to the same settings.
    sweep(settings) -> [order, ...]: the values of the cells' ``order`` axis ([None]: none).
    resources: Resources. downstream: predict(job) -> the predicted classes of a [downstream]
    task's test texts (collapse.experiment.downstream.stage.DownstreamJob); None: a config
    with [downstream] is refused for this family."""
    validate: Callable[[Any, str], Settings]
    factory: Callable[[Settings, FamilyOptions], ModelFamily]
    describe: Callable[[Settings], Dict[str, Any]] = dict
    to_toml: Callable[[Settings], Dict[str, Any]] = dict
    sweep: Callable[[Settings], List[Optional[int]]] = _no_sweep
    resources: Resources = field(default_factory=Resources)
    downstream: Optional[Callable[[Any], np.ndarray]] = None
    # the real data keeps each document's source text for this family (its ModelFamily
    # class says the same: uses_source_text; collapse.experiment.sources.wants_source_text)
    uses_source_text: bool = False


RegistrationSource = Union[FamilyRegistration, Callable[[], FamilyRegistration]]
