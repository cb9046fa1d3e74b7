"""Processes that end with their run: PR_SET_PDEATHSIG plus a pid watchdog for workers, a guardian for local Ray."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
import threading
import time

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
WATCH_SECONDS = 0.5
EXIT_PARENT_GONE = 137  # as if killed: the run this worker belonged to is gone

_watched = set()
_lock = threading.Lock()
_guardian = None


def _set_parent_death_signal() -> bool:
    """Ask the kernel to SIGKILL this process when its parent thread dies (Linux only)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else (a reused pid): not our parent
        return False
    return True


def _watchdog(pid: int, was_parent: bool) -> None:
    while True:
        time.sleep(WATCH_SECONDS)
        if (was_parent and os.getppid() != pid) or not _alive(pid):
            os._exit(EXIT_PARENT_GONE)


def end_with(pid: int) -> None:
    """Make this process end when process ``pid`` ends.

    For the local process pool ``pid`` is the parent (the initializer of every worker): the
    kernel's parent-death signal, and, where that is not available or the parent died
    before it was set, a watchdog thread that sees the worker reparented. For Ray's
    workers ``pid`` is the driver, not their parent (the raylet is): the watchdog alone, on
    the driver's pid. Idempotent per pid (Ray reuses worker processes across tasks)."""
    with _lock:
        if pid in _watched:
            return
        _watched.add(pid)
    was_parent = os.getppid() == pid
    if was_parent:
        _set_parent_death_signal()
        if os.getppid() != pid:  # the parent died before the signal was armed
            os._exit(EXIT_PARENT_GONE)
    elif not _alive(pid):
        os._exit(EXIT_PARENT_GONE)
    threading.Thread(target=_watchdog, args=(pid, was_parent), name="collapse-parent-watchdog",
                     daemon=True).start()


def _pid_namespace() -> str:
    """Which pid numbers a pid means here: this machine's boot and this pid namespace."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
            boot = f.read().strip()
        return f"{boot}:{os.readlink('/proc/self/ns/pid')}"
    except OSError:
        return ""


def owner_token() -> str:
    """This process as an owner that workers on any node can recognise: pid@namespace."""
    return f"{os.getpid()}@{_pid_namespace()}"


def end_with_owner(token: str) -> None:
    """end_with(the owner's pid) when the owner's pid means the same process here (a Ray
    worker on the driver's machine); on another node (a cluster) the worker is Ray's to end."""
    pid, _, namespace = token.partition("@")
    if namespace and namespace == _pid_namespace():
        end_with(int(pid))


def start_guardian() -> None:
    """Start (once per process) the guardian that ends what this process leaves behind when it
    is killed: collapse/experiment/guardian.py, run by path with the standard library only.
    Linux only (it reads /proc); called before a local Ray instance is started."""
    global _guardian
    with _lock:
        if _guardian is not None and _guardian.poll() is None:
            return
        if not os.path.isdir("/proc/self"):
            return
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "guardian.py")
        _guardian = subprocess.Popen([sys.executable, "-S", "-E", script, str(os.getpid())],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)


def start_local_ray(num_cpus: int, **init_args) -> None:  # noqa: ANN003
    """ray.init of a local instance whose workers import this very checkout of collapse
    (PYTHONPATH), with the guardian that ends its agents if this process is killed."""
    import ray

    start_guardian()
    package_parent = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    path = os.pathsep.join(p for p in (package_parent, os.environ.get("PYTHONPATH", "")) if p)
    ray.init(num_cpus=num_cpus, include_dashboard=False, runtime_env={"env_vars": {"PYTHONPATH": path}},
             **init_args)
