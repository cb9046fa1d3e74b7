"""Batched ancestral sampling with a preallocated KV cache: continuous refill on CUDA.

Two samplers: continuous refill (refill.py, ``refill=True``) and batch after batch
(generate_batch, ``refill=False``); the default, ``refill="auto"``, refills on CUDA and
goes batch after batch on CPU (SamplingConfig.uses_refill).

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

With refill (refill.RefillSampler) the batch stays full: a finished document's row is
taken by the next document of the shard, and the decode step has one static shape (it
can be torch.compile'd and captured as a CUDA graph). Batch after batch (generate_batch):
finished sequences (end-of-text drawn) stop; once a quarter of a batch has finished, the
finished rows are removed from the batch and from the KV cache, and the next batch starts
when the longest story of this one ends. Both give each document the same tokens.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable, Dict, List, Optional, Sequence, Union

import numpy as np
import torch

from ..errors import CollapseError
from .distribution import SAMPLING_TAG, BLOCK, draw, sampling_probs, sequence_uniforms  # noqa: F401 (re-exported)
from .backend import CausalLM, GPTNeoLM, as_lm
from .progress import Progress
from .model import GPTNeo
from .precision import autocast, autocast_dtype, resolve_precision
from .refill import RefillSampler


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
    # continuous refill (refill.py) | False: batch after batch (generate_batch) | "auto":
    # refill on CUDA (or with compile / cuda_graph), batch after batch on CPU, where a step
    # costs in proportion to the live rows and dropping finished rows is already as fast
    # (docs/transformer.md, "Sampling schedules"); the documents are the same either way
    refill: Union[bool, str] = "auto"
    compile: bool = False   # refill only: torch.compile the decode step
    cuda_graph: bool = False  # refill only, CUDA only: replay the decode step from one captured CUDA graph

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
        if self.refill not in (True, False, "auto"):
            raise CollapseError(f"sampling: refill must be true, false or \"auto\", not {self.refill!r}")
        if (self.compile or self.cuda_graph) and self.refill is False:
            raise CollapseError("sampling: compile and cuda_graph need refill = true (a static-shape step)")

    def uses_refill(self, device: torch.device) -> bool:
        """Whether generate() samples with continuous refill on ``device``."""
        if self.refill == "auto":
            return device.type == "cuda" or self.compile or self.cuda_graph
        return bool(self.refill)


@torch.no_grad()
def generate_batch(model: Union[GPTNeo, CausalLM], start_id: int, uniforms: torch.Tensor, cfg: SamplingConfig,
                   eot_id: Optional[int] = None, cache_dtype: Optional[torch.dtype] = None,
                   prefix: Optional[torch.Tensor] = None) -> List[np.ndarray]:
    """One batch: row r uses uniforms[r, step]. Returns each row's new tokens (the
    end-of-text that stopped it excluded). ``cache_dtype``: the KV cache's dtype (under
    autocast, the autocast dtype: SDPA would otherwise cast the whole cached prefix at
    every step); default the weights'. ``prefix`` (rows, P): every row continues
    start_id + its prefix row (a prompt: fed in one forward, not drawn, not returned)."""
    lm = as_lm(model)
    eot_id = start_id if eot_id is None else eot_id
    device = lm.device
    n, steps = uniforms.shape
    width = 1 + (0 if prefix is None else prefix.size(1))
    if steps + width > lm.max_positions:
        raise CollapseError(f"sampling: {steps} new tokens do not fit the model's "
                            f"{lm.max_positions} positions")
    cache = lm.new_cache(n, capacity=steps + width, dtype=cache_dtype)
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
    if prefix is not None:
        tokens = torch.cat([tokens, prefix.to(device=device, dtype=torch.long)], dim=1)
    for step in range(steps):
        logits, cache = lm.next_logits(tokens, cache)
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
                    cache = lm.keep(cache, keep)
                    rows, tok, live = rows[keep], tok[keep], live[keep]
        tokens = tok[:, None]
    out, lengths = out.cpu(), lengths.cpu()
    return [out[i, :int(lengths[i])].numpy() for i in range(n)]


def shard(num_sequences: int, rank: int, world_size: int) -> range:
    """The contiguous block of sequence indices a rank generates."""
    per = -(-num_sequences // world_size)
    return range(min(rank * per, num_sequences), min((rank + 1) * per, num_sequences))


@torch.no_grad()
def generate(model: Union[GPTNeo, CausalLM], num_sequences: int, seed: int, start_id: int, cfg: SamplingConfig,
             indices: Optional[Sequence[int]] = None, precision: str = "auto",
             stats: Optional[Dict[str, int]] = None,
             prefixes: Optional[Callable[[int], np.ndarray]] = None) -> List[np.ndarray]:
    """Sequences ``indices`` (default 0..num_sequences-1), in that order; ``precision``
    as in training (collapse.transformer.precision). ``stats`` (refill only), a dict that
    receives ``decode_steps`` and ``rows``: what a benchmark divides its time by.
    ``prefixes``: document i continues start_id + prefixes(i) (a prompt; not returned).
    Refill needs the GPT-Neo fast path and no prompt; otherwise (another backend, a
    prompt) documents go batch after batch, each batch split by prompt length, with the
    same per-document streams."""
    if num_sequences < 0:
        raise CollapseError("sampling: the number of sequences must be >= 0")
    indices = list(range(num_sequences)) if indices is None else list(indices)
    lm = as_lm(model)
    module = lm.module
    was_training = module.training
    module.eval()
    device = lm.device
    precision = resolve_precision(precision, device)
    ctx = autocast(device, precision)
    bar = Progress("sampling", total=len(indices), unit="doc", enabled=cfg.progress)
    try:
        with ctx:
            if cfg.uses_refill(device) and isinstance(lm, GPTNeoLM) and prefixes is None:
                result = _generate_refill(lm.module, indices, seed, start_id, cfg, autocast_dtype(precision), bar,
                                          {} if stats is None else stats)
            else:
                result = []
                for s in range(0, len(indices), cfg.batch_size):
                    chunk = indices[s:s + cfg.batch_size]
                    result.extend(_generate_chunk(lm, chunk, seed, start_id, cfg, autocast_dtype(precision), prefixes))
                    bar.update(len(chunk))
    finally:
        bar.close()
        module.train(was_training)
    return result


def _generate_chunk(lm: CausalLM, chunk: List[int], seed: int, start_id: int, cfg: SamplingConfig,
                    cache_dtype: Optional[torch.dtype],
                    prefixes: Optional[Callable[[int], np.ndarray]]) -> List[np.ndarray]:
    """One batch of documents; with prompts, one generate_batch per prompt length (rows of
    a batch share their positions: no padding, no attention mask)."""
    if prefixes is None:
        return generate_batch(lm, start_id, sequence_uniforms(seed, chunk, cfg.max_new_tokens), cfg,
                              cache_dtype=cache_dtype)
    prompts = [np.asarray(prefixes(i), dtype=np.int64) for i in chunk]
    out: List[Optional[np.ndarray]] = [None] * len(chunk)
    for size in sorted({p.size for p in prompts}):
        rows = [r for r, p in enumerate(prompts) if p.size == size]
        prefix = torch.from_numpy(np.stack([prompts[r] for r in rows])) if size else None
        u = sequence_uniforms(seed, [chunk[r] for r in rows], cfg.max_new_tokens)
        for r, ids in zip(rows, generate_batch(lm, start_id, u, cfg, cache_dtype=cache_dtype, prefix=prefix)):
            out[r] = ids
    return [o for o in out if o is not None]


def refill_sampler(model: GPTNeo, cfg: SamplingConfig, rows: int, start_id: int,
                   cache_dtype: Optional[torch.dtype] = None) -> RefillSampler:
    """The continuous-refill sampler for ``cfg`` with ``rows`` rows (check_every 0: 1 on
    CPU, 8 on CUDA)."""
    device = model.wte.weight.device
    return RefillSampler(model, rows, cfg.max_new_tokens, start_id=start_id, eot_id=start_id,
                         temperature=cfg.temperature, top_k=cfg.top_k, top_p=cfg.top_p,
                         stop_at_eot=cfg.stop_at_eot, check_every=cfg.check_every or (1 if device.type == "cpu" else 8),
                         cache_dtype=cache_dtype, compile=cfg.compile, cuda_graph=cfg.cuda_graph)


def _generate_refill(model: GPTNeo, indices: List[int], seed: int, start_id: int, cfg: SamplingConfig,
                     cache_dtype: Optional[torch.dtype], bar: Progress, stats: Dict[str, int]) -> List[np.ndarray]:
    result: List[Optional[np.ndarray]] = [None] * len(indices)
    if not indices:
        return []
    sampler = refill_sampler(model, cfg, min(cfg.batch_size, len(indices)), start_id, cache_dtype)
    for k, tokens in sampler.run(indices, seed):
        result[k] = tokens
        bar.update(1)
    stats.update(decode_steps=sampler.decode_steps, rows=sampler.rows)
    return [r for r in result if r is not None]


def generate_distributed(model: Union[GPTNeo, CausalLM], num_sequences: int, seed: int, start_id: int,
                         cfg: SamplingConfig, dist: "object", precision: str = "auto",
                         first: int = 0, prefixes: Optional[Callable[[int], np.ndarray]] = None,
                         sampler: Optional[Callable[[List[int]], List[np.ndarray]]] = None) -> List[np.ndarray]:
    """Sequences first .. first + num_sequences - 1 (``prefixes``: as in generate;
    ``sampler``: another way to make the documents of a list of indices, instead of
    generate: the hf family's beam search). Under torchrun: each rank samples its
    contiguous part, then every rank receives all of them in index order
    (torch.distributed.all_gather_object)."""
    rank, world = getattr(dist, "rank", 0), getattr(dist, "world_size", 1)
    if rank != 0 and cfg.progress:
        cfg = replace(cfg, progress=False)  # one progress report, from rank 0
    part = shard(num_sequences, rank, world)
    indices = list(range(first + part.start, first + part.stop))
    mine = (sampler(indices) if sampler is not None else
            generate(model, num_sequences, seed, start_id, cfg, indices=indices, precision=precision, prefixes=prefixes))
    if world <= 1:
        return mine
    import torch.distributed as td

    gathered: List[Optional[List[np.ndarray]]] = [None] * world
    td.all_gather_object(gathered, mine)
    return [seq for part in gathered for seq in (part or [])]
