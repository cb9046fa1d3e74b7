"""No process outlives its run (issue 14): the workers of `collapse run` end when it is
SIGKILLed, for the local process pool and for Ray's local mode; a run directory is worked on
by one live process at a time (run.lock: a live owner is refused, a dead one's lock taken over)."""

import importlib.util
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

CONFIG = """
[experiment]
generations = 40
paradigms = ["replace", "accumulate"]
workers = 2
executor = "{executor}"
progress = false

[data]
source = "grammar"
num_documents = 3000

[model]
order = 3
"""


def _collapse(*args):
    return [sys.executable, "-m", "collapse", *map(str, args)]


def _alive(procs):
    out = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except psutil.NoSuchProcess:
            pass
    return out


def _kill_run_and_watch(tmp_path, executor, min_processes, timeout):
    cfg = tmp_path / "run.toml"
    cfg.write_text(CONFIG.format(executor=executor))
    out = tmp_path / "run"
    child = subprocess.Popen(_collapse("run", cfg, "--out", out), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    parent = psutil.Process(child.pid)
    seen = {}
    deadline = time.time() + timeout
    try:
        # wait until both cells compute (each has committed a generation), collecting every
        # process of the run on the way (Ray's are reparented when their raylet dies)
        while time.time() < deadline and child.poll() is None:
            for p in parent.children(recursive=True):
                seen.setdefault(p.pid, p)
            if len(list(out.glob("*/state.json"))) == 2:
                break
            time.sleep(0.1)
        assert child.poll() is None, "the run ended before it could be killed"
        assert len(list(out.glob("*/state.json"))) == 2, "the cells did not start in time"
        for p in parent.children(recursive=True):
            seen.setdefault(p.pid, p)
        assert len(seen) >= min_processes, [p.name() for p in seen.values()]
        child.send_signal(signal.SIGKILL)
        child.wait()
        gone_by = time.time() + 10
        while _alive(seen.values()) and time.time() < gone_by:
            time.sleep(0.1)
        left = _alive(seen.values())
        assert not left, [" ".join(p.cmdline())[:100] for p in left]
    finally:
        for p in _alive(list(seen.values())):
            p.kill()
        if child.poll() is None:
            child.kill()
    return out


def test_sigkill_of_a_run_with_two_workers_leaves_no_process(tmp_path):
    out = _kill_run_and_watch(tmp_path, "local", min_processes=2, timeout=60)
    # the killed run's lock file stays behind, stale (taken over: the last test)
    assert (out / "run.lock").exists()


@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="needs ray (collapse[ray])")
def test_sigkill_of_a_ray_run_leaves_no_process(tmp_path):
    _kill_run_and_watch(tmp_path, "ray", min_processes=4, timeout=120)


def test_a_live_owner_is_refused_a_dead_ones_lock_taken_over(tmp_path):
    cfg = tmp_path / "small.toml"
    cfg.write_text(CONFIG.format(executor="local").replace("generations = 40", "generations = 1")
                   .replace("3000", "200").replace("workers = 2", "workers = 1"))
    out = tmp_path / "run"
    assert subprocess.run(_collapse("run", cfg, "--out", out), capture_output=True).returncode == 0
    assert not (out / "run.lock").exists()  # released at the end
    holder = subprocess.Popen([sys.executable, "-c",
                               "import sys, time\n"
                               "from collapse.experiment.rundir import RunLock\n"
                               "RunLock(sys.argv[1]).acquire()\n"
                               "print('locked', flush=True)\n"
                               "time.sleep(120)\n", str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        proc = subprocess.run(_collapse("run", cfg, "--out", out, "--resume"), capture_output=True, text=True)
        assert proc.returncode == 2
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and f"in use by the live process {holder.pid}" in lines[0], proc.stderr
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert (out / "run.lock").read_text().strip() == str(holder.pid)  # left behind by the killed owner
    proc = subprocess.run(_collapse("run", cfg, "--out", out, "--resume"), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert not (out / "run.lock").exists()


def test_the_watchdog_alone_ends_a_worker_whose_parent_died():
    # the fallback where the parent-death signal is not available: a grandchild without it
    # ends within a second of its parent's SIGKILL
    grandchild = (
        "import os, time\n"
        "import collapse.experiment.workers as w\n"
        "w._set_parent_death_signal = lambda: False\n"
        "w.end_with(os.getppid())\n"
        "print(os.getpid(), flush=True)\n"
        "time.sleep(60)\n")
    middle = subprocess.Popen([sys.executable, "-c",
                               "import subprocess, sys, time\n"
                               f"p = subprocess.Popen([sys.executable, '-c', {grandchild!r}])\n"
                               "time.sleep(60)\n"], stdout=subprocess.PIPE, text=True)
    try:
        pid = int(middle.stdout.readline())
        worker = psutil.Process(pid)
        middle.send_signal(signal.SIGKILL)
        middle.wait()
        deadline = time.time() + 5
        while _alive([worker]) and time.time() < deadline:
            time.sleep(0.05)
        assert not _alive([worker])
    finally:
        if middle.poll() is None:
            middle.kill()


def test_ray_workers_on_another_machine_do_not_watch_the_driver():
    from collapse.experiment import workers

    before = set(workers._watched)
    workers.end_with_owner("1@another-machine:pid:[1]")  # pid 1 there is not pid 1 here
    assert workers._watched == before
    assert workers.owner_token().startswith(f"{os.getpid()}@")
