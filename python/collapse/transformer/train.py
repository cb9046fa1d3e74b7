"""Training GPT-Neo from scratch: the collapse paper's recipe as the default.

AdamW (lr 5e-4 constant, weight decay 0.1 on matrices and embeddings, betas 0.9/0.95),
an effective batch of 320 sequences reached by gradient accumulation over micro-batches,
3 epochs. ``precision``: fp32, bf16 autocast or fp16 autocast with loss scaling (the
paper's), on CUDA or CPU (collapse.transformer.precision); the fused AdamW kernel on CUDA;
``compile``: torch.compile of the model's body and the loss's fused chunk kernel (equal
to eager within float32 rounding, docs/transformer.md). The loss is computed a chunk of
tokens at a time (collapse.transformer.loss), never holding the whole micro-batch's
logits. On a GPU the rows live on it (Batches) and the step losses are read back about
once a second, so the host never waits for the GPU between steps. Under torchrun
(WORLD_SIZE > 1) the model is wrapped in DistributedDataParallel and each optimizer
step's sequences are split over the ranks.

Resumable: each epoch's order is a permutation seeded by (seed, epoch) and dropout is
reseeded from (seed, rank, step) at every step, so the model, the optimizer, the loss
scaler and the position (epoch, step) are the whole state; with a CheckpointPolicy they
are saved every N steps (or minutes) and a restarted train() continues from them
(collapse.transformer.checkpoint).

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
import sys
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np
import torch

from .. import _core
from .distributed import Ranks, ranks
from ..errors import CollapseError
from .checkpoint import CheckpointPolicy, load_training_state, save_training_state
from .progress import Progress
from .backend import CausalLM, GPTNeoLM
from .model import GPTNeo, GPTNeoConfig
from .precision import autocast, autocast_dtype, check_precision, grad_scaler, resolve_precision

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
    precision: str = "auto"        # fp32 | bf16 | fp16 (+ loss scaling) | auto (bf16 on CUDA, else fp32)
    deterministic: bool = False    # torch.use_deterministic_algorithms (bit-identical reruns on CUDA)
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
        check_precision(self.precision)
        for name in ("compile", "deterministic"):
            if not isinstance(getattr(self, name), bool):
                raise CollapseError(f"training: {name} must be true or false, got {getattr(self, name)!r}")


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
        # one int32 stream (end-of-text + documents, padded to whole rows) and the rows as a
        # read-only strided view of it: adjacent rows share one token, nothing is copied
        n_rows = max(1, math.ceil(np.asarray(flat).size / context_length))
        padded = np.full(n_rows * context_length + 1, PAD, dtype=np.int32)
        padded[0] = eot_id
        padded[1:1 + np.asarray(flat).size] = flat
        return np.lib.stride_tricks.sliding_window_view(padded, width)[::context_length]
    if packing == "truncate":
        n = offsets.size - 1
        rows = np.full((n, width), PAD, dtype=np.int32)
        rows[:, 0] = eot_id
        for i in range(n):
            doc = flat[offsets[i]:offsets[i + 1]][:context_length]
            rows[i, 1:1 + doc.size] = doc
        return rows
    raise CollapseError(f"training: packing {packing!r} (choose pack or truncate)")


class Batches:
    """Micro-batches (inputs, targets) of ``rows`` on the training device.

    On the host (the CPU, or rows too large for the GPU) a micro-batch is gathered with
    numpy and copied over; on a GPU the rows are put on it once (1M stories: about 0.9 GB
    of int32) and a micro-batch is gathered there from the epoch's order, also on the
    GPU: no copy, no host work and no wait for the GPU between micro-batches. Both give
    the same tensors (tests/test_train_compile.py). What the step needs on the host (its
    target count, the columns a micro-batch keeps) comes from per-row figures computed
    once."""

    def __init__(self, rows: np.ndarray, eot_id: int, device: torch.device, resident: bool) -> None:
        self.rows, self.eot_id, self.device = rows, eot_id, device
        # each row's last non-padding column (-1: none) and its number of targets, a slab
        # of rows at a time (no mask of the whole array in memory)
        self.last_column = np.empty(rows.shape[0], dtype=np.int64)
        self.row_targets = np.empty(rows.shape[0], dtype=np.int64)
        slab = max(1, (1 << 24) // max(1, rows.shape[1]))
        for a in range(0, rows.shape[0], slab):
            filled = rows[a:a + slab] != PAD
            self.last_column[a:a + slab] = np.where(filled.any(axis=1),
                                                    rows.shape[1] - 1 - np.argmax(filled[:, ::-1], axis=1), -1)
            self.row_targets[a:a + slab] = filled[:, 1:].sum(axis=1)
        self.table: Optional[torch.Tensor] = None
        self.order: Optional[torch.Tensor] = None
        if resident:
            self.table = torch.empty(rows.shape, dtype=torch.int32, device=device)
            for a in range(0, rows.shape[0], slab):
                self.table[a:a + slab].copy_(torch.from_numpy(np.ascontiguousarray(rows[a:a + slab])))

    def new_epoch(self, order: np.ndarray) -> None:
        self.host_order = order
        if self.table is not None:
            self.order = torch.from_numpy(order).to(self.device)

    def targets(self, positions: range) -> int:
        """Targets in the rows at ``positions`` of the epoch's order."""
        return int(self.row_targets[self.host_order[positions.start:positions.stop:positions.step]].sum())

    def micro(self, positions: range) -> Tuple[torch.Tensor, torch.Tensor]:
        index = self.host_order[positions.start:positions.stop:positions.step]
        # trim columns that are padding in every row (truncate mode: short documents)
        width = max(2, int(self.last_column[index].max()) + 1)
        if self.table is not None:
            batch = self.table[self.order[positions.start:positions.stop:positions.step], :width].long()  # type: ignore[index]
            inputs = torch.where(batch[:, :-1] == PAD, self.eot_id, batch[:, :-1])
            targets = torch.where(batch[:, 1:] == PAD, -100, batch[:, 1:])
            return inputs, targets
        t = torch.from_numpy(self.rows[index][:, :width].astype(np.int64))
        inputs = t[:, :-1].clone()
        inputs[inputs == PAD] = self.eot_id
        targets = t[:, 1:].clone()
        targets[targets == PAD] = -100
        return inputs.to(self.device, non_blocking=True), targets.to(self.device, non_blocking=True)


RESIDENT_SHARE = 0.125  # rows are put on a GPU when they take at most this share of its memory


def rows_on_device(rows: np.ndarray, device: torch.device) -> bool:
    """Whether train() keeps ``rows`` on ``device`` (a GPU with room for them)."""
    if device.type != "cuda":
        return False
    total = torch.cuda.get_device_properties(device).total_memory
    return rows.shape[0] * rows.shape[1] * 4 <= RESIDENT_SHARE * total


# Ranks under torchrun: collapse.distributed (one definition for the loop and the family)
Dist = Ranks
dist_from_env = ranks


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


def _optimizer(model: torch.nn.Module, cfg: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]  # biases and LayerNorm
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    extra = {"fused": True} if device.type == "cuda" else {}
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, **extra)


DROPOUT_TAG = 0x44524F504F5554    # "DROPOUT": purpose tags for derive_seed
ORDER_TAG = 0x4F52444552         # "ORDER"


def epoch_order(n_rows: int, seed: int, epoch: int) -> np.ndarray:
    """The rows' order in ``epoch``: a permutation seeded by (seed, epoch) alone."""
    g = torch.Generator().manual_seed(_core.derive_seed(_core.derive_seed(seed & 0xFFFFFFFFFFFFFFFF, ORDER_TAG), epoch)
                                      & 0x7FFFFFFFFFFFFFFF)
    return torch.randperm(n_rows, generator=g).numpy()


def _step_seed(seed: int, rank: int, step: int) -> int:
    key = _core.derive_seed(_core.derive_seed(seed & 0xFFFFFFFFFFFFFFFF, DROPOUT_TAG), rank)
    return _core.derive_seed(key, step) & 0x7FFFFFFFFFFFFFFF


def set_deterministic(on: bool) -> None:
    """torch's deterministic algorithms (and the cuBLAS workspace setting they need on
    CUDA); what makes two CUDA runs bit-identical, at some speed cost."""
    if not on:
        return
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False


def compile_body(model: GPTNeo) -> None:
    """Training with compile = true: the model's body (embeddings, blocks, final LayerNorm)
    through torch.compile, the loss left out of the graph (its chunk loop would be unrolled
    into it) with its own fused kernel (``compiled=True`` in forward). The usual
    micro-batch shape compiles a static graph, a second shape (a short last micro-batch)
    one for any batch: a run compiles at most twice."""
    GPTNeoLM(model).compile_body()


def uncompile_body(model: GPTNeo) -> None:
    """The plain model again (sampling and scoring after training run eagerly)."""
    GPTNeoLM(model).uncompile_body()


def train(model_config: GPTNeoConfig, rows: np.ndarray, eot_id: int, cfg: TrainConfig, seed: int,
          dist: Optional[Dist] = None, checkpoint: Optional[CheckpointPolicy] = None) -> Tuple[GPTNeo, TrainStats]:
    """Train a freshly initialised GPT-Neo (the hand-written fast path) on ``rows``:
    train_lm with GPTNeo(model_config). Returns the GPTNeo and the statistics."""
    lm, stats = train_lm(lambda: GPTNeoLM(GPTNeo(model_config)), rows, eot_id, cfg, seed, dist, checkpoint)
    return lm.module, stats  # type: ignore[return-value]


def train_lm(build: Callable[[], CausalLM], rows: np.ndarray, eot_id: int, cfg: TrainConfig, seed: int,
             dist: Optional[Dist] = None, checkpoint: Optional[CheckpointPolicy] = None) -> Tuple[CausalLM, TrainStats]:
    """Train the causal LM that ``build()`` makes (collapse.transformer.backend: called right
    after torch.manual_seed(seed), so a fresh initialisation follows the seed; it may also
    load weights: a pretrained or the previous generation's model) on ``rows`` (make_rows).
    Returns it (on the training device, in eval mode) and statistics. Seeded: the initial
    weights, the order of every epoch and dropout all follow ``seed``.

    With ``checkpoint``: the state is saved by rank 0 as the policy says and at the end;
    a train_lm() that finds a saved state continues from it (all ranks read it)."""
    dist = dist or dist_from_env()
    device = resolve_device(cfg.device)
    if dist.enabled and device.type == "cuda":
        device = torch.device("cuda", dist.local_rank)
    if rows.ndim != 2 or rows.shape[0] == 0:
        raise CollapseError("training: no sequences to train on")
    set_deterministic(cfg.deterministic)
    precision = resolve_precision(cfg.precision, device)
    loss_dtype = autocast_dtype(precision)

    torch.manual_seed(seed)
    lm = build()
    if rows.shape[1] - 1 > lm.max_positions:
        raise CollapseError(f"training: context {rows.shape[1] - 1} exceeds the model's "
                            f"{lm.max_positions} positions")
    model = lm.module.to(device)
    opt = _optimizer(model, cfg, device)
    scaler = grad_scaler(device, precision)
    stats = TrainStats()
    start_epoch, start_step = 0, 0
    saved = load_training_state(checkpoint.train_path, device) if checkpoint else None
    if saved is not None:
        pos = saved["position"]
        model.load_state_dict(saved["model"])
        if "optimizer" in saved:
            opt.load_state_dict(saved["optimizer"])
            scaler.load_state_dict(saved["scaler"])
        start_epoch, start_step = int(pos["epoch"]), int(pos["step_in_epoch"])
        stats = TrainStats(steps=int(pos["steps"]), tokens=int(pos["tokens"]), seconds=float(pos["seconds"]),
                           losses=[float(x) for x in pos["losses"]])
        if dist.is_main and start_epoch < cfg.epochs:
            sys.stderr.write(f"training: resumed from {checkpoint.train_path} at step {stats.steps} "  # type: ignore[union-attr]
                             f"(epoch {start_epoch + 1}, step {start_step} of the epoch)\n")
    model.train()
    step_model: torch.nn.Module = lm.loss_module
    if dist.enabled:
        from torch.nn.parallel import DistributedDataParallel as DDP

        step_model = DDP(step_model, device_ids=[dist.local_rank] if device.type == "cuda" else None)
    if cfg.compile:
        lm.compile_body()
    dropout = lm.has_dropout

    def position(epoch: int, step_in_epoch: int, elapsed: float) -> Dict[str, Any]:
        return {"epoch": epoch, "step_in_epoch": step_in_epoch, "steps": stats.steps, "tokens": stats.tokens,
                "seconds": elapsed, "losses": list(stats.losses)}

    n_rows = rows.shape[0]
    per_step = min(cfg.batch_size, n_rows)
    batches = Batches(rows, eot_id, device, resident=rows_on_device(rows, device))
    t0 = time.perf_counter() - stats.seconds
    last_save = time.perf_counter()
    # each step's loss stays on the device until it is wanted (a log line, a checkpoint, the
    # progress bar about once a second, the end): no wait for the GPU at every step
    pending: List[Tuple[torch.Tensor, int]] = []
    last_flush = time.perf_counter()

    def flush() -> None:
        nonlocal last_flush
        if pending:
            values = torch.stack([loss for loss, _ in pending]).tolist()
            stats.losses.extend(v / n for v, (_, n) in zip(values, pending))
            pending.clear()
        last_flush = time.perf_counter()

    # what is left to train (a resumed run starts its bar at the checkpoint)
    bar = Progress("training", total=max(cfg.epochs * math.ceil(n_rows / per_step) - stats.steps, 0), unit="step",
                   enabled=cfg.progress and dist.is_main)
    for epoch in range(start_epoch, cfg.epochs):
        batches.new_epoch(epoch_order(n_rows, seed, epoch))
        starts = range(0, n_rows, per_step)
        for step_in_epoch in range(start_step if epoch == start_epoch else 0, len(starts)):
            # positions in the epoch's order: this step's rows, then this rank's share
            step_rows = range(starts[step_in_epoch], min(starts[step_in_epoch] + per_step, n_rows))
            # targets in this step over all ranks: the loss is their mean
            step_targets = batches.targets(step_rows)
            if step_targets == 0:
                continue
            if dropout:
                torch.manual_seed(_step_seed(seed, dist.rank, stats.steps))
            mine, weight = step_rows[dist.rank::dist.world_size], 1.0
            if len(mine) == 0:
                # a last step with fewer rows than ranks: this rank joins DDP's all-reduce with
                # zero gradients (a forward on one row, weighted 0), so N ranks make exactly the
                # update one process makes
                mine, weight = step_rows[:1], 0.0
            micro = [mine[i:i + cfg.micro_batch_size] for i in range(0, len(mine), cfg.micro_batch_size)]
            step_loss = torch.zeros((), device=device)
            for j, idx in enumerate(micro):
                inputs, targets = batches.micro(idx)
                sync = (j == len(micro) - 1) or not dist.enabled
                ctx = nullcontext() if sync else step_model.no_sync()  # type: ignore[operator]
                with ctx:
                    with autocast(device, precision):
                        nll = step_model(inputs, targets=targets, loss_dtype=loss_dtype, compiled=cfg.compile)
                    # DDP averages gradients over ranks, hence the world_size factor
                    scaler.scale(nll * (weight * dist.world_size / step_targets)).backward()
                step_loss += nll.detach() * weight
            if cfg.grad_clip > 0:
                scaler.unscale_(opt)
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
            scaler.step(opt)  # skipped (and the scale lowered) if fp16 gradients overflowed
            scaler.update()
            opt.zero_grad(set_to_none=True)
            if dist.enabled:
                import torch.distributed as td

                td.all_reduce(step_loss)
            stats.steps += 1
            stats.tokens += step_targets
            pending.append((step_loss, step_targets))
            log = cfg.log_every and dist.is_main and stats.steps % cfg.log_every == 0
            save = checkpoint and dist.is_main and checkpoint.due(stats.steps, time.perf_counter() - last_save)
            if log or save or (bar.enabled and time.perf_counter() - last_flush >= 1.0):
                flush()
                bar.update(1, loss=stats.losses[-1], tok_per_s=stats.tokens / (time.perf_counter() - t0))
            else:
                bar.update(1)
            if log:
                rate = stats.tokens / (time.perf_counter() - t0)
                print(f"epoch {epoch + 1} step {stats.steps}: loss {stats.losses[-1]:.4f}, {rate:,.0f} tok/s",
                      flush=True)
            if save:
                save_training_state(checkpoint.train_path, model, opt, scaler,  # type: ignore[union-attr]
                                    position(epoch, step_in_epoch + 1, time.perf_counter() - t0))
                last_save = time.perf_counter()
    flush()
    bar.close()
    if device.type == "cuda":
        torch.cuda.synchronize()
    stats.seconds = time.perf_counter() - t0
    lm.uncompile_body()
    finished_before = saved is not None and "optimizer" not in saved
    if checkpoint and dist.is_main and not finished_before:
        # finished: the final weights, so a run killed later (while sampling) does not train again
        save_training_state(checkpoint.train_path, model, None, None, position(cfg.epochs, 0, stats.seconds))
    model.eval()
    return lm, stats
