"""The hf family of the experiment loop: any transformers causal LM (protocol: collapse.experiment.family).

``HFFamily.from_config(table)`` takes a ``[[model]]`` table (docs/hf.md):

    family            "hf" (ignored here; the loop dispatches on it)
    path              a local Hugging Face folder: config.json, weights, tokenizer files
    architecture      instead of path: config fields with model_type, e.g.
                      { model_type = "llama", hidden_size = 64, num_hidden_layers = 2, ... }
                      (vocab_size and the bos / eos / pad ids always come from the tokenizer)
    tokenizer         with architecture: a folder or a tokenizer.json; else a byte-level BPE
                      of bpe_vocab_size (8192) trained on generation 0's real text (prepare)
    eot_token         the end-of-text token (default: the folder's eos token, else
                      "<|endoftext|>"): it starts, separates and ends documents
    init              "scratch" (a fresh random init from the config every generation: the
                      paper; the default with architecture) | "pretrained" (every generation
                      fine-tunes the folder's weights: Shumailov et al.; the default with
                      path) | "previous" (continues from the previous generation's model,
                      which the loop passes to fit(previous=...); generation 0 starts from
                      the folder's weights, or from scratch with architecture)
    prompt            "none" (documents start from the end-of-text token) | "real-prefix"
                      (each document continues the first prefix_tokens (64) tokens of a real
                      document of R drawn with the sampling seed; the prefix is part of the
                      generated document, as in Shumailov et al.'s code)
    temperature, top_k, top_p, max_new_tokens, sample_batch_size
                      pure sampling through the shared sampler (per-document streams)
    num_beams, repetition_penalty
                      1 and 1.0 by default; otherwise model.generate (collapse.hf.generate)
    training, scoring, checkpoints, device, threads, progress, paper_perplexity
                      the GPT-Neo family's keys (transformer.family.CausalLMFamily)

The family trains, prompts and scores on each document's source text
(``corpus.document_texts()`` where the Corpus keeps it; else its words joined by single
spaces); sample() returns a word-level Corpus as the GPT-Neo family does.
"""

from __future__ import annotations

import copy
import os
import shutil
from dataclasses import asdict
from typing import Any, Callable, Dict, Iterator, List, Optional

import numpy as np

from ..data.corpus import Corpus
from ..errors import CollapseError
from ..experiment.family import RunContext, run_context
from ..files import move_files_into, temporary_name, write_json
from ..transformer.backend import CausalLM, HFCausalLM, positions_of
from ..transformer.family import (COMMON_KEYS, SAMPLING_KEYS, TRAIN_KEYS, CausalLMFamily, TransformerModel,
                                  _FamilyOrInstanceMethod, read_saved_settings)
from ..transformer.generate import generate_distributed
from ..transformer.tokenizer import TextTokenizer
from ..transformer.train import TrainStats, resolve_device
from .generate import generate_with_transformers, prompt_documents
from .model import (architecture_config, build_model, check_folder, folder_config, folder_eos_token,
                    folder_tokenizer, load_model, save_tokenizer_files)

INITS = ("scratch", "pretrained", "previous")
PROMPTS = ("none", "real-prefix")
HF_KEYS = ("path", "architecture", "init", "prompt", "prefix_tokens", "num_beams", "repetition_penalty")
SETTINGS_FILE = "collapse_hf.json"


class HFFamily(CausalLMFamily):
    name = "hf"
    # a pretrained tokenizer expects the text as written: real data is loaded with it and
    # samples keep their decoded text (docs/experiment.md, "Source text")
    uses_source_text = True

    def __init__(self, settings: Dict[str, Any], check_only: bool = False) -> None:
        self.settings = dict(settings)
        s = self.settings
        self.path = s.get("path")
        self.architecture = s.get("architecture")
        if self.path is not None and self.architecture is not None:
            raise CollapseError("hf: path and architecture exclude each other (a folder's model, or one "
                                "built from config fields)")
        if self.path is None and self.architecture is None:
            raise CollapseError("hf: give path (a local Hugging Face folder) or architecture (config fields "
                                "with model_type)")
        if self.path is not None and (not isinstance(self.path, str) or not self.path):
            raise CollapseError("hf: path must be a folder name")
        self.init = s.get("init", "pretrained" if self.path else "scratch")
        if self.init not in INITS:
            raise CollapseError(f"hf: init must be one of {', '.join(INITS)}, not {self.init!r}")
        if self.init == "pretrained" and self.path is None:
            raise CollapseError('hf: init = "pretrained" needs path (a folder with weights)')
        self.prompt = s.get("prompt", "none")
        if self.prompt not in PROMPTS:
            raise CollapseError(f"hf: prompt must be one of {', '.join(PROMPTS)}, not {self.prompt!r}")
        self.prefix_tokens = s.get("prefix_tokens", 64 if self.prompt == "real-prefix" else 0)
        if not isinstance(self.prefix_tokens, int) or isinstance(self.prefix_tokens, bool) or self.prefix_tokens < 0:
            raise CollapseError("hf: prefix_tokens must be a non-negative integer")
        if self.prompt == "none" and self.prefix_tokens:
            raise CollapseError('hf: prefix_tokens needs prompt = "real-prefix"')
        self.num_beams = s.get("num_beams", 1)
        if not isinstance(self.num_beams, int) or isinstance(self.num_beams, bool) or self.num_beams < 1:
            raise CollapseError("hf: num_beams must be a positive integer")
        self.repetition_penalty = s.get("repetition_penalty", 1.0)
        if isinstance(self.repetition_penalty, bool) or not isinstance(self.repetition_penalty, (int, float)) \
                or not self.repetition_penalty > 0:
            raise CollapseError("hf: repetition_penalty must be a positive number")
        self.repetition_penalty = float(self.repetition_penalty)
        if self.num_beams > 1 and any(k in s for k in ("temperature", "top_k", "top_p")):
            raise CollapseError("hf: beam search (num_beams > 1) is deterministic: temperature, top_k and top_p "
                                "apply to sampling only")
        self.read_common_settings(s)
        self._tokenizer: Optional[TextTokenizer] = None
        self._prompts: Optional[List[np.ndarray]] = None
        if self.path is not None:
            self.path = os.fspath(self.path)
            check_folder(self.path, weights=self.init != "scratch", tokenizer="tokenizer" not in s)
            self.config = folder_config(self.path)
        else:
            self.config = architecture_config(self.architecture)
        if s.get("eot_token") is None and self.path is not None:
            self.eot_token = folder_eos_token(self.path) or self.eot_token
        positions = positions_of(self.config)
        need = {"context_length": self.train_config.context_length,
                "1 + prefix_tokens + max_new_tokens": 1 + self.prefix_tokens + self.sampling.max_new_tokens}
        for what, n in need.items():
            if n > positions:
                raise CollapseError(f"hf: {what} = {n} exceeds the model's {positions} positions")
        tokenizer = s.get("tokenizer") or self.path
        if tokenizer and not check_only:
            # eot_token unset: the tokenizer folder's own eos token
            self._tokenizer = folder_tokenizer(str(tokenizer), s.get("eot_token"))
            self.eot_token = self._tokenizer.eot_token

    @classmethod
    def from_config(cls, table: Dict[str, Any], check_only: bool = False) -> "HFFamily":
        """The family of a config's [[model]] table. check_only: validate every setting but
        read no tokenizer."""
        if not isinstance(table, dict):
            raise CollapseError("hf: the model table must be a table of settings")
        return cls.checked(table, set(HF_KEYS) | set(COMMON_KEYS) | set(TRAIN_KEYS) | set(SAMPLING_KEYS), check_only)

    # -- pieces ----------------------------------------------------------------------------
    def corpus_texts(self, corpus: Corpus) -> Iterator[str]:
        return iter(corpus.document_texts())

    def prepare(self, real: Corpus) -> None:
        """Before generation 0, with the real corpus R: fix the tokenizer (a BPE of R's
        texts unless a tokenizer is configured) and, with prompt = "real-prefix", keep the
        first prefix_tokens tokens of every document of R (the prompts)."""
        tok = self.tokenizer_for(real)
        if self.prompt == "real-prefix":
            self._prompts = [ids[:self.prefix_tokens] for ids in tok.encode_batch(list(self.corpus_texts(real)))]
            if not self._prompts:
                raise CollapseError("hf: prompt = \"real-prefix\" needs a non-empty real corpus")

    def prefixes(self, seed: int) -> Optional[Callable[[int], np.ndarray]]:
        """Document i's prompt tokens for the draw ``seed`` (None: unprompted)."""
        if self.prompt == "none":
            return None
        if self._prompts is None:
            raise CollapseError('hf: prompt = "real-prefix" needs the real documents: call family.prepare(real) '
                                "first (the loop does, before generation 0)")
        prompts = self._prompts
        return lambda i: prompts[int(prompt_documents(seed, [i], len(prompts))[0])]

    def model_config(self, tok: TextTokenizer) -> Any:
        """The config a fresh network is built from: the folder's, or the architecture's
        with the tokenizer's vocabulary size and end-of-text id."""
        config = copy.deepcopy(self.config)
        if self.architecture is not None:
            config.vocab_size = tok.vocab_size
            for key in ("bos_token_id", "eos_token_id", "pad_token_id"):
                setattr(config, key, tok.eot_id)
        elif tok.vocab_size > config.vocab_size:
            raise CollapseError(f"hf: the tokenizer has {tok.vocab_size} tokens, the model's vocabulary "
                                f"{config.vocab_size}")
        return config

    def describe(self) -> Dict[str, Any]:
        return {"family": self.name, "path": self.path, "architecture": self.architecture, "init": self.init,
                "prompt": self.prompt, "prefix_tokens": self.prefix_tokens, "num_beams": self.num_beams,
                "repetition_penalty": self.repetition_penalty, "train": asdict(self.train_config),
                "sampling": asdict(self.sampling), "sample_batch_size": self.sample_batch_size,
                "perplexity_stride": self.perplexity_stride,
                "tokenizer": self.settings.get("tokenizer") or self.path or f"bpe:{self.bpe_vocab_size}",
                "eot_token": self.eot_token, "threads": self.threads}

    # -- protocol ----------------------------------------------------------------------------
    @property
    def continues_previous(self) -> bool:  # experiment.family.ModelFamily's hook
        return self.init == "previous"

    def fit(self, corpus: Corpus, *, seed: int, context: Optional[RunContext] = None,
            work_dir: Optional[str] = None, previous: Optional["HFModel"] = None) -> "HFModel":
        """A model trained on corpus: from a fresh init (init = "scratch"), the folder's
        weights ("pretrained") or ``previous``'s ("previous": the loop passes the previous
        generation's model; None at generation 0, which starts from the folder's weights,
        or from scratch with architecture). context.work_dir (or work_dir): checkpoints, as
        the transformer family's fit."""
        work_dir = run_context(context, work_dir=work_dir).work_dir
        tok, rows = self.train_rows(corpus)
        build = self._builder(tok, previous)
        lm, stats = self.train_model(build, rows, tok.eot_id, seed=seed, work_dir=work_dir)
        return HFModel(lm, tok, self, stats, work_dir=work_dir)

    def _builder(self, tok: TextTokenizer, previous: Optional["HFModel"]) -> Callable[[], CausalLM]:
        init = self.init
        if init == "previous" and previous is not None:
            if not isinstance(previous, HFModel):
                raise CollapseError(f"hf: previous must be the previous generation's hf model, "
                                    f"not {type(previous).__name__}")
            return lambda: HFCausalLM(copy.deepcopy(previous.model))
        if init == "pretrained" or (init == "previous" and self.path is not None):
            path = self.path
            return lambda: load_model(path)  # type: ignore[arg-type]
        config = self.model_config(tok)
        return lambda: build_model(config)

    @_FamilyOrInstanceMethod
    def load(self: Optional["HFFamily"], cls: type, directory: str) -> "HFModel":
        """Read back what HFModel.save wrote (a Hugging Face folder + collapse_hf.json)."""
        directory = os.fspath(directory)
        saved = read_saved_settings(directory, SETTINGS_FILE, "hf")
        if self is None:  # the folder is itself a Hugging Face model folder: the family reads it
            settings = {k: v for k, v in saved["settings"].items() if k not in ("path", "architecture", "tokenizer")}
            family = cls({**settings, "path": directory, "eot_token": saved.get("eot_token")})
        else:
            family = self
        tok = folder_tokenizer(directory, saved.get("eot_token"))
        if family._tokenizer is None:
            family._tokenizer = tok  # resume: later generations keep generation 0's tokenizer
        lm = load_model(directory, resolve_device(family.train_config.device))
        saved_stats = saved.get("train_stats", {})
        stats = TrainStats(**{k: v for k, v in saved_stats.items() if k in ("steps", "tokens", "seconds")})
        if isinstance(saved_stats.get("final_loss"), float):
            stats.losses = [saved_stats["final_loss"]]
        return HFModel(lm, tok, family, stats)


class HFModel(TransformerModel):
    """A trained transformers causal LM with its tokenizer (TransformerModel's sampling,
    scoring and shards; prompts, beam search and Hugging Face saving of its own)."""

    family: HFFamily

    def pure_sampling(self) -> bool:
        return self.family.num_beams == 1 and self.family.repetition_penalty == 1.0

    def generate_shard(self, count: int, *, seed: int, first: int, dist: Any) -> List[np.ndarray]:
        """Documents first .. first + count - 1: the prompt (if any) and the new tokens."""
        prefixes = self.family.prefixes(seed)
        sampler = None
        if not self.pure_sampling():
            def sampler(indices: List[int]) -> List[np.ndarray]:
                return generate_with_transformers(self.lm, indices, seed, self.tokenizer.eot_id, self._sampling(),  # type: ignore[arg-type]
                                                  self.family.num_beams, self.family.repetition_penalty,
                                                  prefixes, self.family.train_config.precision)
        new = generate_distributed(self.lm, count, int(seed), self.tokenizer.eot_id, self._sampling(), dist,
                                   precision=self.family.train_config.precision, first=first, prefixes=prefixes,
                                   sampler=sampler)
        if prefixes is None:
            return new
        return [np.concatenate([prefixes(first + k).astype(np.int64), ids]) for k, ids in enumerate(new)]

    def new_tokens(self, ids: np.ndarray, index: int, seed: int) -> int:
        prefixes = self.family.prefixes(seed)
        return int(ids.size) - (0 if prefixes is None else int(prefixes(index).size))

    def length_limit(self) -> str:
        limit = f"max_new_tokens = {self.family.sampling.max_new_tokens}"
        return limit + (" (tokens after the prompt)" if self.family.prompt == "real-prefix" else " (tokens)")

    def save(self, directory: str) -> None:
        """A Hugging Face folder (config.json, model.safetensors, generation_config.json,
        tokenizer.json, tokenizer_config.json: AutoModelForCausalLM.from_pretrained and
        AutoTokenizer read it) and collapse_hf.json. The files are written into a temporary
        folder, then each renamed into ``directory``."""
        directory = os.fspath(directory)
        os.makedirs(directory, exist_ok=True)
        tmp = temporary_name(os.path.join(directory, "hf"))
        try:
            self.lm.save_pretrained(tmp)
            save_tokenizer_files(self.tokenizer, tmp)
            write_json(os.path.join(tmp, SETTINGS_FILE), {
                "settings": {k: v for k, v in self.family.settings.items() if k not in ("progress",)},
                "eot_token": self.tokenizer.eot_token,
                "train_stats": {k: v for k, v in self.stats.to_dict().items()
                                if k not in ("seconds", "tokens_per_second")},
            })
            move_files_into(tmp, directory)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
