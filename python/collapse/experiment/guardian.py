"""Ends the processes a killed driver leaves behind (Ray's local agents); run by path, standard library only.

``python guardian.py DRIVER_PID`` records, every POLL_SECONDS, the descendants of the driver
(from /proc: pid and start time) and, once the driver is gone, SIGKILLs those still alive
(same pid and start time, so a reused pid is never touched), then exits. Ray's local mode
ends its GCS, raylet and workers with the driver, but not its dashboard and runtime-env
agents, which the raylet's death leaves running forever; this is what ends them. The
experiment loop starts one guardian per driver process (collapse.experiment.workers).
"""

import os
import signal
import sys
import time
from typing import Dict, Optional, Tuple

POLL_SECONDS = 0.25


def _stat(pid: int) -> Optional[Tuple[int, int]]:
    """(ppid, start time) of pid from /proc, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read().decode("ascii", "replace")
    except OSError:
        return None
    fields = data[data.rfind(")") + 2:].split()  # after "pid (comm) "
    if fields[0] == "Z":  # a zombie has ended
        return None
    return int(fields[1]), int(fields[19])


def descendants(root: int) -> Dict[int, int]:
    """{pid: start time} of every process below root."""
    children: Dict[int, list] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = _stat(int(name))
            if st is not None:
                children.setdefault(st[0], []).append((int(name), st[1]))
    out, todo = {}, [root]
    while todo:
        for pid, start in children.get(todo.pop(), ()):
            if pid not in out:
                out[pid] = start
                todo.append(pid)
    return out


def guard(driver: int) -> None:
    me = os.getpid()
    driver_start = (_stat(driver) or (None, None))[1]
    seen = {}
    while True:
        st = _stat(driver)
        if st is None or st[1] != driver_start:
            break
        seen = {pid: start for pid, start in descendants(driver).items() if pid != me}
        time.sleep(POLL_SECONDS)
    for pid, start in seen.items():
        st = _stat(pid)
        if st is not None and st[1] == start:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


if __name__ == "__main__":
    guard(int(sys.argv[1]))
