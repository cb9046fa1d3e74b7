"""Live, honest run directories (issue 26): metrics.csv and manifest.json follow every committed
generation while worker processes run; Ctrl-C and SIGTERM end with one line saying what was kept
and how to continue; --resume refuses a directory that holds no run."""

import importlib.util
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

CONFIG = """
[experiment]
name = "live"
generations = 400
seeds = [0, 1]
paradigms = ["replace", "accumulate"]
workers = 2
progress = false

[data]
source = "grammar"
num_documents = 300
heldout_documents = 100

[model]
order = 2

[output]
save_models = false
"""


def _collapse(*args):
    return [sys.executable, "-m", "collapse", *map(str, args)]


def _committed(out: pathlib.Path):
    """generations_done of every cell that has committed one (read as the commit point says)."""
    done = {}
    for path in out.glob("*/state.json"):
        try:
            done[path.parent.name] = json.loads(path.read_text())["generations_done"]
        except (ValueError, KeyError):  # replaced while we read
            pass
    return done


def _start_and_interrupt(tmp_path, sig, whole_group, executor="local"):
    cfg = tmp_path / "live.toml"
    cfg.write_text(CONFIG.replace("workers = 2", f'workers = 2\nexecutor = "{executor}"'))
    out = tmp_path / "run"
    # SIGINT as a terminal gives it: a runner started in the background (CI's, a shell's
    # `&`) hands its children SIGINT ignored, and Python keeps it ignored
    child = subprocess.Popen(_collapse("run", cfg, "--out", out), stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True, start_new_session=True,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.time() + 180
        while time.time() < deadline and child.poll() is None:
            done = _committed(out)
            # both workers compute, and one has committed a few generations
            if len(done) == 2 and max(done.values()) >= 3:
                break
            time.sleep(0.05)
        assert child.poll() is None, "the run ended before it could be interrupted"
        time.sleep(0.5)  # let the driver see the last commits before the signal (it must anyway)
        if whole_group:  # a terminal's Ctrl-C reaches every process of the foreground group
            os.killpg(child.pid, sig)
        else:
            child.send_signal(sig)
        _, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    return cfg, out, child.returncode, err


RAY = pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="needs ray (collapse[ray])")


@pytest.mark.parametrize("sig, whole_group, code, executor", [
    (signal.SIGINT, True, 130, "local"), (signal.SIGTERM, False, 143, "local"),
    pytest.param(signal.SIGTERM, False, 143, "ray", marks=RAY)])
def test_an_interrupted_run_leaves_live_metrics_and_one_line(tmp_path, sig, whole_group, code, executor):
    cfg, out, rc, err = _start_and_interrupt(tmp_path, sig, whole_group, executor)
    assert rc == code, err
    done = _committed(out)
    assert len(done) == 2 and sum(done.values()) >= 3, done
    # the metrics table and the manifest hold exactly what the cells committed
    df = pd.read_csv(out / "metrics.csv")
    per_cell = df.groupby(["paradigm", "seed"]).size()
    manifest = json.loads((out / "manifest.json").read_text())
    by_id = {c["id"]: c["generations_done"] for c in manifest["cells"]}
    for cell, n in done.items():
        assert by_id[cell] == n, (cell, by_id, done)
    assert len(df) == sum(done.values()), (len(df), done)
    assert int(per_cell.sum()) == sum(done.values())
    assert len(pd.read_parquet(out / "metrics.parquet")) == len(df)
    # one line: what was kept and the exact command that continues
    lines = err.strip().splitlines()
    if executor == "ray":  # Ray's own start-up lines come first
        lines = lines[-1:]
    assert len(lines) == 1, err
    word = "interrupted" if sig == signal.SIGINT else "terminated"
    assert lines[0].startswith(f"collapse: {word}; {sum(done.values())} generations of {len(done)} cells kept in {out}")
    assert f"collapse run {cfg} --out {out} --resume" in lines[0]
    assert "leaked" not in err and "Traceback" not in err


@pytest.mark.parametrize("make", ["missing", "empty"])
def test_resume_of_a_directory_without_a_run_is_one_line(tmp_path, make):
    cfg = tmp_path / "small.toml"
    cfg.write_text(CONFIG.replace("generations = 400", "generations = 1").replace("workers = 2", "workers = 1"))
    out = tmp_path / "nothing"
    if make == "empty":
        out.mkdir()
    proc = subprocess.run(_collapse("run", cfg, "--out", out, "--resume"), capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "holds no run to resume" in lines[0], proc.stderr
    assert not (out / "config.toml").exists()


def test_an_interrupt_waits_until_the_run_files_are_written(tmp_path):
    """Ctrl-C inside the parquet writer left a writer whose finaliser printed a traceback under
    the one-line message (seen once in the SIGINT test above): the run files' write holds it."""
    from collapse.experiment.rundir import interrupts_held, write_metrics

    reached = []
    before = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal (see above)
    try:
        with pytest.raises(KeyboardInterrupt):
            with interrupts_held():
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.05)  # the handler runs here, between bytecodes, and only holds it
                write_metrics(str(tmp_path), pd.DataFrame({"generation": [0, 1], "x": [1.0, 2.0]}))
                reached.append(True)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # given back
    finally:
        signal.signal(signal.SIGINT, before)
    assert reached == [True]
    assert len(pd.read_parquet(tmp_path / "metrics.parquet")) == 2
