"""The transformer family of the experiment loop (protocol: collapse.experiment.family).

``TransformerFamily.from_config(table)`` takes the [model] table of a run's config:

    family            "transformer" (ignored here: the registry finds the family by it)
    preset            "tinystories-33m" (default) | "tinystories-1m" | "custom"
    hidden_size, num_layers, num_heads, window_size, max_position_embeddings,
    intermediate_size, attention_layers, activation_function, layer_norm_epsilon,
    embed_dropout, attention_dropout, resid_dropout
                      override the preset (vocab_size always comes from the tokenizer)
    tokenizer         path to a local tokenizer.json (e.g. GPT-Neo's); else a byte-level
                      BPE is trained once, on the texts of ``tokenizer_corpus`` (a file,
                      read with ``tokenizer_format``) or else on the first corpus given to
                      fit() (generation 0: the real data)
    bpe_vocab_size    8192
    eot_token         "<|endoftext|>"
    context_length, epochs, batch_size, micro_batch_size, lr, weight_decay, betas,
    packing, grad_clip, compile, precision, deterministic
                      training (train.TrainConfig; the paper's recipe by default);
                      precision ("auto" | "fp32" | "bf16" | "fp16") also applies to
                      sampling and scoring
    checkpoint_steps, checkpoint_minutes
                      training saves its state every checkpoint_steps optimizer steps, or
                      (0, the default) every checkpoint_minutes (10) of training, into the
                      work directory the loop gives fit() (work_dir)
    sample_shard_size 16384: sequences per saved shard of samples
    share_device      false: a transformer cell never shares a GPU with another (the loop
                      runs at most one local worker per GPU); true allows it
    temperature, top_k, top_p, max_new_tokens, sample_batch_size
                      sampling (generate.SamplingConfig; pure sampling, 600 tokens)
    perplexity_stride 512 (the sliding windows: documents longer than context_length, and
                      paper_perplexity, whose window is the model's positions)
    progress          true (default): progress of BPE training, training and sampling
                      (collapse.transformer.progress); false: silent
    paper_perplexity  false (default); "per-story" (or true) | "joined": the loop also
                      reports ``paper_ppl``, the paper's evaluate_ppl.py number on the
                      held-out stories: its current version scores each story on its
                      own, token-weighted; its older one joined the stories by blank lines
                      and averaged the windows' means
    device            "auto" (CUDA if available) | "cpu" | "cuda" | "cuda:N"
    threads           torch CPU threads for fit (0: torch's default)

The loop passes word-level Corpus objects. fit() trains on each document's text (words
joined by single spaces) followed by end-of-text; sample() decodes the generated BPE
tokens and splits the text on whitespace into a new word-level Corpus; perplexity() is
per BPE token (end-of-text included), story by story; document_log_probs() gives each
story's natural-log probability as text (the loop's common, per-word scale);
paper_perplexity() is the paper's own number (evaluate_ppl.py).

CausalLMFamily holds what every causal-LM family shares (these settings, the BPE, the
training rows and the call of train.train_lm); the hf family (collapse.hf) is its other
subclass, and its model a TransformerModel over another backend (transformer.backend).
"""

from __future__ import annotations

import copy
import json
import os
from contextlib import contextmanager
from dataclasses import asdict, fields
from typing import Any, Callable, Dict, Iterator, List, Optional, Union

import numpy as np
import torch

from ..data.corpus import FORMATS, Corpus, Vocab, iter_documents, whitespace_tokenize
from ..errors import CollapseError
from ..experiment.family import ModelFamily, RunContext, TrainedModel, run_context
from ..files import write_json
from ..validate import did_you_mean, threads as check_threads
from .backend import CausalLM, GPTNeoLM, as_lm
from .checkpoint import CheckpointPolicy, load_shard, save_shard, shard_path
from .distributed import launched, on_main
from .generate import SamplingConfig, generate_distributed
from .model import GPTNeo, GPTNeoConfig
from .score import PAPER_PERPLEXITY_MODES, document_log_probs, paper_perplexity, paper_perplexity_per_story
from .tokenizer import END_OF_TEXT, TextTokenizer
from .train import TrainConfig, TrainStats, dist_from_env, make_rows, resolve_device, train_lm

PRESETS = {
    "tinystories-33m": GPTNeoConfig.tinystories_33m,
    "tinystories-1m": GPTNeoConfig.tinystories_1m,
    "custom": GPTNeoConfig,
}
MODEL_KEYS = ("hidden_size", "num_layers", "num_heads", "window_size", "max_position_embeddings",
              "intermediate_size", "attention_layers", "activation_function", "layer_norm_epsilon",
              "embed_dropout", "attention_dropout", "resid_dropout", "initializer_range")
TRAIN_KEYS = tuple(f.name for f in fields(TrainConfig) if f.name not in ("device", "log_every", "progress"))
SAMPLING_KEYS = ("temperature", "top_k", "top_p", "max_new_tokens")
# the settings every causal-LM family reads the same way (CausalLMFamily.read_common_settings)
COMMON_KEYS = ("family", "name", "tokenizer", "bpe_vocab_size", "eot_token", "sample_batch_size",
               "perplexity_stride", "device", "threads", "log_every", "progress", "paper_perplexity",
               "checkpoint_steps", "checkpoint_minutes", "sample_shard_size", "share_device")
OTHER_KEYS = COMMON_KEYS + ("preset", "tokenizer_corpus", "tokenizer_format")
SETTINGS_FILE = "collapse_transformer.json"


@contextmanager
def _threads(n: int) -> Iterator[None]:
    if not n or n < 1:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(old)


def paper_perplexity_mode(value: Any) -> str:
    """The paper_perplexity setting as "" (off), "per-story" or "joined"; true means the
    paper's current version, "per-story"."""
    if value is False:
        return ""
    if value is True:
        return "per-story"
    if value not in PAPER_PERPLEXITY_MODES:
        raise CollapseError(f"transformer: paper_perplexity must be false, true, "
                            f"{' or '.join(repr(m) for m in PAPER_PERPLEXITY_MODES)}, not {value!r}")
    return str(value)


class _FamilyOrInstanceMethod:
    """``load`` works on the class (TransformerFamily.load(dir): settings read from the
    folder) and on an instance (family.load(dir), as the loop's protocol calls it)."""

    def __init__(self, func: Any) -> None:
        self.func = func

    def __get__(self, obj: Any, cls: Any) -> Any:
        def bound(directory: str) -> "TransformerModel":
            return self.func(obj, cls, directory)
        bound.__doc__ = self.func.__doc__
        return bound


def read_saved_settings(directory: str, name: str, family: str) -> Dict[str, Any]:
    """The settings JSON ``name`` that a saved model of ``family`` keeps in directory."""
    path = os.path.join(directory, name)
    if not os.path.isfile(path):
        raise CollapseError(f"{directory}: no {name} (not a saved {family} model)")
    with open(path, encoding="utf-8") as f:
        return json.load(f)


class CausalLMFamily(ModelFamily):
    """What the causal-LM families (GPT-Neo's ``transformer``, ``hf``) share: the training,
    sampling, scoring and checkpoint settings, read and checked once; the BPE trained on
    the real texts; the checkpoint folder of a fit."""

    name = "causal-lm"
    loads_exactly = True  # load(save(m)) scores and samples exactly as m (safetensors weights, bit for bit)
    # It reads words re-joined with single spaces, not the source text (docs/experiment.md,
    # "Source text"); a family that sets this True gets real data and samples with their text.
    uses_source_text = False
    _tokenizer: Optional[TextTokenizer] = None

    @classmethod
    def checked(cls, table: Dict[str, Any], known: "set[str]", check_only: bool) -> Any:
        """cls(table) when every key is ``known``; an unknown key or a value of the wrong
        type is one line naming it ("transformer: unknown model setting 'x' (did you mean ...)")."""
        unknown = sorted(set(table) - known)
        if unknown:
            raise CollapseError(f"{cls.name}: unknown model setting {unknown[0]!r}"
                                f"{did_you_mean(unknown[0], sorted(known))}")
        try:
            return cls(table, check_only=check_only)
        except (TypeError, ValueError) as e:  # a value of the wrong type inside a dataclass check
            if isinstance(e, CollapseError):
                raise
            raise CollapseError(f"{cls.name}: bad model setting ({e})") from None

    def read_common_settings(self, s: Dict[str, Any]) -> None:
        """The COMMON_KEYS, TRAIN_KEYS and SAMPLING_KEYS of the table ``s``."""
        self.progress = s.get("progress", True)
        if not isinstance(self.progress, bool):
            raise CollapseError(f"{self.name}: progress must be true or false")
        self.paper_perplexity = paper_perplexity_mode(s.get("paper_perplexity", False))
        self.train_config = TrainConfig(**{k: s[k] for k in TRAIN_KEYS if k in s},
                                        device=str(s.get("device", "auto")), log_every=int(s.get("log_every", 0)),
                                        progress=self.progress)
        self.sampling = SamplingConfig(**{k: s[k] for k in SAMPLING_KEYS if k in s}, progress=self.progress)
        self.sample_batch_size = int(s.get("sample_batch_size", 0))
        self.perplexity_stride = int(s.get("perplexity_stride", 512))
        self.bpe_vocab_size = int(s.get("bpe_vocab_size", 8192))
        self.eot_token = str(s.get("eot_token", END_OF_TEXT))
        self.threads = check_threads(f"{self.name}: threads", s.get("threads", 0))
        if self.perplexity_stride < 1:
            raise CollapseError(f"{self.name}: perplexity_stride must be positive")
        self.checkpoint_steps = s.get("checkpoint_steps", 0)
        self.checkpoint_minutes = float(s.get("checkpoint_minutes", 10.0))
        CheckpointPolicy("", self.checkpoint_steps, 60.0 * self.checkpoint_minutes)  # validate now
        self.sample_shard_size = s.get("sample_shard_size", 16384)
        if not isinstance(self.sample_shard_size, int) or self.sample_shard_size < 1:
            raise CollapseError(f"{self.name}: sample_shard_size must be a positive integer")

    def checkpoint_policy(self, seed: int, work_dir: Optional[str]) -> Optional[CheckpointPolicy]:
        if work_dir is None:
            return None
        return CheckpointPolicy(os.path.join(work_dir, f"fit_{int(seed) & 0xFFFFFFFFFFFFFFFF:016x}"),
                                self.checkpoint_steps, 60.0 * self.checkpoint_minutes)

    def corpus_texts(self, corpus: Corpus) -> Iterator[str]:
        """The text the family trains on, prompts with and scores: each document's words
        joined by single spaces (the GPT-Neo family's; the hf family: the source text)."""
        return corpus.texts()

    def _train_bpe(self, corpus: Corpus) -> TextTokenizer:
        """A BPE of the corpus's texts; under torchrun trained once, by rank 0, and handed
        to the other ranks (its JSON)."""
        if not launched():
            return TextTokenizer.train_bpe(self.corpus_texts(corpus), self.bpe_vocab_size, progress=self.progress,
                                           total=corpus.num_documents)
        text = on_main(lambda: TextTokenizer.train_bpe(self.corpus_texts(corpus), self.bpe_vocab_size,
                                                       progress=self.progress, total=corpus.num_documents).to_json())
        return TextTokenizer.from_json(text)

    def tokenizer_for(self, corpus: Corpus) -> TextTokenizer:
        # without prepare() or a configured tokenizer, the first corpus fitted fixes it
        # (generation 0: the real data); every later generation keeps it, so per-token
        # perplexities stay comparable across generations
        if self._tokenizer is None:
            self._tokenizer = self._train_bpe(corpus)
        return self._tokenizer

    def train_rows(self, corpus: Corpus) -> "tuple[TextTokenizer, np.ndarray]":
        """The tokenizer and the training rows (train.make_rows) of corpus's texts."""
        if corpus.num_documents == 0:
            raise CollapseError(f"{self.name}: cannot train on an empty corpus")
        tok = self.tokenizer_for(corpus)
        flat, offsets = tok.encode_documents(self.corpus_texts(corpus))
        return tok, make_rows(flat, offsets, tok.eot_id, self.train_config.context_length, self.train_config.packing)

    def train_model(self, build: Callable[[], CausalLM], rows: np.ndarray, eot_id: int, *, seed: int,
                    work_dir: Optional[str]) -> "tuple[CausalLM, TrainStats]":
        """train.train_lm with this family's settings, threads and checkpoints."""
        with _threads(self.threads):
            return train_lm(build, rows, eot_id, self.train_config, seed=int(seed),
                            checkpoint=self.checkpoint_policy(seed, work_dir))


class TransformerFamily(CausalLMFamily):
    name = "transformer"

    def __init__(self, settings: Dict[str, Any], check_only: bool = False) -> None:
        self.settings = dict(settings)
        s = self.settings
        preset = s.get("preset", "tinystories-33m")
        if preset not in PRESETS:
            raise CollapseError(f"transformer: unknown preset {preset!r} (choose from {', '.join(PRESETS)})")
        self.preset = preset
        self.model_overrides = {k: s[k] for k in MODEL_KEYS if k in s}
        if "attention_layers" in self.model_overrides:
            self.model_overrides["attention_layers"] = tuple(self.model_overrides["attention_layers"])
        self.read_common_settings(s)
        self._tokenizer: Optional[TextTokenizer] = None
        if s.get("tokenizer_format", "lines") not in FORMATS:  # checked now, read only when the run starts
            raise CollapseError(f"transformer: tokenizer_format must be one of {', '.join(FORMATS)}, "
                                f"got {s['tokenizer_format']!r}")
        if s.get("tokenizer"):
            self._tokenizer = TextTokenizer.from_file(str(s["tokenizer"]), self.eot_token)
        elif s.get("tokenizer_corpus") and not check_only:
            texts = list(iter_documents(str(s["tokenizer_corpus"]), str(s.get("tokenizer_format", "lines"))))
            # the loop's corpora are whitespace-split words joined by single spaces: train on the same form
            self._tokenizer = TextTokenizer.train_bpe([" ".join(whitespace_tokenize(t)) for t in texts],
                                                      self.bpe_vocab_size, progress=self.progress)
        self.model_config(1)  # validate the architecture settings now, not after data loading

    @classmethod
    def from_config(cls, table: Dict[str, Any], check_only: bool = False) -> "TransformerFamily":
        """The family of a config's model table. check_only: validate every setting but
        train no tokenizer (config parsing)."""
        if not isinstance(table, dict):
            raise CollapseError("transformer: the model table must be a table of settings")
        if "bf16" in table:  # the boolean of earlier versions
            raise CollapseError('transformer: bf16 is replaced by precision = "auto" | "fp32" | "bf16" | "fp16"')
        return cls.checked(table, set(MODEL_KEYS) | set(TRAIN_KEYS) | set(SAMPLING_KEYS) | set(OTHER_KEYS),
                           check_only)

    # -- pieces ----------------------------------------------------------------------------
    def model_config(self, vocab_size: int, eot_id: int = 0) -> GPTNeoConfig:
        return PRESETS[self.preset](**{**self.model_overrides, "vocab_size": vocab_size,
                                       "bos_token_id": eot_id, "eos_token_id": eot_id})

    def prepare(self, real: Corpus) -> None:
        """Fix the tokenizer from the real corpus (a BPE trained on its texts) unless a
        tokenizer file or tokenizer_corpus was configured. The loop should call this once
        per cell before generation 0, so a resumed run rebuilds the very same tokenizer
        even when it restarts at a generation whose training data is synthetic."""
        if self._tokenizer is None and not self.settings.get("tokenizer"):
            self._tokenizer = self._train_bpe(real)

    def describe(self) -> Dict[str, Any]:
        return {"family": self.name, "preset": self.preset, "model": self.model_overrides,
                "train": asdict(self.train_config), "sampling": asdict(self.sampling),
                "sample_batch_size": self.sample_batch_size, "perplexity_stride": self.perplexity_stride,
                "tokenizer": self.settings.get("tokenizer") or
                ("bpe:%d" % self.bpe_vocab_size), "threads": self.threads}

    # -- protocol ------------------------------------------------------------------------
    def fit(self, corpus: Corpus, *, seed: int, context: Optional[RunContext] = None,
            work_dir: Optional[str] = None) -> "TransformerModel":
        """A model trained on corpus. context.work_dir (or work_dir, a direct caller's
        shorthand): where training keeps its checkpoint (a fit that finds one there
        continues from it), and the returned model's sample() its finished shards
        (TransformerModel.in_work_dir); None: no checkpoints. The loop gives each (cell,
        generation) its own; it is an argument, not family state, because one model (a
        shared generation 0) is sampled by several cells."""
        work_dir = run_context(context, work_dir=work_dir).work_dir
        tok, rows = self.train_rows(corpus)
        mc = self.model_config(tok.vocab_size, tok.eot_id)
        cfg = self.train_config
        if cfg.context_length > mc.max_position_embeddings:
            raise CollapseError(f"transformer: context_length {cfg.context_length} exceeds "
                                f"max_position_embeddings {mc.max_position_embeddings}")
        lm, stats = self.train_model(lambda: GPTNeoLM(GPTNeo(mc)), rows, tok.eot_id, seed=seed, work_dir=work_dir)
        return TransformerModel(lm, tok, self, stats, work_dir=work_dir)

    @_FamilyOrInstanceMethod
    def load(self: Optional["TransformerFamily"], cls: type, directory: str) -> "TransformerModel":
        """Read back what TransformerModel.save wrote (safetensors + JSON, no pickle)."""
        directory = os.fspath(directory)
        saved = read_saved_settings(directory, SETTINGS_FILE, "transformer")
        family = self if self is not None else cls(saved["settings"])
        tok = TextTokenizer.from_file(os.path.join(directory, "tokenizer.json"), saved.get("eot_token", END_OF_TEXT))
        if family._tokenizer is None:
            family._tokenizer = tok  # resume: later generations keep generation 0's tokenizer
        model = GPTNeo.from_pretrained(directory, map_location=str(resolve_device(family.train_config.device)))
        saved_stats = saved.get("train_stats", {})
        stats = TrainStats(**{k: v for k, v in saved_stats.items() if k in ("steps", "tokens", "seconds")})
        if isinstance(saved_stats.get("final_loss"), float):
            stats.losses = [saved_stats["final_loss"]]  # so a loaded model saves the same file again
        return TransformerModel(model, tok, family, stats)


class TransformerModel(TrainedModel):
    """A trained causal LM (collapse.transformer.backend: the GPT-Neo fast path here) with
    its tokenizer: sample / perplexity / save. ``model`` is the torch module, ``lm`` its
    backend adapter (what sampling and scoring go through)."""

    def __init__(self, model: Union[GPTNeo, CausalLM], tokenizer: TextTokenizer, family: CausalLMFamily,
                 stats: Optional[TrainStats] = None, work_dir: Optional[str] = None) -> None:
        self.lm = as_lm(model)
        self.model = self.lm.module.eval()
        self.tokenizer = tokenizer
        self.family = family
        self.stats = stats or TrainStats()
        self.work_dir = None if work_dir is None else os.fspath(work_dir)

    def in_work_dir(self, directory: Optional[str]) -> "TransformerModel":
        """The same model (weights shared, not copied) whose sample() keeps its finished
        shards in directory: a generation-0 model shared by several cells samples for each
        into that cell's own work folder."""
        view = copy.copy(self)
        view.work_dir = None if directory is None else os.fspath(directory)
        return view

    @property
    def device(self) -> torch.device:
        return self.lm.device

    def _sampling(self) -> SamplingConfig:
        s = self.family.sampling
        batch = self.family.sample_batch_size or (256 if self.device.type == "cuda" else 32)
        return SamplingConfig(**{**asdict(s), "batch_size": batch})

    def generate_shard(self, count: int, *, seed: int, first: int, dist: Any) -> List[np.ndarray]:
        """The token ids of documents first .. first + count - 1 of the draw ``seed`` (what
        a shard holds; the hf family overrides it for prompts and beam search)."""
        return generate_distributed(self.lm, count, int(seed), self.tokenizer.eot_id, self._sampling(),
                                    dist, precision=self.family.train_config.precision, first=first)

    def new_tokens(self, ids: np.ndarray, index: int, seed: int) -> int:
        """How many of document ``index``'s tokens (draw ``seed``) were drawn (not a prompt)."""
        return int(ids.size)

    def sample_shards(self, num_sequences: int, *, seed: int, threads: int = 0,
                      context: Optional[RunContext] = None) -> Iterator[List[np.ndarray]]:
        """The token ids of sequences 0 .. num_sequences - 1, a shard (sample_shard_size
        sequences) at a time. With a work directory (context.work_dir, else the model's
        own: in_work_dir), each finished shard is
        saved there (by rank 0) and a shard already saved is read back instead of sampled,
        so a killed sampling continues at its first unfinished shard. Every rank decides
        by the same files: a shard is written only after all ranks sampled it."""
        context = run_context(context, threads=threads)
        threads = context.threads
        dist = dist_from_env()
        size = self.family.sample_shard_size
        work = context.work_dir or self.work_dir
        for k, first in enumerate(range(0, num_sequences, size)):
            count = min(size, num_sequences - first)
            path = shard_path(work, int(seed), num_sequences, k) if work else None
            if path and os.path.exists(path):
                yield load_shard(path)
                continue
            with _threads(threads):
                ids = self.generate_shard(count, seed=int(seed), first=first, dist=dist)
            if path and dist.is_main:
                save_shard(path, ids)
            yield ids

    def sample_token_ids(self, num_sequences: int, *, seed: int, threads: int = 0,
                         context: Optional[RunContext] = None) -> List[np.ndarray]:
        return [s for part in self.sample_shards(int(num_sequences), seed=seed, threads=threads, context=context)
                for s in part]

    def sample(self, num_sequences: int, *, seed: int, context: Optional[RunContext] = None,
               threads: int = 0) -> Corpus:
        """num_sequences stories by ancestral sampling, as a word-level Corpus (decoded a
        shard at a time; keeping the decoded texts when the family uses_source_text);
        threads: a direct caller's shorthand for context.threads."""
        if num_sequences < 0:
            raise CollapseError("the number of sequences must be >= 0")
        limit = self.family.sampling.max_new_tokens
        truncated: List[bool] = []

        def texts() -> Iterator[str]:
            done = 0
            for part in self.sample_shards(int(num_sequences), seed=seed, threads=threads, context=context):
                # a story that drew no end-of-text has exactly max_new_tokens new tokens
                truncated.extend(self.new_tokens(ids, done + i, int(seed)) >= limit for i, ids in enumerate(part))
                done += len(part)
                yield from self.tokenizer.decode_batch(part)

        # whitespace words, split in the C++ core (the same as whitespace_tokenize)
        corpus = Corpus.from_texts(texts(), vocab=Vocab(), keep_text=self.family.uses_source_text)
        corpus.truncated = np.asarray(truncated, dtype=bool)
        return corpus

    def num_parameters(self) -> int:
        """The metrics table's ``params``: the network's parameters (tied weights counted once)."""
        return self.lm.num_parameters()

    def length_limit(self) -> str:
        """What cuts a sampled story short (for the loop's warning)."""
        return f"max_new_tokens = {self.family.sampling.max_new_tokens} (BPE tokens)"

    def _context(self) -> int:
        return min(self.family.train_config.context_length, self.lm.max_positions)

    def score_documents(self, corpus: Corpus) -> "tuple[np.ndarray, float]":
        """(document_log_probs, perplexity) from one scoring pass."""
        lp, n = self.log_probs_and_tokens(corpus)
        return lp, float(np.exp(-lp.sum() / n.sum()))

    def log_probs_and_tokens(self, corpus: Corpus) -> "tuple[np.ndarray, np.ndarray]":
        """(natural-log probability of each document as text, its number of predicted BPE
        tokens: the document's tokens + the end-of-text after it)."""
        docs = self.tokenizer.encode_batch(list(self.family.corpus_texts(corpus)))
        with _threads(self.family.threads):
            lp = document_log_probs(self.lm, docs, self.tokenizer.eot_id, max_length=self._context(),
                                    stride=self.family.perplexity_stride,
                                    precision=self.family.train_config.precision)
        return lp, np.fromiter((d.size + 1 for d in docs), dtype=np.int64, count=len(docs))

    def document_log_probs(self, corpus: Corpus) -> np.ndarray:
        """Natural-log probability of each document as text: the sum over its BPE tokens
        and the end-of-text after it, given the end-of-text before it (score.document_log_probs).
        The loop's common scale (bits per word, KL to the truth) and its quality filter use it."""
        return self.log_probs_and_tokens(corpus)[0]

    def perplexity(self, corpus: Corpus) -> float:
        """Per-BPE-token perplexity of the corpus, story by story: exp(-sum ln p(doc) /
        sum(tokens + 1)), each story given only the end-of-text before it (end-of-text
        after each story counted)."""
        if corpus.num_documents == 0:
            raise CollapseError("perplexity of an empty corpus")
        lp, n = self.log_probs_and_tokens(corpus)
        return float(np.exp(-lp.sum() / n.sum()))

    def extra_metrics(self, heldout: Corpus) -> Dict[str, float]:
        """Columns only this family reports: ``paper_ppl`` when paper_perplexity is set."""
        mode = self.family.paper_perplexity
        return {"paper_ppl": self.paper_perplexity(heldout, mode)} if mode else {}

    def paper_perplexity(self, corpus: Corpus, mode: str = "per-story") -> float:
        """The paper's evaluate_ppl.py number, a window of the model's positions every
        perplexity_stride (512) tokens, no end-of-text: "per-story" (its current version,
        score.paper_perplexity_per_story) scores each story's text on its own and takes
        exp(token-weighted mean NLL); "joined" (its older one, score.paper_perplexity) joins
        the texts by blank lines into one text and takes exp(mean of the windows' mean NLL)."""
        if corpus.num_documents == 0:
            raise CollapseError("perplexity of an empty corpus")
        mode = paper_perplexity_mode(mode)
        kw = {"stride": self.family.perplexity_stride, "precision": self.family.train_config.precision}
        with _threads(self.family.threads):
            texts = list(self.family.corpus_texts(corpus))
            if mode == "joined":
                stream = self.tokenizer.encode_batch(["\n\n".join(texts)])[0]
                return paper_perplexity(self.lm, stream, **kw).perplexity
            return paper_perplexity_per_story(self.lm, self.tokenizer.encode_batch(texts), **kw).perplexity

    def save(self, directory: str) -> None:
        """config.json + model.safetensors (Hugging Face layout), tokenizer.json and
        collapse_transformer.json, each written atomically; no pickle."""
        os.makedirs(directory, exist_ok=True)
        self.model.save_pretrained(directory)
        self.tokenizer.save(os.path.join(directory, "tokenizer.json"))
        write_json(os.path.join(directory, SETTINGS_FILE), {
            # what shapes the model, not how the run reports (progress) or where files were
            "settings": {k: v for k, v in self.family.settings.items()
                         if k not in ("tokenizer", "tokenizer_corpus", "progress")},
            "eot_token": self.tokenizer.eot_token,
            # timings stay out of the artifact (they are in the metrics' timing columns), so a
            # resumed run writes byte-identical files
            "train_stats": {k: v for k, v in self.stats.to_dict().items()
                            if k not in ("seconds", "tokens_per_second")},
        })
