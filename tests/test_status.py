"""`collapse status RUN_DIR`: each cell's generation, last metrics, time per generation and time
left, on a finished run, on a live one and after a kill -9 (issue 23)."""

import json
import signal
import subprocess
import sys
import time

import tomli_w


def _status(run_dir):
    return subprocess.run([sys.executable, "-m", "collapse", "status", str(run_dir)], capture_output=True, text=True,
                          timeout=120)


def _config(tmp_path, generations, documents, seeds):
    cfg = tmp_path / "c.toml"
    cfg.write_text(tomli_w.dumps({
        "experiment": {"name": "st", "generations": generations, "seeds": seeds, "paradigms": ["replace", "accumulate"],
                       "workers": 1, "progress": False},
        "data": {"source": "grammar", "num_documents": documents, "heldout_documents": 50},
        "model": {"family": "ngram", "order": 2}}))
    return cfg


def _cell_lines(text):
    return text.splitlines()[2:-1]


def test_status_of_a_finished_run(tmp_path):
    cfg = _config(tmp_path, 2, 100, [0])
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "collapse", "run", cfg, "--out", out], capture_output=True,
                          timeout=300)
    assert proc.returncode == 0
    st = _status(out)
    assert st.returncode == 0 and st.stderr == ""
    lines = st.stdout.splitlines()
    assert "finished: no live owner" in lines[0] and lines[1].split()[:3] == ["cell", "gen", "bits/word"]
    cells = json.loads((out / "manifest.json").read_text())["cells"]
    body = _cell_lines(st.stdout)
    assert [line.split()[0] for line in body] == [c["id"] for c in cells]
    for line, c in zip(body, cells):
        state = json.loads((out / c["id"] / "state.json").read_text())
        last = state["rows"][-1]
        words = line.split()
        assert words[1] == "3/3" and words[-1] == "done"
        assert words[2] == f"{last['heldout_bits_per_word']:.4f}" and words[3] == f"{last['kl_truth']:.3f}"
        assert words[4] == str(last["vocab_size"])
    assert lines[-1] == "total: 6/6 generations; nothing left"


def test_status_while_running_and_after_kill(tmp_path):
    cfg = _config(tmp_path, 400, 2000, [0])  # far longer than the test waits
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "collapse", "run", str(cfg), "--out", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        state = out / "replace_o2_s0" / "state.json"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if state.exists() and json.loads(state.read_text())["generations_done"] >= 3:
                break
            time.sleep(0.05)
        else:
            raise AssertionError("the run made no 3 generations in 2 minutes")
        live = _status(out)
        assert live.returncode == 0, live.stderr
        assert f"running: live owner pid {proc.pid} (run.lock)" in live.stdout.splitlines()[0]
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    st = _status(out)
    assert st.returncode == 0, st.stderr
    lines = st.stdout.splitlines()
    assert "not running: no live owner" in lines[0] and (out / "run.lock").exists()  # the killed run's lock
    body = _cell_lines(st.stdout)
    first = body[0].split()
    done = json.loads(state.read_text())["generations_done"]
    assert first[0] == "replace_o2_s0" and first[1] == f"{done}/401"
    assert first[5] != "?" and first[6] not in ("?", "-")  # seconds per generation and time left, measured
    assert lines[-1].startswith("total: ") and "left with 1 worker" in lines[-1]


def test_status_of_no_run_is_one_line_and_exit_2(tmp_path):
    for bad in (tmp_path / "missing", tmp_path):
        st = _status(bad)
        assert st.returncode == 2 and st.stdout == "" and len(st.stderr.strip().splitlines()) == 1, st.stderr
    (tmp_path / "manifest.json").write_text("{not json")
    st = _status(tmp_path)
    assert st.returncode == 2 and len(st.stderr.strip().splitlines()) == 1
