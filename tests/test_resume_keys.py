"""--resume keys on what determines results (issue 14): threads, workers, executor and progress
may change; --generations G larger than the original extends a finished or a killed run, and
the result equals a run that had G generations from the start."""

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
name = "keys"
generations = {G}
seeds = [2]
paradigms = ["replace", "accumulate-subsample"]
threads = {threads}
workers = {workers}
progress = {progress}

[data]
source = "grammar"
num_documents = {docs}
heldout_documents = 100
seed = 4

[model]
family = "ngram"
order = 3
"""


def _config(tmp_path, name, G=2, threads=1, workers=1, progress="false", docs=300):
    path = tmp_path / f"{name}.toml"
    path.write_text(CONFIG.format(G=G, threads=threads, workers=workers, progress=progress, docs=docs))
    return path


def _collapse(*args):
    return [sys.executable, "-m", "collapse", *map(str, args)]


def _run(*args):
    proc = subprocess.run(_collapse(*args), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc


def _files(root: pathlib.Path):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def _strip(obj):
    return {**obj, "rows": [{k: v for k, v in r.items() if k not in TIMING_COLUMNS} for r in obj["rows"]]}


def assert_same_run(a: pathlib.Path, b: pathlib.Path, earlier_end=None):
    """b (extended from a run that ended at generation earlier_end) holds a's files, the
    same bytes; b may also hold the models of earlier_end (the last one when written:
    [output] model_every keeps the first, every k-th and the last)."""
    ma, mb = pd.read_csv(a / "metrics.csv"), pd.read_csv(b / "metrics.csv")
    timing = [c for c in TIMING_COLUMNS if c in ma.columns]
    assert ma.drop(columns=timing).to_csv(index=False) == mb.drop(columns=timing).to_csv(index=False)
    extra = sorted(set(_files(b)) - set(_files(a)))
    assert set(_files(a)) <= set(_files(b))
    assert all(rel.endswith(f"/gen_{earlier_end:04d}/model.arpa.gz") for rel in extra), extra
    for rel in _files(a):
        if rel in ("metrics.csv", "metrics.parquet", "config.toml", "manifest.json", "report.html"):
            continue
        fa, fb = (a / rel).read_bytes(), (b / rel).read_bytes()
        if rel.endswith("state.json"):
            assert _strip(json.loads(fa)) == _strip(json.loads(fb)), rel
        else:
            assert fa == fb, rel
    man_a, man_b = json.loads((a / "manifest.json").read_text()), json.loads((b / "manifest.json").read_text())
    assert man_a["complete"] and man_b["complete"] and man_a["cells"] == man_b["cells"]


def test_presentation_settings_may_change_on_resume(tmp_path):
    out = tmp_path / "run"
    _run("run", _config(tmp_path, "a"), "--out", out)
    before = pd.read_csv(out / "metrics.csv")
    # other threads, workers and progress: accepted (before: "the config differs")
    _run("run", _config(tmp_path, "b", threads=2, workers=2, progress="true"), "--out", out, "--resume")
    after = pd.read_csv(out / "metrics.csv")
    timing = [c for c in TIMING_COLUMNS if c in before.columns]
    pd.testing.assert_frame_equal(before.drop(columns=timing), after.drop(columns=timing))
    assert "workers = 2" in (out / "config.toml").read_text()  # the run directory says how it ran last


def test_generations_extend_a_finished_run(tmp_path):
    extended, direct = tmp_path / "extended", tmp_path / "direct"
    _run("run", _config(tmp_path, "g2", G=2), "--out", extended)
    _run("run", _config(tmp_path, "g2", G=2), "--out", extended, "--resume", "--generations", 4)
    _run("run", _config(tmp_path, "g4", G=4), "--out", direct)
    assert sorted(pd.read_csv(extended / "metrics.csv").generation.unique()) == [0, 1, 2, 3, 4]
    assert_same_run(direct, extended, earlier_end=2)
    assert len(list(extended.glob("*/gen_0002/model.arpa.gz"))) == 2  # each cell's earlier end keeps its model
    # shortening is refused, naming the setting
    proc = subprocess.run(_collapse("run", _config(tmp_path, "g2", G=2), "--out", extended, "--resume"),
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "experiment.generations: 4 -> 2" in proc.stderr


def test_generations_extend_a_killed_run(tmp_path):
    broken, direct = tmp_path / "broken", tmp_path / "direct"
    cfg3 = _config(tmp_path, "g3", G=3, docs=1000)
    child = subprocess.Popen(_collapse("run", cfg3, "--out", broken), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    state = broken / "replace_o3_s2" / "state.json"
    deadline = time.time() + 120
    while time.time() < deadline and child.poll() is None:
        try:
            if json.loads(state.read_text())["generations_done"] >= 2:
                break
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.005)
    assert child.poll() is None, "the run finished before it could be killed"
    child.send_signal(signal.SIGKILL)
    child.wait()
    _run("run", cfg3, "--out", broken, "--resume", "--generations", 5)
    _run("run", _config(tmp_path, "g5", G=5, docs=1000), "--out", direct)
    assert_same_run(direct, broken, earlier_end=3)
