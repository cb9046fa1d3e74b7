"""Checkpoints inside a generation: a fit killed (SIGKILL) mid-epoch and a sampling killed
mid-way through its shards continue from their files and end byte-identical to an
uninterrupted generation (CPU)."""

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

torch = pytest.importorskip("torch", reason="the transformer family needs torch (collapse[torch])")

SCRIPT = textwrap.dedent("""
    import hashlib, os, sys, time
    import numpy as np, torch
    torch.set_num_threads(1)
    from collapse.data.corpus import Corpus
    from collapse.transformer.family import TransformerFamily
    work, out = sys.argv[1], sys.argv[2]
    rng = np.random.default_rng(0)
    names, verbs, things = ["Tom", "Lily", "Sam", "Mia"], ["saw", "liked", "found", "had"], ["a dog", "the ball", "a cake"]
    docs = [" ".join(f"{rng.choice(names)} {rng.choice(verbs)} {rng.choice(things)} ." for _ in range(rng.integers(1, 4)))
            for _ in range(160)]
    family = TransformerFamily.from_config({
        "family": "transformer", "preset": "custom", "hidden_size": 32, "num_layers": 2, "num_heads": 4,
        "window_size": 16, "max_position_embeddings": 64, "context_length": 32, "epochs": 6, "batch_size": 4,
        "micro_batch_size": 2, "lr": 3e-3, "bpe_vocab_size": 300, "max_new_tokens": 40, "sample_batch_size": 4,
        "perplexity_stride": 16, "device": "cpu", "threads": 1, "embed_dropout": 0.1, "resid_dropout": 0.1,
        "checkpoint_steps": 5, "sample_shard_size": 6})
    model = family.fit(Corpus.from_texts(docs), seed=7, work_dir=work)
    sample = model.sample(60, seed=11, threads=1)
    model.save(out)
    with open(os.path.join(out, "sample.txt"), "w") as f:
        f.write("\\n".join(sample.texts()) + "\\n")
    with open(os.path.join(out, "losses.txt"), "w") as f:
        f.write(repr(model.stats.losses) + "\\n")
""")


def _env():
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if env.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.pathsep.join(os.path.abspath(p) for p in env["PYTHONPATH"].split(os.pathsep) if p)
    return env


def _start(script, work, out):
    return subprocess.Popen([sys.executable, str(script), str(work), str(out)], env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _kill_when(proc, condition, timeout=300):
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, f"finished before it could be killed: {proc.communicate()[1][-2000:]}"
        assert time.monotonic() < deadline
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    return proc.communicate()[1]


def _digest(folder):
    return {name: hashlib.sha256((folder / name).read_bytes()).hexdigest()
            for name in ("model.safetensors", "config.json", "tokenizer.json", "collapse_transformer.json",
                         "sample.txt", "losses.txt")}


def test_fit_killed_mid_epoch_and_sampling_killed_mid_shard_resume_identical(tmp_path):
    script = tmp_path / "generation.py"
    script.write_text(SCRIPT)
    full = _start(script, tmp_path / "work_full", tmp_path / "full")
    _, err = full.communicate(timeout=600)
    assert full.returncode == 0, err[-3000:]

    work, out = tmp_path / "work", tmp_path / "broken"
    (fit_dir,) = [p for p in (tmp_path / "work_full").iterdir() if p.name.startswith("fit_")]
    state = work / fit_dir.name / "train_state.pt"

    def mid_training():
        if not state.exists():
            return False
        pos = torch.load(state, weights_only=True)["position"]
        return pos["epoch"] < 6

    # 1. killed during training, after a checkpoint inside an epoch
    _kill_when(_start(script, work, out), mid_training)
    saved = torch.load(state, weights_only=True)
    assert "optimizer" in saved and saved["position"]["epoch"] < 6
    assert not list(work.glob("sample_*.npz"))
    # 2. resumed, then killed during sampling, after its first finished shard
    err = _kill_when(_start(script, work, out), lambda: len(list(work.glob("sample_*.npz"))) >= 1)
    assert f"resumed from {state} at step {saved['position']['steps']} " in err  # not from scratch
    assert 1 <= len(list(work.glob("sample_*.npz"))) < 10  # 60 sequences = 10 shards of 6
    assert "optimizer" not in torch.load(state, weights_only=True)  # training had finished
    # 3. resumed to the end
    last = _start(script, work, out)
    _, err = last.communicate(timeout=600)
    assert last.returncode == 0, err[-3000:]
    assert len(list(work.glob("sample_*.npz"))) == 10
    assert _digest(out) == _digest(tmp_path / "full")
