"""Checkpoints inside a generation: training state every N steps, sampled shards.

Training writes one file, ``train_state.pt``: the model's and the optimizer's state
dicts, the GradScaler's, and the position in the data order (epoch, step within the
epoch) with the statistics so far. The data order and dropout are functions of (seed,
epoch, step), not of a random generator's history, so these are all a resumed training
needs to continue exactly where the killed one was: on CPU the resumed run ends with the
very bytes of an uninterrupted one. When training ends the file is rewritten with the
position "finished" and the final weights only (no optimizer), so a run killed while
sampling does not train again.

Sampling writes each finished shard of sequences (token ids + offsets) as one ``.npz``.

Files are written atomically (temporary name, fsync, rename) and read with
``torch.load(weights_only=True)`` / ``numpy.load(allow_pickle=False)``: no code is
unpickled.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import torch

from ..errors import CollapseError
from ..files import atomic_path

TRAIN_STATE = "train_state.pt"


@dataclass
class CheckpointPolicy:
    """Where and how often training saves its state: every ``every_steps`` optimizer steps
    if that is > 0, else whenever ``every_seconds`` of training have passed since the last
    save (default 600 s: about every 10 minutes of work)."""

    directory: str
    every_steps: int = 0
    every_seconds: float = 600.0

    def __post_init__(self) -> None:
        if not isinstance(self.every_steps, int) or self.every_steps < 0:
            raise CollapseError("checkpoint_steps must be a non-negative integer")
        if not (self.every_seconds > 0 and math.isfinite(self.every_seconds)):
            raise CollapseError("checkpoint_minutes must be a positive number")

    @property
    def train_path(self) -> str:
        return os.path.join(self.directory, TRAIN_STATE)

    def due(self, steps: int, seconds_since_save: float) -> bool:
        if self.every_steps > 0:
            return steps % self.every_steps == 0
        return seconds_since_save >= self.every_seconds


def save_training_state(path: str, model: torch.nn.Module, optimizer: Optional[torch.optim.Optimizer],
                        scaler: Any, position: Dict[str, Any]) -> None:
    state = {"model": model.state_dict(), "position": position}
    if optimizer is not None:
        state["optimizer"] = optimizer.state_dict()
        state["scaler"] = scaler.state_dict()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_training_state(path: str, device: torch.device) -> Optional[Dict[str, Any]]:
    if not os.path.exists(path):
        return None
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except Exception as e:  # noqa: BLE001 - a file torch cannot read is not a checkpoint of ours
        raise CollapseError(f"{path}: unreadable training checkpoint ({e})") from None


# --------------------------------------------------------------------------------------
# Sampled shards

def shard_path(directory: str, seed: int, num_sequences: int, shard: int) -> str:
    """Shard ``shard`` of the draw (seed, num_sequences)."""
    return os.path.join(directory, f"sample_{seed & 0xFFFFFFFFFFFFFFFF:016x}_{num_sequences}_{shard:06d}.npz")


def save_shard(path: str, sequences: Sequence[np.ndarray]) -> None:
    lengths = np.fromiter((s.size for s in sequences), dtype=np.int64, count=len(sequences))
    offsets = np.zeros(len(sequences) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    flat = np.concatenate(list(sequences)).astype(np.int32) if sequences else np.zeros(0, np.int32)
    # the folder may be new: a shared generation-0 model samples into a cell that did not fit it
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:  # a file object: savez would add ".npz" to a name
        np.savez(f, tokens=flat, offsets=offsets)


def load_shard(path: str) -> List[np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        flat, offsets = z["tokens"].astype(np.int64), z["offsets"]
    return [flat[offsets[i]:offsets[i + 1]] for i in range(offsets.size - 1)]
