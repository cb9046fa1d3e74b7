"""The causal language model behind training, sampling and scoring: one protocol, two adapters.

``train.train_lm``, ``generate.generate`` and the functions of ``score`` see a network only
through ``CausalLM``:

- ``module``: the torch module (parameters, state_dict, train / eval, the device);
- ``loss_module``: what a training step calls, ``forward(inputs, targets=, loss_dtype=,
  compiled=)`` -> the summed cross-entropy over targets != -100 (what DDP wraps);
- ``new_cache`` / ``next_logits(input_ids, cache) -> (logits of the last position, cache)``
  / ``keep(cache, rows)``: incremental decoding;
- ``target_nll(inputs, targets, precision)``: per-token NLL for scoring;
- ``max_positions``, ``num_parameters``, ``save_pretrained``.

Two adapters. ``GPTNeoLM`` wraps the hand-written GPT-Neo (model.py): its preallocated KV
cache, the chunked linear cross-entropy of its tied head (loss.py) and the refill sampler
(refill.py) are the fast path, unchanged. ``HFCausalLM`` wraps any ``transformers``
causal LM (AutoModelForCausalLM): its own cache object (DynamicCache) and the plain
cross-entropy of its full logits in float32 (a head may have a bias or a logit scale, so
the tied-head shortcut is not assumed). Both give transformers' numbers for the same
weights (tests/test_hf_family.py).
"""

from __future__ import annotations

import inspect
from typing import Any, Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import CollapseError
from .loss import IGNORE, token_nll
from .model import GPTNeo
from .precision import autocast, autocast_dtype


class CausalLM:
    """The protocol (and what the adapters share)."""

    module: nn.Module
    has_dropout: bool = True  # train() reseeds dropout at every step when True

    @property
    def loss_module(self) -> nn.Module:
        raise NotImplementedError

    @property
    def device(self) -> torch.device:
        return next(self.module.parameters()).device

    @property
    def max_positions(self) -> int:
        raise NotImplementedError

    def num_parameters(self) -> int:
        """The network's parameters (tied weights counted once: parameters() dedups them)."""
        return int(sum(p.numel() for p in self.module.parameters()))

    def new_cache(self, batch_size: int, capacity: int, dtype: Optional[torch.dtype] = None) -> Any:
        raise NotImplementedError

    def next_logits(self, input_ids: torch.Tensor, cache: Any) -> "tuple[torch.Tensor, Any]":
        """(logits of the last position (batch, vocab), the cache extended by input_ids)."""
        raise NotImplementedError

    def keep(self, cache: Any, rows: torch.Tensor) -> Any:
        """The cache of the batch rows ``rows`` only (in that order)."""
        raise NotImplementedError

    def logits(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Logits (batch, seq, vocab) of a whole sequence, no cache."""
        raise NotImplementedError

    def target_nll(self, inputs: torch.Tensor, targets: torch.Tensor, precision: str) -> torch.Tensor:
        """Per-token NLL (batch, seq - 1), float32, of targets (aligned with inputs[:, 1:],
        -100: not scored, 0 there) given inputs[:, :-1]; inputs hold no negative ids.
        ``precision`` resolved (fp32 | bf16 | fp16)."""
        raise NotImplementedError

    def compile_body(self) -> None:
        """Training with compile = true."""

    def uncompile_body(self) -> None:
        """Back to eager after training."""

    def save_pretrained(self, directory: str) -> None:
        raise NotImplementedError


class GPTNeoLM(CausalLM):
    """The hand-written GPT-Neo (the fast path: preallocated KV cache, chunked tied-head loss)."""

    def __init__(self, model: GPTNeo) -> None:
        self.module = model

    @property
    def has_dropout(self) -> bool:  # type: ignore[override]
        c = self.module.config
        return any(float(getattr(c, k)) > 0 for k in ("embed_dropout", "attention_dropout", "resid_dropout"))

    @property
    def loss_module(self) -> nn.Module:
        return self.module  # GPTNeo.forward(targets=...) is the chunked loss

    @property
    def device(self) -> torch.device:
        return self.module.wte.weight.device

    @property
    def max_positions(self) -> int:
        return int(self.module.config.max_position_embeddings)

    def new_cache(self, batch_size: int, capacity: int, dtype: Optional[torch.dtype] = None) -> Any:
        return self.module.new_cache(batch_size, capacity=capacity, dtype=dtype)

    def next_logits(self, input_ids: torch.Tensor, cache: Any) -> "tuple[torch.Tensor, Any]":
        h = self.module.hidden_states(input_ids, past_key_values=cache)[:, -1]
        return F.linear(h, self.module.wte.weight), cache

    def keep(self, cache: Any, rows: torch.Tensor) -> Any:
        cache.keep(rows)
        return cache

    def logits(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.module(input_ids)

    def target_nll(self, inputs: torch.Tensor, targets: torch.Tensor, precision: str) -> torch.Tensor:
        with autocast(inputs.device, precision):
            h = self.module.hidden_states(inputs)[:, :-1]
        return token_nll(h, self.module.wte.weight, targets, compute_dtype=autocast_dtype(precision))

    def compile_body(self) -> None:
        # the body through torch.compile, the loss's chunk loop left out of the graph (train.py)
        self.module.hidden_states = torch.compile(self.module.hidden_states)  # type: ignore[method-assign]

    def uncompile_body(self) -> None:
        self.module.__dict__.pop("hidden_states", None)

    def save_pretrained(self, directory: str) -> None:
        self.module.save_pretrained(directory)


class SummedNLL(nn.Module):
    """A Hugging Face causal LM's training step as one module call (so DistributedDataParallel
    sees it): the summed float32 cross-entropy of its logits against targets (-100 ignored)."""

    def __init__(self, lm: nn.Module) -> None:
        super().__init__()
        self.lm = lm

    def forward(self, inputs: torch.Tensor, targets: torch.Tensor, loss_dtype: Optional[torch.dtype] = None,
                compiled: bool = False) -> torch.Tensor:
        logits = self.lm(input_ids=inputs, use_cache=False).logits
        return F.cross_entropy(logits.float().flatten(0, 1), targets.flatten().to(logits.device),
                               ignore_index=IGNORE, reduction="sum")


def positions_of(config: Any) -> int:
    """A transformers config's number of positions (max_position_embeddings, n_positions, ...)."""
    for key in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length", "n_ctx"):
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    raise CollapseError(f"{getattr(config, 'model_type', 'the')} config names no number of positions "
                        "(max_position_embeddings)")


class HFCausalLM(CausalLM):
    """Any ``transformers`` causal LM (a PreTrainedModel with a causal-LM head)."""

    def __init__(self, model: nn.Module) -> None:
        self.module = model
        self._loss = SummedNLL(model)
        # the cache's keyword: "cache" from transformers 5.2x, "past_key_values" before
        self._cache_key = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"

    @property
    def loss_module(self) -> nn.Module:
        return self._loss

    @property
    def max_positions(self) -> int:
        return positions_of(self.module.config)

    def new_cache(self, batch_size: int, capacity: int, dtype: Optional[torch.dtype] = None) -> Any:
        return None  # the model makes its own cache (DynamicCache, sliding layers included) at the first call

    def next_logits(self, input_ids: torch.Tensor, cache: Any) -> "tuple[torch.Tensor, Any]":
        out = self.module(input_ids=input_ids, use_cache=True, **{self._cache_key: cache})
        return out.logits[:, -1], out.get(self._cache_key)

    def keep(self, cache: Any, rows: torch.Tensor) -> Any:
        # every layer's keys and values, batch rows ``rows`` only
        if hasattr(cache, "batch_select_indices"):
            cache.batch_select_indices(rows)
        else:
            cache.reorder_cache(rows)
        return cache

    def logits(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.module(input_ids=input_ids, use_cache=False).logits

    def target_nll(self, inputs: torch.Tensor, targets: torch.Tensor, precision: str) -> torch.Tensor:
        with autocast(inputs.device, precision):
            logits = self.module(input_ids=inputs, use_cache=False).logits[:, :-1]
        nll = F.cross_entropy(logits.float().flatten(0, 1), targets.flatten().to(logits.device),
                              ignore_index=IGNORE, reduction="none")
        return nll.view(targets.shape)

    def compile_body(self) -> None:
        self._loss.forward = torch.compile(self._loss.forward)  # type: ignore[method-assign]

    def uncompile_body(self) -> None:
        self._loss.__dict__.pop("forward", None)

    def save_pretrained(self, directory: str) -> None:
        self.module.save_pretrained(directory, safe_serialization=True)


def as_lm(model: Any) -> CausalLM:
    """A CausalLM as it is; a GPTNeo (what callers passed before the protocol) in its adapter."""
    if isinstance(model, CausalLM):
        return model
    if isinstance(model, GPTNeo):
        return GPTNeoLM(model)
    raise CollapseError(f"not a causal language model: {type(model).__name__}")
