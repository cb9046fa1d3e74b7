"""The hf family in the experiment loop (issue 24): gpt2, gpt_neox, opt and llama each run
two generations of a study in every init mode (scratch, pretrained, previous; the loop hands
M_{t-1} to fit under "previous"), a real-prefix study's samples begin with real documents'
prefixes, and an init = "previous" run killed with SIGKILL after a committed generation
resumes (M_{t-1} read back from its generation folder) to the metrics and files of a run
that was never killed. Tiny random models made by collapse.hf.tiny; nothing is downloaded."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("torch", reason="the hf family needs torch (collapse[torch])")
pytest.importorskip("transformers", reason="the hf family needs transformers (collapse[transformers])")

import collapse  # noqa: E402
from conftest import kill_when_done  # noqa: E402
from collapse.experiment.config import load_config  # noqa: E402
from collapse.experiment.loop import SYNTHETIC_ARROW, load_corpus_files  # noqa: E402
from collapse.experiment.rundir import TIMING_COLUMNS  # noqa: E402
from collapse.experiment.sources import load_real_data  # noqa: E402
from collapse.hf import HFFamily  # noqa: E402
from collapse.hf.tiny import grammar_tokenizer, make_tiny  # noqa: E402

TYPES = ("gpt2", "gpt_neox", "opt", "llama")
INITS = ("scratch", "pretrained", "previous")
MODEL = dict(family="hf", epochs=1, batch_size=8, micro_batch_size=8, context_length=64, lr=3e-3,
             max_new_tokens=24, sample_batch_size=8, perplexity_stride=32, device="cpu", threads=1)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    tok = grammar_tokenizer(vocab_size=300, documents=400)
    root = tmp_path_factory.mktemp("hf-loop")
    return {t: make_tiny(str(root / t), t, positions=128, tokenizer=tok, seed=5) for t in TYPES}


def study(model, generations=1, documents=24):
    return {"experiment": {"name": "hf-loop", "generations": generations, "seeds": [0], "paradigms": ["replace"],
                           "workers": 1, "progress": False},
            "data": {"source": "grammar", "num_documents": documents, "heldout_documents": 8, "seed": 2},
            "model": {**MODEL, **model}}


def _metrics(df):
    return df.drop(columns=[c for c in TIMING_COLUMNS if c in df.columns]).reset_index(drop=True)


@pytest.mark.parametrize("init", INITS)
@pytest.mark.parametrize("model_type", TYPES)
def test_two_generations_in_every_init_mode(folders, tmp_path, monkeypatch, model_type, init):
    handed = []  # what the loop passed as `previous` to each fit
    fit = HFFamily.fit

    def spy(self, corpus, *, seed, context=None, work_dir=None, previous=None):
        model = fit(self, corpus, seed=seed, context=context, work_dir=work_dir, previous=previous)
        handed.append((previous, model))
        return model

    monkeypatch.setattr(HFFamily, "fit", spy)
    df = collapse.run_experiment(study({"path": folders[model_type], "init": init}), out=str(tmp_path / "run"))
    assert list(df["generation"]) == [0, 1]
    assert (df["family"] == "hf").all()
    for column in ("heldout_ppl", "heldout_bits_per_word", "kl_truth"):
        assert np.isfinite(df[column]).all() and (df[column] > 0).all(), column
    assert len(handed) == 2 and handed[0][0] is None
    # under "previous" generation 1 continues M_0 itself; otherwise nothing is handed over
    assert handed[1][0] is (handed[0][1] if init == "previous" else None)
    (cell,) = [p for p in (tmp_path / "run").iterdir() if p.is_dir()]
    for t in (0, 1):  # every generation's model is a Hugging Face folder (model_every keeps 0 and the last)
        assert (cell / f"gen_{t:04d}" / "config.json").exists()
    synth = load_corpus_files(str(cell / "gen_0001"))
    assert synth.num_documents == 24 and synth.has_source_text


def test_real_prefix_samples_begin_with_real_prefixes(folders, tmp_path):
    """The prefix is part of each generated document (Shumailov et al.'s code): S_0's texts
    begin with the first prefix_tokens tokens of real documents, decoded."""
    out = tmp_path / "run"
    raw = study({"path": folders["llama"], "init": "pretrained", "prompt": "real-prefix", "prefix_tokens": 6})
    collapse.run_experiment(raw, out=str(out))
    (cell,) = [p for p in out.iterdir() if p.is_dir()]
    real = load_real_data(load_config(raw)).real
    tok = HFFamily.load(str(cell / "gen_0000")).tokenizer
    prefixes = {tok.decode_batch([ids[:6]])[0] for ids in tok.encode_batch(list(real.document_texts()))}
    texts = load_corpus_files(str(cell / "gen_0000")).document_texts()
    assert all(any(t.startswith(p) for p in prefixes) for t in texts)


CONFIG = """
[experiment]
name = "hf-previous"
generations = 2
seeds = [0]
paradigms = ["replace"]
workers = 1
progress = false

[data]
source = "grammar"
num_documents = 24
heldout_documents = 8
seed = 2

[model]
family = "hf"
path = "{path}"
init = "previous"
epochs = 1
batch_size = 8
micro_batch_size = 8
context_length = 64
lr = 3e-3
max_new_tokens = 24
sample_batch_size = 8
device = "cpu"
threads = 1

[output]
model_every = 100
"""


def _collapse(*args):
    return [sys.executable, "-m", "collapse", *map(str, args)]


def test_previous_killed_and_resumed_is_identical(folders, tmp_path):
    """model_every = 100 would keep only M_0 and M_2: under "previous" every M_t is kept,
    since a resumed generation continues from it."""
    cfg = tmp_path / "previous.toml"
    cfg.write_text(CONFIG.format(path=folders["gpt2"]))
    full, broken = tmp_path / "full", tmp_path / "broken"
    proc = subprocess.run(_collapse("run", cfg, "--out", full), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    (cell,) = [p.name for p in full.iterdir() if p.is_dir()]
    for t in (0, 1, 2):
        assert (full / cell / f"gen_{t:04d}" / "model.safetensors").exists()

    child = subprocess.Popen(_collapse("run", cfg, "--out", broken), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    done = kill_when_done(child, broken / cell / "state.json", 2)
    assert done == 2  # generation 2 must continue M_1 from disk

    proc = subprocess.run(_collapse("run", cfg, "--out", broken, "--resume"), capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    pd.testing.assert_frame_equal(_metrics(pd.read_csv(full / "metrics.csv")),
                                  _metrics(pd.read_csv(broken / "metrics.csv")))
    for t in (0, 1, 2):
        for name in ("model.safetensors", SYNTHETIC_ARROW):
            a, b = full / cell / f"gen_{t:04d}" / name, broken / cell / f"gen_{t:04d}" / name
            assert a.read_bytes() == b.read_bytes(), (t, name)


def test_two_torchrun_ranks_give_one_process_metrics(folders, tmp_path):
    """`torchrun --nproc_per_node 2 -m collapse run` on an init = "previous" study: DDP
    training and sharded sampling give one process's metrics within DDP's tolerance
    (tests/test_torchrun_loop.py: the ranks sum gradients in another order). Llama: no
    dropout (GPT-2's and OPT's would draw other masks on each rank; docs/hf.md)."""
    if not __import__("torch").distributed.is_available():  # pragma: no cover
        pytest.skip("torch.distributed is not available")
    from test_torchrun_loop import DDP_RTOL, _run

    cfg = tmp_path / "previous.toml"
    cfg.write_text(CONFIG.format(path=folders["llama"]).replace("generations = 2", "generations = 1")
                   .replace("micro_batch_size = 8", "micro_batch_size = 2"))
    one, two = tmp_path / "one", tmp_path / "two"
    assert _run(2, cfg, two).stdout.count("rows in") == 1  # rank 0 alone reports
    _run(1, cfg, one)
    m1, m2 = (_metrics(pd.read_csv(r / "metrics.csv")) for r in (one, two))
    assert list(m2["generation"]) == [0, 1]
    # generation 0 always; generation 1 trains on generation 0's samples, the same unless a
    # draw fell within DDP's rounding of a token boundary
    (cell,) = [p.name for p in one.iterdir() if p.is_dir()]
    same = [(one / cell / "gen_0000" / SYNTHETIC_ARROW).read_bytes() == (two / cell / "gen_0000" / SYNTHETIC_ARROW)
            .read_bytes()]
    gens = [0, 1] if same[0] else [0]
    for column in ("heldout_ppl", "heldout_bits_per_word", "kl_truth"):
        a, b = m1[column][gens].to_numpy(), m2[column][gens].to_numpy()
        assert (abs(a - b) <= DDP_RTOL * abs(a)).all(), (column, a, b)


def test_a_bad_path_in_a_config_names_the_key(tmp_path):
    """The config's error names the [model] key whose folder is missing (one line)."""
    from collapse.errors import CollapseError

    with pytest.raises(CollapseError) as e:
        load_config(study({"path": str(tmp_path / "nowhere")}))
    message = str(e.value)
    assert "\n" not in message
    assert message == f"model.path: {tmp_path / 'nowhere'}: no such model folder"
