"""A run killed with SIGKILL during a generation and resumed ends byte-identical to an
uninterrupted run (timing columns aside)."""

import json
import pathlib
import signal
import subprocess
import sys
import time

import pandas as pd

from collapse.experiment.rundir import TIMING_COLUMNS

CONFIG = """
[experiment]
name = "resume"
generations = 6
seeds = [3]
paradigms = ["accumulate-subsample"]
workers = 1
progress = false

[data]
source = "grammar"
num_documents = 3000
heldout_documents = 200
seed = 1

[model]
family = "ngram"
order = 3
"""

CELL = "accumulate-subsample_o3_s3"


def _collapse(*args):
    return [sys.executable, "-m", "collapse", *map(str, args)]


def _files(root: pathlib.Path):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def _strip_timing(obj):
    rows = [{k: v for k, v in r.items() if k not in TIMING_COLUMNS} for r in obj["rows"]]
    return {**obj, "rows": rows}


def test_sigkill_then_resume_is_byte_identical(tmp_path):
    cfg = tmp_path / "resume.toml"
    cfg.write_text(CONFIG)
    full, broken = tmp_path / "full", tmp_path / "broken"

    proc = subprocess.run(_collapse("run", cfg, "--out", full), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr

    child = subprocess.Popen(_collapse("run", cfg, "--out", broken), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    state = broken / CELL / "state.json"
    deadline = time.time() + 120
    done = 0
    while time.time() < deadline and child.poll() is None:
        if state.exists():
            try:
                done = json.loads(state.read_text())["generations_done"]
            except (ValueError, KeyError):  # replaced while we read: try again
                done = 0
            if done >= 2:
                break
        time.sleep(0.005)
    assert child.poll() is None, "the run finished before it could be killed; make it longer"
    child.send_signal(signal.SIGKILL)
    child.wait()
    killed_at = json.loads(state.read_text())["generations_done"]
    assert 2 <= killed_at < 7, killed_at

    # Without --resume an existing run directory is refused.
    proc = subprocess.run(_collapse("run", cfg, "--out", broken), capture_output=True, text=True)
    assert proc.returncode == 2 and "--resume" in proc.stderr

    first = broken / CELL / "gen_0000" / "synthetic.arrow"
    first_mtime = first.stat().st_mtime_ns
    proc = subprocess.run(_collapse("run", cfg, "--out", broken, "--resume"), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert first.stat().st_mtime_ns == first_mtime, "resume redid a finished generation"

    # Metrics: identical once timing columns are dropped (CSV text and parquet values).
    a, b = pd.read_csv(full / "metrics.csv"), pd.read_csv(broken / "metrics.csv")
    timing = [c for c in TIMING_COLUMNS if c in a.columns]
    assert len(a) == 7
    assert a.drop(columns=timing).to_csv(index=False) == b.drop(columns=timing).to_csv(index=False)
    pa, pb = pd.read_parquet(full / "metrics.parquet"), pd.read_parquet(broken / "metrics.parquet")
    pd.testing.assert_frame_equal(pa.drop(columns=timing), pb.drop(columns=timing), check_exact=True)

    # Artifacts: the same files, byte for byte (state.json compared without timings).
    assert _files(full) == _files(broken)
    for rel in _files(full):
        if rel in ("metrics.csv", "metrics.parquet", "report.html"):  # timings (and the report's time)
            continue
        fa, fb = (full / rel).read_bytes(), (broken / rel).read_bytes()
        if rel.endswith("state.json"):
            assert _strip_timing(json.loads(fa)) == _strip_timing(json.loads(fb)), rel
        elif rel == "manifest.json":  # the same but for the sessions' provenance (times, command lines)
            assert {k: v for k, v in json.loads(fa).items() if k != "provenance"} == {
                k: v for k, v in json.loads(fb).items() if k != "provenance"}
        else:
            assert fa == fb, rel
    # models of the first and the last generation (output.model_every = 10 > 6), S_t as Arrow
    assert [rel for rel in _files(full) if rel.endswith("model.arpa.gz")] == [
        f"{CELL}/gen_0000/model.arpa.gz", f"{CELL}/gen_0006/model.arpa.gz"]
    assert sum(rel.endswith("synthetic.arrow") for rel in _files(full)) == 7
    # the tail tables (collapse.experiment.tails) are among the files compared byte for byte
    assert {"tails.parquet", "tails.png", f"{CELL}/extinction.parquet", f"{CELL}/gen_0006/tails.parquet",
            f"{CELL}/gen_0006/present.npy"} <= set(_files(full))
    manifest = json.loads((broken / "manifest.json").read_text())
    assert manifest["complete"] and manifest["cells"][0]["generations_done"] == 7


def test_resume_refuses_a_changed_config(tmp_path):
    cfg = tmp_path / "a.toml"
    cfg.write_text(CONFIG.replace("generations = 6", "generations = 1").replace("3000", "200"))
    out = tmp_path / "run"
    assert subprocess.run(_collapse("run", cfg, "--out", out), capture_output=True).returncode == 0
    # what determines results may not change (generations may grow: tests/test_resume_keys.py)
    cfg.write_text(CONFIG.replace("generations = 6", "generations = 1").replace("3000", "300"))
    proc = subprocess.run(_collapse("run", cfg, "--out", out, "--resume"), capture_output=True, text=True)
    assert proc.returncode == 2
    assert "config differs" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert "data.num_documents: 200 -> 300" in proc.stderr
