"""The loop under torchrun and on GPUs: which process owns the run directory, and where cells run.

Under ``torchrun --nproc_per_node N -m collapse run CONFIG`` (WORLD_SIZE > 1) every rank
runs the same cells in the same order, one cell at a time, and trains and samples it
together (the transformer family: DDP, shards of sequences). Rank 0 alone owns the run
directory: it checks it, writes config.toml, manifest.json, the metrics, every commit
point and artifact, and prints; ``main_only`` runs such a step on rank 0 and gives its
result (or its error) to every rank. The collectives are collapse.transformer.distributed's
(torch.distributed), imported only when WORLD_SIZE > 1, so a one-process run — and every
n-gram run — never imports torch here.

Devices: a transformer cell never shares a GPU with another unless the config says so
(``[model] share_device = true``). ``plan_workers`` caps a local process pool at one worker
per visible GPU (with a warning naming the cap) and ``claim_device`` gives each worker its
own GPU (CUDA_VISIBLE_DEVICES, set before the worker imports torch).
"""

from __future__ import annotations

import os
from typing import Any, Callable, List, Optional, Tuple, TypeVar

from ..errors import CollapseError
from .registry import registration
from .workers import end_with

T = TypeVar("T")


def launched() -> bool:
    """Whether torchrun started this process as one of several ranks (the test of
    collapse.transformer.distributed.launched, made here without importing torch)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def torchrun() -> Any:
    """collapse.transformer.distributed when this process is one of several torchrun ranks,
    else None."""
    if not launched():
        return None
    from ..transformer import distributed

    # torchrun starts each rank in a session of its own: without this a rank would outlive
    # an agent killed with SIGKILL (and go on writing into the run directory)
    end_with(os.getppid())
    return distributed


def is_main() -> bool:
    """Whether this process owns the run directory (rank 0, or the only process)."""
    dist = torchrun()
    return dist is None or dist.ranks().is_main


def main_only(fn: Callable[[], T]) -> T:
    """``fn()`` on rank 0 only, its result (or its error) on every rank; ``fn()`` itself
    without torchrun."""
    dist = torchrun()
    return fn() if dist is None else dist.on_main(fn)


def finish(clean: bool = True) -> None:
    """Leave the process group at the end of a command under torchrun (NCCL warns otherwise);
    ``clean``: the command ended without an error on this rank (see distributed.shutdown)."""
    dist = torchrun()
    if dist is not None:
        dist.shutdown(clean)


def check_torchrun(family: str, executor: str, workers: int) -> Optional[str]:
    """Under torchrun: an error for what cannot run there (a family whose registration does
    not say ``Resources.torchrun``, Ray), a warning line (or None) for a setting that is
    ignored there."""
    if not launched():
        return None
    if not registration(family).resources.torchrun:
        raise CollapseError(f"torchrun runs families whose ranks train together (DDP), such as the transformer "
                            f"family; a {family} study runs in one process (experiment.workers / "
                            f"executor = \"ray\" parallelise it)")
    if executor == "ray":
        raise CollapseError("experiment.executor = \"ray\" cannot run under torchrun: the ranks run the cells "
                            "together, one at a time")
    if workers > 1:
        return (f"collapse: under torchrun the cells run one at a time on all ranks together "
                f"(experiment.workers = {workers} ignored)")
    return None


def plan_workers(workers: int, cells: int, uses_cuda: bool, cuda_devices: int, device: str,
                 share_device: bool) -> Tuple[int, Optional[str]]:
    """How many local worker processes a study of transformer cells gets, and a warning when
    that is fewer than asked: on CUDA one per visible GPU (one GPU when the config names
    one, "cuda:N"), unless share_device allows several per GPU."""
    want = max(1, min(workers, cells))
    if not uses_cuda or share_device or want == 1:
        return want, None
    gpus = 1 if ":" in device else max(1, cuda_devices)
    if want <= gpus:
        return want, None
    return gpus, (f"collapse: experiment.workers = {workers} would put {want} transformer cells on {gpus} GPU(s); "
                  f"running {gpus} at a time, one per GPU ([model] share_device = true allows sharing)")


def device_slots(workers: int, cuda_devices: int, device: str) -> List[Optional[str]]:
    """The CUDA_VISIBLE_DEVICES of each worker (None: leave it), one GPU each, round robin
    when sharing is allowed."""
    if cuda_devices < 1 or ":" in device or workers <= 1:
        return [None] * workers
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    ids = [x for x in visible.split(",") if x] if visible else [str(i) for i in range(cuda_devices)]
    return [ids[i % len(ids)] for i in range(workers)]


def claim_device(slots: Any) -> None:
    """Process-pool initializer: take one slot from the queue and restrict this worker to that GPU."""
    slot = slots.get()
    if slot is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = slot
