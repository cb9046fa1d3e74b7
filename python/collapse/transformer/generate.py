"""Batched ancestral sampling with a preallocated KV cache.

Every sequence starts from the end-of-text token and draws one token per step from
softmax(logits / temperature), optionally restricted to the top-k tokens and/or the
smallest set of most likely tokens whose mass reaches top-p, renormalised. The paper's
default is pure sampling: temperature 1, no top-k, no top-p, at most 600 new tokens.

Determinism: sequence i uses the uniforms of the Philox stream (derive_seed(seed, TAG), i)
from the C++ core, one uniform per step, turned into a token by inverting the cumulative
distribution (float64). So a sequence's randomness does not depend on the batch it lands
in, on the number of ranks, or on when finished sequences are dropped from the batch;
only floating-point differences between batch shapes could change a draw that falls
within rounding error of a boundary between two tokens.

Finished sequences (end-of-text drawn) stop; once a quarter of a batch has finished, the
finished rows are removed from the batch and from the KV cache, so long stories do not
keep short ones' compute alive.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import List, Optional, Sequence

import numpy as np
import torch

from .. import _core
from ..errors import CollapseError
from .progress import Progress
from .model import GPTNeo
from .precision import autocast, autocast_dtype, resolve_precision

SAMPLING_TAG = 0x5452414E53464D52  # "TRANSFMR": the purpose tag for derive_seed


@dataclass
class SamplingConfig:
    temperature: float = 1.0
    top_k: int = 0          # 0: no top-k
    top_p: float = 1.0      # 1.0: no nucleus truncation
    max_new_tokens: int = 600
    batch_size: int = 64
    stop_at_eot: bool = True
    compact_fraction: float = 0.25  # drop finished rows once this fraction of the batch is finished
    check_every: int = 0    # look at finished rows every n steps (0: every step on CPU, 8 on CUDA)
    progress: bool = False  # progress bar / periodic lines over documents (collapse.transformer.progress)

    def __post_init__(self) -> None:
        if not (self.temperature > 0 and math.isfinite(self.temperature)):
            raise CollapseError("sampling: temperature must be a positive number")
        if not isinstance(self.top_k, int) or self.top_k < 0:
            raise CollapseError("sampling: top_k must be a non-negative integer")
        if not 0.0 < self.top_p <= 1.0:
            raise CollapseError("sampling: top_p must be in (0, 1]")
        if not isinstance(self.max_new_tokens, int) or self.max_new_tokens < 1:
            raise CollapseError("sampling: max_new_tokens must be a positive integer")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise CollapseError("sampling: batch_size must be a positive integer")


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
    key = _core.derive_seed(int(seed) & 0xFFFFFFFFFFFFFFFF, SAMPLING_TAG)
    out = np.empty((len(indices), steps), dtype=np.float64)
    for row, i in enumerate(indices):
        out[row] = _core.philox_uniform(key, int(i), steps)
    return torch.from_numpy(out)


@torch.no_grad()
def generate_batch(model: GPTNeo, start_id: int, uniforms: torch.Tensor, cfg: SamplingConfig,
                   eot_id: Optional[int] = None, cache_dtype: Optional[torch.dtype] = None) -> List[np.ndarray]:
    """One batch: row r uses uniforms[r, step]. Returns each row's new tokens (the
    end-of-text that stopped it excluded). ``cache_dtype``: the KV cache's dtype (under
    autocast, the autocast dtype: SDPA would otherwise cast the whole cached prefix at
    every step); default the weights'."""
    eot_id = start_id if eot_id is None else eot_id
    device = model.wte.weight.device
    n, steps = uniforms.shape
    if steps + 1 > model.config.max_position_embeddings:
        raise CollapseError(f"sampling: {steps} new tokens do not fit the model's "
                            f"{model.config.max_position_embeddings} positions")
    cache = model.new_cache(n, capacity=steps + 1, dtype=cache_dtype)
    # everything stays on the model's device; the host looks at the batch (to stop or to
    # drop finished rows) only every `check_every` steps, so a GPU is never made to wait
    # for the host at each token
    check_every = cfg.check_every or (1 if device.type == "cpu" else 8)
    u = uniforms.to(device)
    out = torch.full((n, steps), -1, dtype=torch.long, device=device)
    lengths = torch.full((n,), steps, dtype=torch.long, device=device)
    rows = torch.arange(n, device=device)               # original row of each batch row
    live = torch.ones(n, dtype=torch.bool, device=device)  # batch rows still generating
    tokens = torch.full((n, 1), start_id, dtype=torch.long, device=device)
    for step in range(steps):
        h = model.hidden_states(tokens, past_key_values=cache)[:, -1]
        logits = torch.nn.functional.linear(h, model.wte.weight)
        probs = sampling_probs(logits, cfg.temperature, cfg.top_k, cfg.top_p)
        tok = draw(probs, u[rows, step])
        out[rows, step] = torch.where(live, tok, out[rows, step])
        if cfg.stop_at_eot:
            ended = live & (tok == eot_id)
            lengths[rows] = torch.where(ended, step, lengths[rows])
            live = live & ~ended
            if (step + 1) % check_every == 0 or step == steps - 1:
                n_live = int(live.sum())
                if n_live == 0:
                    break
                if live.numel() - n_live >= cfg.compact_fraction * live.numel():
                    keep = torch.nonzero(live).squeeze(1)
                    cache.keep(keep)
                    rows, tok, live = rows[keep], tok[keep], live[keep]
        tokens = tok[:, None]
    out, lengths = out.cpu(), lengths.cpu()
    return [out[i, :int(lengths[i])].numpy() for i in range(n)]


def shard(num_sequences: int, rank: int, world_size: int) -> range:
    """The contiguous block of sequence indices a rank generates."""
    per = -(-num_sequences // world_size)
    return range(min(rank * per, num_sequences), min((rank + 1) * per, num_sequences))


@torch.no_grad()
def generate(model: GPTNeo, num_sequences: int, seed: int, start_id: int, cfg: SamplingConfig,
             indices: Optional[Sequence[int]] = None, precision: str = "auto") -> List[np.ndarray]:
    """Sequences ``indices`` (default 0..num_sequences-1), in that order; ``precision``
    as in training (collapse.transformer.precision)."""
    if num_sequences < 0:
        raise CollapseError("sampling: the number of sequences must be >= 0")
    indices = list(range(num_sequences)) if indices is None else list(indices)
    was_training = model.training
    model.eval()
    device = model.wte.weight.device
    precision = resolve_precision(precision, device)
    ctx = autocast(device, precision)
    result: List[np.ndarray] = []
    bar = Progress("sampling", total=len(indices), unit="doc", enabled=cfg.progress)
    try:
        with ctx:
            for s in range(0, len(indices), cfg.batch_size):
                chunk = indices[s:s + cfg.batch_size]
                u = sequence_uniforms(seed, chunk, cfg.max_new_tokens)
                result.extend(generate_batch(model, start_id, u, cfg, cache_dtype=autocast_dtype(precision)))
                bar.update(len(chunk))
    finally:
        bar.close()
        model.train(was_training)
    return result


def generate_distributed(model: GPTNeo, num_sequences: int, seed: int, start_id: int,
                         cfg: SamplingConfig, dist: "object", precision: str = "auto",
                         first: int = 0) -> List[np.ndarray]:
    """Sequences first .. first + num_sequences - 1. Under torchrun: each rank samples its
    contiguous part, then every rank receives all of them in index order
    (torch.distributed.all_gather_object)."""
    rank, world = getattr(dist, "rank", 0), getattr(dist, "world_size", 1)
    if rank != 0 and cfg.progress:
        cfg = replace(cfg, progress=False)  # one progress report, from rank 0
    part = shard(num_sequences, rank, world)
    mine = generate(model, num_sequences, seed, start_id, cfg, indices=range(first + part.start, first + part.stop),
                    precision=precision)
    if world <= 1:
        return mine
    import torch.distributed as td

    gathered: List[Optional[List[np.ndarray]]] = [None] * world
    td.all_gather_object(gathered, mine)
    return [seq for part in gathered for seq in (part or [])]
