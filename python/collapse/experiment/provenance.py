"""Provenance of a run: the versions, commit, machine, command line, times and peak memory that produced it."""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import pathlib
import platform
import resource
import subprocess
import sys
from typing import Any, Dict, List, Optional

from .rundir import COLLAPSE_VERSION

PACKAGES = ("numpy", "torch", "transformers", "kenlm")  # their versions, None where not installed
CHECKOUT = pathlib.Path(__file__).resolve().parents[3]  # the repository root when run from a checkout
GIT_SECONDS = 5.0


def utc_now() -> str:
    """The time now, ISO 8601 in UTC to the second (2025-01-31T12:00:00Z)."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def package_version(name: str) -> Optional[str]:
    """An installed distribution's version from its metadata (nothing is imported), or None."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _git(*args: str) -> Optional[str]:
    try:
        out = subprocess.run(["git", "-C", str(CHECKOUT), *args], capture_output=True, text=True,
                             timeout=GIT_SECONDS, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def git_commit() -> "tuple[Optional[str], Optional[bool]]":
    """(commit, dirty) of the checkout this package runs from; (None, None) for an installed copy
    (no .git beside its pyproject.toml) or where git is missing. dirty: tracked files changed."""
    if not ((CHECKOUT / ".git").exists() and (CHECKOUT / "pyproject.toml").exists()):
        return None, None
    commit = _git("rev-parse", "HEAD")
    if not commit:
        return None, None
    changes = _git("status", "--porcelain", "--untracked-files=no")
    return commit, (None if changes is None else bool(changes))


def cpu_model() -> Optional[str]:
    """/proc/cpuinfo's first "model name" (Linux), else platform.processor(), else None."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or None


def gpus() -> List[str]:
    """The CUDA devices' names when this process already imported torch and CUDA is there (a
    run of n-gram models never imports torch, and this does not import it for them)."""
    torch = sys.modules.get("torch")
    try:
        if torch is None or not torch.cuda.is_available():
            return []
        return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except Exception:  # noqa: BLE001 - a broken CUDA set-up is not the run's error
        return []


def gpu_driver() -> Optional[str]:
    """The NVIDIA kernel driver's version (/proc/driver/nvidia/version), or None."""
    try:
        with open("/proc/driver/nvidia/version", encoding="utf-8", errors="replace") as f:
            words = f.readline().split()
    except OSError:
        return None
    # "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  Tue Mar  5 ..."
    return next((w for w in words if w[:1].isdigit() and "." in w), None)


def peak_rss_bytes() -> Dict[str, int]:
    """Peak resident memory: of this process, and of the largest of its children that have
    ended and been waited for (RUSAGE_CHILDREN is a maximum, not a sum; live workers and
    Ray's workers, which are not our children, are not in it); Linux counts in KiB."""
    scale = 1 if sys.platform == "darwin" else 1024
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * scale
    return {"peak_rss_bytes": max(own, children), "peak_rss_self_bytes": own, "peak_rss_children_bytes": children}


def collect() -> Dict[str, Any]:
    """What this process is: versions, commit, machine, command line (no times)."""
    commit, dirty = git_commit()
    record: Dict[str, Any] = {"collapse": COLLAPSE_VERSION, "git_commit": commit, "git_dirty": dirty,
                              "python": platform.python_version()}
    record.update({name: package_version(name) for name in PACKAGES})
    record.update({"platform": platform.platform(), "hostname": platform.node(), "cpu": cpu_model(),
                   "cpu_count": os.cpu_count(), "gpus": gpus(), "gpu_driver": None, "command": list(sys.argv)})
    return record


class Session:
    """One session of work on a run directory (a run, or one --resume of it): its record is
    collected once at its start; snapshot() adds the peak memory so far, the time of the
    snapshot and, once finished, the end time. Earlier sessions' records (from the manifest
    being resumed) are kept, in order, under earlier_sessions."""

    def __init__(self, earlier: Optional[List[Dict[str, Any]]] = None) -> None:
        self.record = collect()
        self.record["started"] = utc_now()
        self.record["ended"] = None
        self.earlier = list(earlier or [])

    @classmethod
    def resuming(cls, manifest: Optional[Dict[str, Any]]) -> "Session":
        """A session continuing the run whose manifest this is (None or no provenance: none before)."""
        previous = (manifest or {}).get("provenance")
        if not isinstance(previous, dict):
            return cls()
        earlier = list(previous.get("earlier_sessions") or [])
        earlier.append({k: v for k, v in previous.items() if k != "earlier_sessions"})
        return cls(earlier)

    def finish(self) -> None:
        self.record["ended"] = utc_now()

    def snapshot(self) -> Dict[str, Any]:
        if not self.record["gpus"]:  # torch may have been imported, and CUDA used, since the start
            self.record["gpus"] = gpus()
        if self.record["gpus"]:
            self.record["gpu_driver"] = gpu_driver()
        out = dict(self.record)
        out.update(peak_rss_bytes())
        out["updated"] = utc_now()
        out["earlier_sessions"] = self.earlier
        return out
