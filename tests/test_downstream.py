"""The downstream stage (issue 21): built-in tasks at their Bayes rate, generation 0 against
the untrained baseline for both families, resume after SIGKILL between tasks, bad datasets."""

import json
import math
import re
import shutil
import signal
import subprocess
import sys
import time
import tomllib

import numpy as np
import pandas as pd
import pytest

import collapse
from collapse.data.storygrammar import get_grammar
from collapse.experiment.config import parse_config
from collapse.data.codegrammar import get_code_grammar
from collapse.experiment.downstream.builtin import acceptability, acceptability_posterior, code_parity, next_class
from collapse.experiment.downstream.scores import classification_scores
from conftest import run_cli

NGRAM_RUN = """
[experiment]
name = "downstream"
generations = {generations}
seeds = [0]
paradigms = ["replace"]
workers = 1
progress = false

[data]
source = "grammar"
num_documents = {documents}
heldout_documents = 100
seed = 0

[model]
family = "ngram"
order = 3

[downstream]
tasks = [{tasks}]
seeds = [0]
"""


def _config(tmp_path, tasks='"acceptability"', generations=1, documents=600):
    path = tmp_path / "run.toml"
    path.write_text(NGRAM_RUN.format(tasks=tasks, generations=generations, documents=documents))
    return path


def test_next_class_oracle_recovers_the_bayes_rate():
    task = next_class(get_grammar(), 10, 3000, seed=3)
    b = task.bayes_accuracy
    got = classification_scores(task.test_labels, task.oracle)["accuracy"]
    assert abs(got - b) <= 3 * math.sqrt(b * (1 - b) / 3000) + 1e-3, (got, b)
    majority = np.bincount(task.test_labels).max() / task.test_labels.size
    assert majority < 0.5 < b < 1.0  # between chance and certainty: some contexts leave the class open


def test_oracle_recovers_the_bayes_rate():
    """The Bayes classifier (posterior from the grammar's exact probabilities) labels the
    test set at the task's stated Bayes accuracy; a guess is at 1/2."""
    task = acceptability(get_grammar(), 10, 3000, seed=7)
    b = task.bayes_accuracy
    assert 0.9 < b <= 1.0
    got = classification_scores(task.test_labels, task.oracle)["accuracy"]
    assert abs(got - b) <= 3 * math.sqrt(b * (1 - b) / 3000) + 1e-3, (got, b)
    assert abs(task.test_labels.mean() - 0.5) < 0.04  # the swap is a fair coin: chance is 1/2
    # the posterior is the exact one: a story as written is real, a swap that the grammar
    # cannot write is swapped, and swapping identical neighbours tells nothing more than the prior odds allow
    story = task.test_texts[int(np.flatnonzero(task.test_labels == 1)[0])]
    tokens = story.split()
    assert acceptability_posterior(get_grammar(), story) > 0.9
    broken = tokens[:-3] + [tokens[-2], tokens[-3], tokens[-1]]
    assert acceptability_posterior(get_grammar(), " ".join(broken)) < 0.5


def test_code_parity_oracle_runs_the_program():
    """code_parity: the label is the parity of the last assignment's value, a function of
    the text, so the oracle (running the program) is always right: the Bayes rate is 1,
    above a majority class that is neither all nor none."""
    task = code_parity(get_code_grammar(), 50, 2000, seed=5)
    assert task.bayes_accuracy == 1.0 and task.classes == ["odd", "even"]
    assert (task.oracle == task.test_labels).all()
    majority = np.bincount(task.test_labels).max() / task.test_labels.size
    assert 0.5 < majority < 0.95
    assert len(task.test_texts) == 2000 and all(" = " in x or "print" in x for x in task.test_texts)
    # hand-checked programs (an identifier never assigned reads 0)
    g = get_code_grammar()
    assert g.run("b = 3 ; a = ( b * 2 ) ;".split()) == 6
    assert not g.last_value_is_even("x = 3 ;".split())
    assert g.last_value_is_even("y = ( k + sum ) ;".split())


def test_code_parity_in_a_code_run_uses_the_runs_grammar(tmp_path):
    """In a run on `source = "code"` the task draws from [data]'s code grammar; in a story
    run from the default code grammar (the task needs programs either way)."""
    from collapse.experiment.downstream.stage import task_data

    cfg = parse_config(tomllib.loads(NGRAM_RUN.format(tasks='{name = "code_parity", max_train = 20, max_test = 30}',
                                        generations=1, documents=100).replace('source = "grammar"',
                                        'source = "code"\nnum_identifiers = 50')))
    words = {w for x in task_data(cfg, cfg.downstream.tasks[0]).test_texts for w in x.split()}
    small = set(get_code_grammar(num_identifiers=50).words)
    assert words <= small
    story_cfg = parse_config(tomllib.loads(NGRAM_RUN.format(tasks='"code_parity"', generations=1, documents=100)))
    default = task_data(story_cfg, story_cfg.downstream.tasks[0])
    assert {w for x in default.test_texts for w in x.split()} <= set(get_code_grammar().words)


def test_ngram_generation0_beats_the_uniform_baseline(tmp_path):
    """Generative classification with the generation's counts beats class models adapted
    from the uniform model alone (fixed seeds); every row is in downstream.csv and .parquet."""
    cfg = _config(tmp_path, tasks='{name = "next_class", max_train = 200, max_test = 500}', documents=1000)
    df = collapse.run_experiment(str(cfg), out=str(tmp_path / "run"))
    assert "downstream_seconds" in df.columns and (df["downstream_seconds"] > 0).all()
    ds = pd.read_csv(tmp_path / "run" / "downstream.csv")
    assert list(ds.columns[:8]) == ["model", "family", "paradigm", "alpha", "seed", "generation", "task",
                                    "finetune_seed"]
    assert sorted(ds["generation"]) == [-1, 0, 1]
    acc = ds.set_index("generation")["accuracy"]
    assert acc[0] > acc[-1] + 0.1, acc
    assert (ds["accuracy"] <= ds["bayes_accuracy"] + 0.02).all()
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "run" / "downstream.parquet"), ds, check_dtype=False)
    assert (tmp_path / "run" / "downstream.png").exists()
    assert "Downstream" in (tmp_path / "run" / "report.html").read_text()


TINY_TRANSFORMER = dict(preset="custom", hidden_size=64, num_layers=2, num_heads=4, window_size=64,
                        max_position_embeddings=128, context_length=128, epochs=3, batch_size=8, micro_batch_size=8,
                        bpe_vocab_size=400, max_new_tokens=40, sample_batch_size=32, perplexity_stride=64,
                        device="cpu", precision="fp32", threads=1, lr=3e-3)


def test_transformer_generation0_beats_the_random_baseline_and_needs_a_trained_head(tmp_path):
    """A GPT-Neo trained on the grammar's stories (generation 0), fine-tuned with a
    classification head on next_class, beats the same architecture randomly initialised and
    fine-tuned the same way (fixed seeds); with the head left untrained it is below the
    majority class, so the margin measures the training."""
    pytest.importorskip("torch")
    from collapse.transformer.family import TransformerFamily
    from collapse.experiment.downstream.transformer import finetune_predict

    real = get_grammar().sample(600, 5)[0]
    family = TransformerFamily.from_config({"family": "transformer", **TINY_TRANSFORMER})
    family.prepare(real)
    model = family.fit(real, seed=1)
    folder = str(tmp_path / "gen_0000")
    model.model.save_pretrained(folder)
    task = next_class(get_grammar(), 300, 300, seed=0)

    def accuracy(pretrained, lr):
        predicted = finetune_predict(folder, model.tokenizer, task, pretrained=pretrained, seed=3, max_length=128,
                                     batch_size=8, lr=lr, epochs=1)
        return classification_scores(task.test_labels, predicted)["accuracy"]

    majority = np.bincount(task.test_labels).max() / task.test_labels.size
    generation0, baseline = accuracy(True, 1e-3), accuracy(False, 1e-3)
    assert generation0 > baseline + 0.03, (generation0, baseline)
    assert generation0 > majority + 0.2, (generation0, majority)
    assert accuracy(True, 1e-12) < majority  # the head as initialised: what an untrained head scores


def test_resume_after_sigkill_between_tasks_is_byte_identical(tmp_path):
    """Killed after a generation's first task finished and before the generation committed,
    the resumed run keeps that task's result (it is not redone) and ends with the very
    downstream table of an uninterrupted run."""
    rows = [{"sentence": f"w{i % 7} w{(i * 3) % 5} x{i % 2}", "label": int(i % 2)} for i in range(300)]
    data = tmp_path / "parity.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tasks = ('{name = "acceptability", max_train = 1500, max_test = 600}, '
             f'{{name = "parity", path = "{data}", text_field = "sentence"}}')
    cfg = _config(tmp_path, tasks=tasks, generations=4, documents=1500)
    full, broken = tmp_path / "full", tmp_path / "broken"
    code, _, err = run_cli("run", cfg, "--out", full)
    assert code == 0, err

    child = subprocess.Popen([sys.executable, "-m", "collapse", "run", str(cfg), "--out", str(broken)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cell = broken / "replace_o3_s0"
    first = None
    deadline = time.time() + 300
    while time.time() < deadline and child.poll() is None:
        done = list(cell.glob("work_000[2-4]/downstream/acceptability.seed0.model.json"))
        if done:
            first = done[0]
            break
        time.sleep(0.002)
    assert child.poll() is None and first is not None, "the run finished before it could be killed; make it longer"
    child.send_signal(signal.SIGKILL)
    child.wait()
    t = int(first.parent.parent.name[5:])
    assert json.loads((cell / "state.json").read_text())["generations_done"] == t, "killed after the commit"
    # a copy whose kept result is marked: its resume must show the mark (read back, not redone)
    marked = tmp_path / "marked"
    shutil.copytree(broken, marked)
    kept = marked / first.relative_to(broken)
    kept.write_text(json.dumps({**json.loads(kept.read_text()), "accuracy": 0.125}))

    for run in (broken, marked):
        code, _, err = run_cli("run", cfg, "--out", run, "--resume")
        assert code == 0, err
    marks = pd.read_csv(marked / "downstream.csv").query("generation == @t and task == 'acceptability'")
    assert list(marks["accuracy"]) == [0.125]
    assert (full / "downstream.csv").read_bytes() == (broken / "downstream.csv").read_bytes()
    pd.testing.assert_frame_equal(pd.read_parquet(full / "downstream.parquet"),
                                  pd.read_parquet(broken / "downstream.parquet"), check_exact=True)
    for k in range(5):
        rel = f"replace_o3_s0/gen_{k:04d}/downstream.json"
        assert (full / rel).read_bytes() == (broken / rel).read_bytes(), rel


@pytest.mark.parametrize("rows, message", [
    ([{"text": "a b", "class": 0}, {"text": "b a", "class": 1}] * 10, "has no field 'label'"),
    ([{"text": f"a {i}", "label": "pos"} for i in range(20)], "1 class ('pos')"),
])
def test_a_bad_dataset_is_a_one_line_error(tmp_path, rows, message):
    data = tmp_path / "task.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = _config(tmp_path, tasks=f'{{name = "mine", path = "{data}"}}')
    code, _, err = run_cli("run", cfg, "--out", tmp_path / "run")
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and message in err, err
    assert not (tmp_path / "run").exists()  # found before anything was written


@pytest.mark.parametrize("table, message", [
    ({"task": ["acceptability"]}, "downstream.task: unknown key (did you mean 'tasks'?)"),
    ({"tasks": ["acceptabilty"]}, "is no built-in task (did you mean 'acceptability'?)"),
    ({"tasks": [{"name": "x", "path": "nowhere.jsonl"}]}, "no such file"),
    ({"tasks": ["acceptability"], "every": 0}, "downstream.every"),
])
def test_downstream_config_errors_name_the_field(table, message):
    with pytest.raises(collapse.CollapseError, match=re.escape(message)):
        parse_config({"downstream": table})
