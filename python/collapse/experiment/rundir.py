"""Run directories: their layout, the metrics table (CSV + Parquet) and the version stamped in manifests.

Layout (shared by `collapse run`, `collapse demo`, `collapse simulate`):

    RUN_DIR/config.toml          the resolved configuration
    RUN_DIR/manifest.json        what the run is and which generations are finished
    RUN_DIR/metrics.csv          one row per (paradigm, alpha, seed, generation, ...)
    RUN_DIR/metrics.parquet      the same table
    RUN_DIR/<cell>/gen_NNNN/     per-generation artifacts (models, corpora; compressed)
    RUN_DIR/*.png                plots
    RUN_DIR/run.lock             while a run works in the directory: its owner's pid

Every file is written with collapse.files (temporary name, fsync, rename, fsync of the
directory), so a run killed at any moment leaves either the old file or the new one, never
half of one, and a commit point never names data that has not reached the disk.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.metadata
import os
import pathlib
import signal
import sys
import threading
from typing import Any, Iterator, List, Optional

from ..errors import CollapseError
from ..files import atomic_path, write_text

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def package_version(checkout: Optional[pathlib.Path] = None) -> str:
    """The version pyproject.toml gives, the only place it is written: read from the
    checkout's pyproject.toml when this package runs from a checkout (PYTHONPATH=python,
    so an older installed copy's metadata cannot speak for it), else from the installed
    package's metadata; neither is an ImportError, never a guessed version."""
    pyproject = (checkout or pathlib.Path(__file__).resolve().parents[3]) / "pyproject.toml"
    try:
        with open(pyproject, "rb") as f:
            project = tomllib.load(f).get("project", {})
    except (OSError, tomllib.TOMLDecodeError):
        project = {}
    if project.get("name") == "collapse" and "version" in project:
        return str(project["version"])
    try:
        return importlib.metadata.version("collapse")
    except importlib.metadata.PackageNotFoundError:
        raise ImportError(f"collapse has no version: it is not installed (pip install .) and {pyproject} "
                          "is not its pyproject.toml") from None


COLLAPSE_VERSION = package_version()  # collapse.__version__, stamped into manifests
LOCK_FILE = "run.lock"
TIMING_COLUMNS = ("seconds", "fit_seconds", "sample_seconds", "metrics_seconds", "write_seconds", "wall_time", "downstream_seconds")


@contextlib.contextmanager
def interrupts_held() -> Iterator[None]:
    """Ctrl-C and SIGTERM held until the block ends, then delivered to the handlers they had.
    A driver rebuilds its run files while it waits for workers, so that is where an interrupt
    usually lands; inside pyarrow's parquet writer it left a writer whose finaliser later
    printed a traceback under the run's one-line message. Main thread only (signals are
    delivered there); elsewhere the block runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held: List[int] = []
    before = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        handler = signal.getsignal(signum)
        if handler is not None and handler is not signal.SIG_IGN:  # None: installed outside Python
            before[signum] = handler
            signal.signal(signum, lambda n, _frame: held.append(n))
    try:
        yield
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)
        if held:
            signal.raise_signal(held[0])


def write_metrics(run_dir: str, df: "Any") -> None:
    """metrics.csv and metrics.parquet, both atomically (an interrupt waits for them)."""
    os.makedirs(run_dir, exist_ok=True)
    with interrupts_held():
        write_text(os.path.join(run_dir, "metrics.csv"), df.to_csv(index=False, float_format="%.10g"))
        with atomic_path(os.path.join(run_dir, "metrics.parquet")) as tmp:
            df.to_parquet(tmp, index=False)


def read_metrics(run_dir: str) -> "Any":
    import pandas as pd

    pq = os.path.join(run_dir, "metrics.parquet")
    if os.path.exists(pq):
        return pd.read_parquet(pq)
    return pd.read_csv(os.path.join(run_dir, "metrics.csv"))


def lock_owner(run_dir: str) -> Optional[int]:
    """The pid of the live process that holds RUN_DIR/run.lock, or None (no lock file, or one
    a killed run left). Looked up without taking the lock, which would refuse the owner for a
    moment: in /proc/locks (Linux: the flock's holder by device and inode), elsewhere by
    whether the pid the file names is alive."""
    path = os.path.join(run_dir, LOCK_FILE)
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            text = f.read().strip()
        st = os.stat(path)
    except OSError:
        return None
    pid = int(text) if text.isdigit() else None
    try:
        with open("/proc/locks", encoding="ascii", errors="replace") as f:
            locks = f.read().splitlines()
    except OSError:
        return pid if pid is not None and _alive(pid) else None
    me = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    for line in locks:  # "1: FLOCK  ADVISORY  WRITE 1234 00:2f:5678 0 EOF"
        parts = line.split()
        if len(parts) >= 6 and parts[1] == "FLOCK" and parts[5] == me and parts[4].isdigit():
            return int(parts[4])
    return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunLock:
    """Only one live process works in a run directory.

    ``RUN_DIR/run.lock`` holds the owner's pid under an exclusive ``flock``. The kernel drops
    the lock when its owner dies, however it dies, so a lock file left by a killed run is
    stale and is taken over; a lock held by a live process is refused with one line naming
    its pid. The file is removed when the owner releases it."""

    def __init__(self, run_dir: str) -> None:
        self.path = os.path.join(run_dir, LOCK_FILE)
        self._fd: Optional[int] = None

    def acquire(self) -> "RunLock":
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            owner = os.read(fd, 64).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise CollapseError(f"{os.path.dirname(self.path)} is in use by the live process {owner} "
                                f"({self.path}); wait for it to end or stop it, then --resume") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        os.fsync(fd)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            try:
                os.remove(self.path)  # still ours: nobody else can hold it while we do
            except FileNotFoundError:
                pass
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()
