"""The transformer family in the experiment loop, end to end on CPU: `collapse run` with a
[model] family = "transformer" table runs generations 0..2 (three trained models), is
killed with SIGKILL after a finished generation, resumes, and ends with the metrics and
artifacts of a run that was never killed; `collapse plot` overlays it with an n-gram run."""

import json
import pathlib
import subprocess
import sys

import pandas as pd
import pytest

pytest.importorskip("torch", reason="the transformer family needs torch (collapse[torch])")

from collapse.experiment.rundir import TIMING_COLUMNS  # noqa: E402
from conftest import kill_when_done  # noqa: E402

CONFIG = """
[experiment]
name = "tiny-transformer"
generations = 2
seeds = [0]
paradigms = ["replace"]
workers = 1
progress = false

[data]
source = "grammar"
num_documents = 150
heldout_documents = 30
seed = 1

[model]
family = "transformer"
preset = "custom"
hidden_size = 32
num_layers = 2
num_heads = 4
window_size = 16
max_position_embeddings = 128
context_length = 96
epochs = 2
batch_size = 16
micro_batch_size = 8
lr = 3e-3
bpe_vocab_size = 400
max_new_tokens = 80
sample_batch_size = 32
perplexity_stride = 48
device = "cpu"
threads = 1
"""


def _collapse(*args):
    return [sys.executable, "-m", "collapse", *map(str, args)]


def _files(root: pathlib.Path):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def _metrics(run: pathlib.Path) -> pd.DataFrame:
    df = pd.read_csv(run / "metrics.csv")
    return df.drop(columns=[c for c in df.columns if c in TIMING_COLUMNS])


def test_three_generations_killed_resumed_identical(tmp_path):
    cfg = tmp_path / "tiny.toml"
    cfg.write_text(CONFIG)
    full, broken = tmp_path / "full", tmp_path / "broken"
    proc = subprocess.run(_collapse("run", cfg, "--out", full), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    m = _metrics(full)
    assert list(m["generation"]) == [0, 1, 2]
    assert (m["heldout_ppl"] > 1).all() and m["heldout_ppl"].notna().all()
    (cell,) = [p.name for p in full.iterdir() if p.is_dir()]
    assert (full / cell / "gen_0002" / "model.safetensors").exists()

    child = subprocess.Popen(_collapse("run", cfg, "--out", broken), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    state = broken / cell / "state.json"
    kill_when_done(child, state, 1)
    assert json.loads(state.read_text())["generations_done"] < 3

    proc = subprocess.run(_collapse("run", cfg, "--out", broken, "--resume"), capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    pd.testing.assert_frame_equal(_metrics(full), _metrics(broken))
    names = [n for n in _files(full) if n.split("/")[-1] not in ("state.json", "manifest.json", "metrics.csv",
                                                               "metrics.parquet")]
    assert names == [n for n in _files(broken) if n in names]
    for name in names:
        if "/gen_" in name:  # every generation's model and corpus, byte for byte
            assert (full / name).read_bytes() == (broken / name).read_bytes(), name

    png = tmp_path / "overlay.png"
    proc = subprocess.run(_collapse("plot", full, "--metric", "heldout_ppl", "-o", png), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
