"""Perplexity of held-out text with a sliding window (the transformers-docs recipe).

The text is one token stream: end-of-text, document, end-of-text, document, ... (as in
training). Every token after the first is scored exactly once: the tokens are taken
``stride`` at a time, each group by a window of at most ``max_length`` tokens that ends
with it, so every token sees at least max_length - stride tokens of context (fewer only
at the start). Perplexity = exp(mean negative log likelihood per token), end-of-text
tokens included.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Optional, Tuple

import numpy as np
import torch

from ..errors import CollapseError
from .loss import token_nll
from .model import GPTNeo
from .precision import autocast, autocast_dtype, resolve_precision


@dataclass
class PerplexityResult:
    nll_sum: float
    num_tokens: int

    @property
    def perplexity(self) -> float:
        return math.exp(self.nll_sum / self.num_tokens) if self.num_tokens else float("nan")


def windows(length: int, max_length: int, stride: int) -> List[Tuple[int, int, int]]:
    """(begin, end, first scored position) of each window over a stream of ``length``.

    The scored positions 1..length-1 are cut into consecutive chunks of ``stride`` tokens
    (at most max_length - 1, since a window of max_length tokens predicts max_length - 1
    of them); the chunk [first, end) is scored by the window [max(0, end - max_length), end),
    so each of its tokens sees at least max_length - stride tokens of context (fewer only
    at the start of the stream)."""
    if max_length < 2:
        raise CollapseError("perplexity: max_length must be at least 2")
    if stride < 1:
        raise CollapseError(f"perplexity: stride must be positive, got {stride}")
    stride = min(stride, max_length - 1)
    out = []
    for first in range(1, length, stride):
        end = min(first + stride, length)
        out.append((max(0, end - max_length), end, first))
    return out


@torch.no_grad()
def sliding_window_nll(model: GPTNeo, stream: np.ndarray, max_length: Optional[int] = None,
                       stride: int = 512, batch_size: int = 8, precision: str = "auto") -> PerplexityResult:
    """Summed NLL (nats) and the number of scored tokens of ``stream`` (int ids).
    ``precision`` as in training; the logits are never materialised beyond a chunk
    (loss.token_nll)."""
    max_length = max_length or model.config.max_position_embeddings
    if max_length > model.config.max_position_embeddings:
        raise CollapseError(f"perplexity: max_length {max_length} exceeds the model's "
                            f"{model.config.max_position_embeddings} positions")
    ids = torch.as_tensor(np.asarray(stream, dtype=np.int64))
    device = model.wte.weight.device
    was_training = model.training
    model.eval()
    precision = resolve_precision(precision, device)
    total, count = 0.0, 0
    try:
        spans = windows(ids.numel(), max_length, stride)
        # windows of equal length go through the model together
        groups: dict = {}
        for span in spans:
            groups.setdefault(span[1] - span[0], []).append(span)
        for width, group in groups.items():
            for s in range(0, len(group), batch_size):
                chunk = group[s:s + batch_size]
                inputs = torch.stack([ids[b:e] for b, e, _ in chunk]).to(device)
                with autocast(device, precision):
                    h = model.hidden_states(inputs)[:, :-1]
                targets = inputs[:, 1:].clone()
                # score only positions >= first: mask the others out
                pos = torch.arange(1, width, device=device)[None, :]
                firsts = torch.tensor([f - b for b, _, f in chunk], device=device)[:, None]
                targets[pos < firsts] = -100
                nll = token_nll(h, model.wte.weight, targets, compute_dtype=autocast_dtype(precision)).double().sum()
                total += float(nll)
                count += int((targets != -100).sum())
    finally:
        model.train(was_training)
    return PerplexityResult(total, count)
