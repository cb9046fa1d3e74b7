"""Ranks under torchrun: who this process is, and the few collectives the loop and the family need.

``torchrun --nproc_per_node N -m collapse run CONFIG`` starts N processes with WORLD_SIZE,
RANK and LOCAL_RANK set. Every rank runs the same loop over the same cells in the same
order and trains / samples together (DDP, shards of sequences); rank 0 alone owns the run
directory (checks, config, manifest, metrics, commit points, plots, the printed summary)
and prepares what is derived once (the real data, generation 0's tokenizer), which it
hands to the others with ``broadcast``. Without WORLD_SIZE > 1 everything here is a no-op
for one process and torch.distributed is not touched. It lives with the transformer
because torchrun is for the transformer family (DDP); the loop imports it only when
WORLD_SIZE > 1, so an n-gram run never imports torch.

The process group is torch.distributed's: NCCL when CUDA is available, else gloo.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, List, Optional, TypeVar

from ..errors import CollapseError

T = TypeVar("T")


@dataclass(frozen=True)
class Ranks:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched() -> bool:
    """Whether this process was started by torchrun with more than one rank."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


_JOINED: Optional[Ranks] = None  # this process's ranks once it has joined the group


def ranks() -> Ranks:
    """This process's ranks; joins the process group on first use under torchrun (once:
    after shutdown() the ranks are still known, the group is not joined again)."""
    global _JOINED
    if not launched():
        return Ranks()
    if _JOINED is not None:
        return _JOINED
    import torch
    import torch.distributed as td

    if not td.is_available():
        raise CollapseError("WORLD_SIZE > 1 but torch.distributed is not available")
    per_node = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    if torch.cuda.is_available() and per_node > torch.cuda.device_count():
        # NCCL cannot put two ranks on one GPU; every rank sees the same numbers and stops
        # here, before joining the group, instead of hanging or failing with "duplicate GPU"
        raise CollapseError(f"torchrun started {per_node} processes on a node with {torch.cuda.device_count()} "
                            f"GPU(s): one rank per GPU (--nproc_per_node {torch.cuda.device_count()} or fewer)")
    if not td.is_initialized():
        td.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    r = Ranks(rank=td.get_rank(), world_size=td.get_world_size(), local_rank=int(os.environ.get("LOCAL_RANK", "0")))
    if torch.cuda.is_available():
        torch.cuda.set_device(r.local_rank)
    _JOINED = r
    return r


def broadcast(value: Optional[T] = None) -> T:
    """Rank 0's ``value``, on every rank (pickled through torch.distributed)."""
    if not launched():
        return value  # type: ignore[return-value]
    import torch.distributed as td

    ranks()
    box: List[Any] = [value]
    td.broadcast_object_list(box, src=0)
    return box[0]


def on_main(fn: Callable[[], T]) -> T:
    """Run ``fn`` on rank 0 only and give every rank its result; an exception raised there
    is raised again on every rank (as CollapseError with the same message when it was one),
    so all ranks fail together instead of leaving the others waiting."""
    if not launched():
        return fn()
    outcome: Any = None
    if ranks().is_main:
        try:
            outcome = ("ok", fn())
        except CollapseError as e:
            outcome = ("error", str(e))
        except Exception as e:  # noqa: BLE001 - re-raised below, on every rank
            outcome = ("crash", f"{type(e).__name__}: {e}")
    kind, payload = broadcast(outcome)
    if kind == "error":
        raise CollapseError(payload)
    if kind == "crash":
        raise RuntimeError(f"rank 0 failed: {payload}")
    return payload


def barrier() -> None:
    if launched():
        import torch.distributed as td

        ranks()
        td.barrier()


def shutdown(clean: bool = True) -> None:
    """Leave the process group (at the end of a command under torchrun). ``clean``: every
    rank got here without an error, so they wait for each other first (a rank that tears
    gloo down while another still talks to it can abort that one at exit); after an error
    no rank waits, since the others may never arrive."""
    if launched():
        import torch.distributed as td

        if td.is_initialized():
            if clean:
                td.barrier()
            td.destroy_process_group()
