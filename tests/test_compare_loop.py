"""A two-family study through `collapse run`: the metrics interface, generation 0 shared by
the paradigms of each model (and equal to what a cell trains alone), and SIGKILL in the
middle of a transformer generation followed by --resume ending byte-identical."""

import json
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

pytest.importorskip("torch", reason="the transformer family needs torch (collapse[torch])")

from collapse.experiment.rundir import TIMING_COLUMNS  # noqa: E402


def _config(paradigms, generations=2, workers=2, progress=True):
    return f"""
[experiment]
name = "tiny-compare"
generations = {generations}
seeds = [0]
paradigms = {json.dumps(paradigms)}
workers = {workers}
progress = {"true" if progress else "false"}

[data]
source = "grammar"
num_documents = 100
heldout_documents = 30
seed = 1

[[model]]
name = "tri"
family = "ngram"
order = 3

[[model]]
name = "neo"
family = "transformer"
preset = "custom"
hidden_size = 16
num_layers = 2
num_heads = 2
window_size = 16
max_position_embeddings = 128
context_length = 96
epochs = 1
batch_size = 8
micro_batch_size = 8
lr = 3e-3
bpe_vocab_size = 300
max_new_tokens = 100
sample_batch_size = 50
device = "cpu"
threads = 1
"""


def _run(tmp_path, name, text, *extra, check=True):
    cfg = tmp_path / f"{name}.toml"
    cfg.write_text(text)
    out = tmp_path / name
    proc = subprocess.run([sys.executable, "-m", "collapse", "run", str(cfg), "--out", str(out), *extra],
                          capture_output=True, text=True, timeout=600)
    if check:
        assert proc.returncode == 0, proc.stderr
    return out, proc


def _metrics(run):
    df = pd.read_csv(run / "metrics.csv")
    return df.drop(columns=[c for c in df.columns if c in TIMING_COLUMNS])


def _files(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("compare")
    out, proc = _run(tmp, "full", _config(["replace", "accumulate-subsample"]))
    return tmp, out, proc


def test_metrics_interface_and_figure(full):
    _, out, _ = full
    df = pd.read_csv(out / "metrics.csv")
    for col in ("model", "family", "paradigm", "seed", "generation", "heldout_bits_per_word", "kl_truth",
                "heldout_ppl", "vocab_size", "distinct_2", "kl_truth_se"):
        assert col in df.columns, col
    assert set(zip(df.model, df.family)) == {("tri", "ngram"), ("neo", "transformer")}
    assert len(df) == 2 * 2 * 3  # models x paradigms x generations 0..2
    assert df[["heldout_bits_per_word", "kl_truth", "kl_truth_se"]].notna().all().all()
    assert (df.kl_truth_se > 0).all()
    assert (out / "metrics.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and (out / "metrics.svg").exists()
    manifest = json.loads((out / "manifest.json").read_text())
    assert [m["name"] for m in manifest["models"]] == ["tri", "neo"] and manifest["complete"]


def test_generation0_is_trained_once_per_model_and_equals_a_cells_own(full):
    tmp, out, proc = full
    # the transformer reports each training when it ends: gen 0 once + gens 1, 2 of two cells
    trainings = [line for line in proc.stderr.splitlines() if line.startswith("training: ")]
    assert len(trainings) == 1 + 2 * 2, proc.stderr
    both = _metrics(out)
    # in the full run the replace cell trained M_0 and accumulate-subsample was handed it;
    # alone, accumulate-subsample trains its own: the two must be the same, byte for byte
    for paradigm in ("accumulate-subsample",):
        alone, _ = _run(tmp, f"alone-{paradigm}", _config([paradigm], generations=1, workers=1, progress=False))
        m = _metrics(alone)
        g0 = both[(both.generation == 0) & (both.paradigm == paradigm)].reset_index(drop=True)
        pd.testing.assert_frame_equal(m[m.generation == 0].reset_index(drop=True), g0)
        for model, suffix in (("tri", "_o3"), ("neo", "")):
            cell = f"{model}_{paradigm}{suffix}_s0"
            names = [n for n in _files(alone / cell / "gen_0000")]
            assert names and names == _files(out / cell / "gen_0000")
            for n in names:  # the model and the sample, byte for byte
                assert (alone / cell / "gen_0000" / n).read_bytes() == (out / cell / "gen_0000" / n).read_bytes(), n


def test_sigkill_in_a_transformer_generation_then_resume_is_identical(full):
    tmp, out, _ = full
    cfg = tmp / "broken.toml"
    cfg.write_text(_config(["replace", "accumulate-subsample"]))
    broken = tmp / "broken"
    child = subprocess.Popen([sys.executable, "-m", "collapse", "run", str(cfg), "--out", str(broken)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = broken / "neo_replace_s0" / "state.json"
    deadline = time.time() + 300
    while time.time() < deadline and child.poll() is None:
        try:
            if json.loads(state.read_text())["generations_done"] >= 1:
                break
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.01)
    time.sleep(0.5)  # inside generation 1 of the transformer cell (training or sampling)
    assert child.poll() is None, "the run ended before it could be killed"
    child.send_signal(signal.SIGKILL)
    child.wait()
    time.sleep(1.0)  # its pool workers die with it (PR_SET_PDEATHSIG / a watch thread) ...
    before = {n: (broken / n).stat().st_mtime_ns for n in _files(broken)}
    time.sleep(1.5)  # ... so nothing writes into the run directory any more
    assert {n: (broken / n).stat().st_mtime_ns for n in _files(broken)} == before
    assert json.loads(state.read_text())["generations_done"] < 3
    _, proc = _run(tmp, "broken", _config(["replace", "accumulate-subsample"]), "--resume")
    pd.testing.assert_frame_equal(_metrics(out), _metrics(broken))
    names = [n for n in _files(out) if "/gen_" in n]
    assert names == [n for n in _files(broken) if "/gen_" in n]
    for name in names:  # every generation's models and corpora, both families
        assert (out / name).read_bytes() == (broken / name).read_bytes(), name
