"""The distribution a token is drawn from and the draw itself (inverse CDF on a Philox uniform).

Shared by both samplers (generate.generate_batch and refill.RefillSampler): a document's
token at step s depends only on its logits and on uniform s of its own stream."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from .. import _core

SAMPLING_TAG = 0x5452414E53464D52  # "TRANSFMR": the purpose tag for derive_seed


def sampling_probs(logits: torch.Tensor, temperature: float = 1.0, top_k: int = 0,
                   top_p: float = 1.0) -> torch.Tensor:
    """The distribution sampled from, (batch, vocab) float32, rows summing to 1."""
    logits = logits.float()
    if temperature != 1.0:
        logits = logits / temperature
    if top_k and top_k < logits.size(-1):
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        p = torch.softmax(sorted_logits, dim=-1)
        before = torch.cumsum(p, dim=-1) - p  # mass of the more likely tokens
        drop_sorted = before >= top_p          # the most likely token always stays
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return torch.softmax(logits, dim=-1)


BLOCK = 256  # inverse-CDF search: first over block sums, then inside one block


def draw(probs: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
    """Token per row by inverse CDF: the first index whose cumulative mass exceeds
    u * total, in float64. A token of probability 0 can never be drawn.

    Two levels, so the full (batch, vocab) cumulative sum is never formed: cumulative
    block sums locate the block holding u * total, then a cumulative sum over that one
    block locates the token."""
    B, V = probs.shape
    full = V // BLOCK
    sums = probs[:, :full * BLOCK].view(B, full, BLOCK).sum(-1)
    if full * BLOCK < V:
        sums = torch.cat([sums, probs[:, full * BLOCK:].sum(-1, keepdim=True)], dim=1)
    nb = sums.size(1)
    block_cdf = torch.cumsum(sums.double(), dim=-1)                                 # (B, nb)
    total = block_cdf[:, -1:]
    x = torch.minimum(uniforms.to(probs.device, torch.float64)[:, None] * total,
                      torch.nextafter(total, torch.zeros_like(total)))              # in [0, total)
    b = torch.searchsorted(block_cdf, x, right=True).clamp_(max=nb - 1)           # (B, 1)
    before = torch.where(b > 0, block_cdf.gather(1, (b - 1).clamp(min=0)), torch.zeros_like(x))
    offs = torch.arange(BLOCK, device=probs.device)
    cols = b * BLOCK + offs                                                         # (B, BLOCK)
    inner = probs.gather(1, cols.clamp(max=V - 1)).masked_fill(cols >= V, 0.0)
    inner_cdf = torch.cumsum(inner.double(), dim=-1)
    j = torch.searchsorted(inner_cdf, x - before, right=True)
    # float32 block sums and the float64 sum inside the block can differ by rounding, which
    # could push j past the block's last non-zero token: step back to it (never onto a
    # zero-probability token)
    last_nonzero = torch.where(inner > 0, offs, -1).amax(-1, keepdim=True)
    j = torch.minimum(j, last_nonzero)
    return (b * BLOCK + j).squeeze(-1)


def sequence_uniforms(seed: int, indices: Sequence[int], steps: int) -> torch.Tensor:
    """(len(indices), steps) float64: row r holds document indices[r]'s stream."""
    key = _core.derive_seed(int(seed) & 0xFFFFFFFFFFFFFFFF, SAMPLING_TAG)
    out = np.empty((len(indices), steps), dtype=np.float64)
    for row, i in enumerate(indices):
        out[row] = _core.philox_uniform(key, int(i), steps)
    return torch.from_numpy(out)


def document_uniforms(seed: int, index: int, steps: int) -> np.ndarray:
    """Uniforms 0..steps-1 of document ``index``'s stream (float64)."""
    key = _core.derive_seed(int(seed) & 0xFFFFFFFFFFFFFFFF, SAMPLING_TAG)
    return _core.philox_uniform(key, int(index), steps)
