"""Training GPT-Neo from scratch: the collapse paper's recipe as the default.

AdamW (lr 5e-4 constant, weight decay 0.1 on matrices and embeddings, betas 0.9/0.95),
an effective batch of 320 sequences reached by gradient accumulation over micro-batches,
3 epochs. On CUDA: bf16 autocast and the fused AdamW kernel; torch.compile on request.
Under torchrun (WORLD_SIZE > 1) the model is wrapped in DistributedDataParallel and each
optimizer step's sequences are split over the ranks.

Sequences: every document is followed by the end-of-text token and the stream starts
with one, so the model learns where stories begin and end (generation is prompted with
end-of-text). ``packing="pack"`` cuts the stream into rows of context_length + 1 tokens
(adjacent rows share one token, so every token is a target once); ``"truncate"`` makes
one row per document (end-of-text, document, end-of-text), cut to the context and padded,
padding ignored by the loss.
"""

from __future__ import annotations

import math
import os
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import CollapseError
from .progress import Progress
from .model import GPTNeo, GPTNeoConfig

PAD = -1  # padding in row arrays; becomes ignore_index in targets
PACKINGS = ("pack", "truncate")


@dataclass
class TrainConfig:
    lr: float = 5e-4
    weight_decay: float = 0.1
    betas: Tuple[float, float] = (0.9, 0.95)
    eps: float = 1e-8
    batch_size: int = 320          # sequences per optimizer step, all ranks together
    micro_batch_size: int = 16     # sequences per forward/backward on one rank
    epochs: int = 3
    context_length: int = 512
    packing: str = "pack"
    grad_clip: float = 1.0         # max global grad norm (transformers' Trainer default); 0: off
    device: str = "auto"
    bf16: bool = True              # autocast to bfloat16 on CUDA (ignored on CPU)
    compile: bool = False
    log_every: int = 0             # print loss every n steps on rank 0 (0: quiet)
    progress: bool = False         # progress bar / periodic lines on rank 0 (collapse.transformer.progress)

    def __post_init__(self) -> None:
        self.betas = tuple(float(b) for b in self.betas)  # type: ignore[assignment]
        if self.lr <= 0 or not math.isfinite(self.lr):
            raise CollapseError("training: lr must be positive")
        if self.weight_decay < 0:
            raise CollapseError("training: weight_decay must be >= 0")
        for name in ("batch_size", "micro_batch_size", "epochs", "context_length"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise CollapseError(f"training: {name} must be a positive integer, got {v!r}")
        if self.packing not in PACKINGS:
            raise CollapseError(f"training: packing {self.packing!r} (choose pack or truncate)")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise CollapseError("training: betas must be two numbers in [0, 1)")


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as e:
        raise CollapseError(f"bad device {device!r} ({e})") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise CollapseError("device cuda requested but CUDA is not available")
    return dev


# ---------------------------------------------------------------------------------------
# Rows of tokens

def make_rows(flat: np.ndarray, offsets: np.ndarray, eot_id: int, context_length: int,
              packing: str = "pack") -> np.ndarray:
    """int32 array (rows, context_length + 1); PAD where a row has no token.

    ``flat``/``offsets``: every document's ids, each already followed by end-of-text
    (TextTokenizer.encode_documents)."""
    width = context_length + 1
    if packing == "pack":
        stream = np.concatenate([np.asarray([eot_id], dtype=np.int64), np.asarray(flat, dtype=np.int64)])
        n_rows = max(1, math.ceil((stream.size - 1) / context_length))
        padded = np.full(n_rows * context_length + 1, PAD, dtype=np.int64)
        padded[:stream.size] = stream
        idx = np.arange(n_rows)[:, None] * context_length + np.arange(width)[None, :]
        return padded[idx].astype(np.int32)
    if packing == "truncate":
        n = offsets.size - 1
        rows = np.full((n, width), PAD, dtype=np.int32)
        rows[:, 0] = eot_id
        for i in range(n):
            doc = flat[offsets[i]:offsets[i + 1]][:context_length]
            rows[i, 1:1 + doc.size] = doc
        return rows
    raise CollapseError(f"training: packing {packing!r} (choose pack or truncate)")


def _micro_batch(rows: np.ndarray, index: np.ndarray, eot_id: int,
                 device: torch.device) -> Tuple[torch.Tensor, torch.Tensor]:
    batch = rows[index]
    # trim columns that are padding in every row (truncate mode: short documents)
    filled = np.nonzero((batch != PAD).any(axis=0))[0]
    batch = batch[:, :max(2, int(filled[-1]) + 1)] if filled.size else batch[:, :2]
    t = torch.from_numpy(batch.astype(np.int64))
    inputs = t[:, :-1].clone()
    inputs[inputs == PAD] = eot_id
    targets = t[:, 1:].clone()
    targets[targets == PAD] = -100
    return inputs.to(device, non_blocking=True), targets.to(device, non_blocking=True)


# ---------------------------------------------------------------------------------------
# Distributed helpers (torchrun sets WORLD_SIZE, RANK, LOCAL_RANK)

@dataclass
class Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def dist_from_env() -> Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    import torch.distributed as td

    if not td.is_available():
        raise CollapseError("WORLD_SIZE > 1 but torch.distributed is not available")
    if not td.is_initialized():
        td.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    d = Dist(rank=td.get_rank(), world_size=td.get_world_size(), local_rank=int(os.environ.get("LOCAL_RANK", "0")))
    if torch.cuda.is_available():
        torch.cuda.set_device(d.local_rank)
    return d


# ---------------------------------------------------------------------------------------

@dataclass
class TrainStats:
    steps: int = 0
    tokens: int = 0                  # target tokens processed (all ranks)
    seconds: float = 0.0
    losses: List[float] = field(default_factory=list)  # mean loss per optimizer step

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else float("nan")

    def to_dict(self) -> Dict[str, Any]:
        d = asdict(self)
        d["tokens_per_second"] = self.tokens_per_second
        d["final_loss"] = self.losses[-1] if self.losses else float("nan")
        del d["losses"]
        return d


def _optimizer(model: GPTNeo, cfg: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]  # biases and LayerNorm
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    extra = {"fused": True} if device.type == "cuda" else {}
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, **extra)


def train(model_config: GPTNeoConfig, rows: np.ndarray, eot_id: int, cfg: TrainConfig, seed: int,
          dist: Optional[Dist] = None) -> Tuple[GPTNeo, TrainStats]:
    """Train a freshly initialised GPT-Neo on ``rows`` (make_rows). Returns it (on the
    training device, in eval mode) and statistics. Seeded: the initial weights, the
    shuffle of every epoch and dropout all follow ``seed``."""
    dist = dist or dist_from_env()
    device = resolve_device(cfg.device)
    if dist.enabled and device.type == "cuda":
        device = torch.device("cuda", dist.local_rank)
    if rows.ndim != 2 or rows.shape[0] == 0:
        raise CollapseError("training: no sequences to train on")
    if rows.shape[1] - 1 > model_config.max_position_embeddings:
        raise CollapseError(f"training: context {rows.shape[1] - 1} exceeds the model's "
                            f"{model_config.max_position_embeddings} positions")

    torch.manual_seed(seed)
    model = GPTNeo(model_config).to(device)
    model.train()
    opt = _optimizer(model, cfg, device)
    step_model: torch.nn.Module = model
    if dist.enabled:
        from torch.nn.parallel import DistributedDataParallel as DDP

        step_model = DDP(model, device_ids=[dist.local_rank] if device.type == "cuda" else None)
    if cfg.compile:
        step_model = torch.compile(step_model)
    use_bf16 = cfg.bf16 and device.type == "cuda"
    autocast = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if use_bf16 else nullcontext

    n_rows = rows.shape[0]
    per_step = min(cfg.batch_size, n_rows)
    stats = TrainStats()
    t0 = time.perf_counter()
    shuffle_gen = torch.Generator().manual_seed(seed)
    bar = Progress("training", total=cfg.epochs * math.ceil(n_rows / per_step), unit="step",
                   enabled=cfg.progress and dist.is_main)
    for epoch in range(cfg.epochs):
        order = torch.randperm(n_rows, generator=shuffle_gen).numpy()
        for s in range(0, n_rows, per_step):
            step_rows = order[s:s + per_step]
            if step_rows.size < dist.world_size:
                continue  # a last step too small to give every rank a row (all ranks skip it)
            # targets in this step over all ranks: the loss is their mean
            step_targets = int(((rows[step_rows, 1:] != PAD)).sum())
            if step_targets == 0:
                continue
            mine = step_rows[dist.rank::dist.world_size]
            micro = [mine[i:i + cfg.micro_batch_size] for i in range(0, mine.size, cfg.micro_batch_size)]
            step_loss = torch.zeros((), device=device)
            for j, idx in enumerate(micro):
                inputs, targets = _micro_batch(rows, idx, eot_id, device)
                sync = (j == len(micro) - 1) or not dist.enabled
                ctx = nullcontext() if sync else step_model.no_sync()  # type: ignore[operator]
                with ctx:
                    with autocast():
                        logits = step_model(inputs)
                    nll = F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.view(-1),
                                          ignore_index=-100, reduction="sum")
                    # DDP averages gradients over ranks, hence the world_size factor
                    (nll * (dist.world_size / step_targets)).backward()
                step_loss += nll.detach()
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            opt.step()
            opt.zero_grad(set_to_none=True)
            if dist.enabled:
                import torch.distributed as td

                td.all_reduce(step_loss)
            stats.steps += 1
            stats.tokens += step_targets
            stats.losses.append(float(step_loss) / step_targets)
            bar.update(1, loss=stats.losses[-1], tok_per_s=stats.tokens / (time.perf_counter() - t0))
            if cfg.log_every and dist.is_main and stats.steps % cfg.log_every == 0:
                rate = stats.tokens / (time.perf_counter() - t0)
                print(f"epoch {epoch + 1} step {stats.steps}: loss {stats.losses[-1]:.4f}, {rate:,.0f} tok/s",
                      flush=True)
    bar.close()
    if device.type == "cuda":
        torch.cuda.synchronize()
    stats.seconds = time.perf_counter() - t0
    model.eval()
    return model, stats
