"""Scheduling without idle workers (issue 26, item 4): a transformer group's generation 0 is
one task, then each of its cells is a task of its own that an idle worker takes (before,
a one-seed study ran its transformer cells one after another in one process), and the
results equal a serial run's."""

import threading
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

import pandas as pd
import pytest

from collapse.experiment.config import parse_config
from collapse.experiment.loop import cell_groups, plan_tasks, run_tasks, spread_groups, task_width

NEO = {"name": "neo", "family": "transformer", "preset": "custom", "hidden_size": 16, "num_layers": 2,
       "num_heads": 2, "window_size": 16, "max_position_embeddings": 128, "context_length": 96, "epochs": 1,
       "batch_size": 8, "micro_batch_size": 8, "lr": 3e-3, "bpe_vocab_size": 300, "max_new_tokens": 60,
       "sample_batch_size": 50, "device": "cpu", "threads": 1, "progress": False}


def _raw(workers=2, keeps=None):
    raw = {"experiment": {"name": "sched", "generations": 2, "seeds": [0], "workers": workers, "progress": False,
                          "paradigms": ["replace", "accumulate-subsample"]},
           "data": {"source": "grammar", "num_documents": 60, "heldout_documents": 20, "seed": 1},
           "model": [{"name": "tri", "family": "ngram", "order": 2}, dict(NEO)]}
    if keeps:
        raw["filter"] = {"method": "perplexity", "keep_fractions": keeps, "max_rounds": 20}
    return raw


def _plan(raw):
    pytest.importorskip("torch")
    cfg = parse_config(raw)
    return plan_tasks(cfg, spread_groups(cfg, cell_groups(cfg, cfg.cells()), 2))


def test_a_transformer_group_is_one_generation0_task_then_one_task_per_cell():
    tasks = _plan(_raw())
    neo, *ngram = tasks
    assert [c.id for c in neo.cells] == ["neo_replace_s0", "neo_accumulate-subsample_s0"] and neo.through == 0
    assert [[c.id for c in t.cells] for t in neo.then] == [["neo_replace_s0"], ["neo_accumulate-subsample_s0"]]
    assert all(t.resume and t.through is None for t in neo.then)
    assert all(t.through is None and not t.then for t in ngram)  # n-gram groups as before
    assert task_width(tasks) == 2 + len(ngram)


def test_after_generation0_the_cells_run_at_once_on_two_workers():
    # every cell task waits for the other cell's at a barrier: passes only if both are in flight
    neo = _plan(_raw())[0]
    barrier = threading.Barrier(2, timeout=20)
    order = []

    def work(task):
        order.append((task.through, [c.id for c in task.cells]))
        if task.through is None:
            barrier.wait()

    with ThreadPoolExecutor(max_workers=2) as pool:
        run_tasks([neo], 2, lambda task: pool.submit(work, task),
                  lambda futs: next(iter(wait(futs, return_when=FIRST_COMPLETED)[0])), lambda fut: fut.result())
    assert order[0] == (0, ["neo_replace_s0", "neo_accumulate-subsample_s0"]) and len(order) == 3


def test_follow_ups_start_before_tasks_queued_earlier_and_never_past_the_limit():
    neo, *ngram = _plan(_raw())
    started, running, peak = [], [0], [0]
    lock = threading.Lock()

    def work(task):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        started.append(task)
        with lock:
            running[0] -= 1

    with ThreadPoolExecutor(max_workers=1) as pool:
        run_tasks([neo, *ngram], 1, lambda task: pool.submit(work, task),
                  lambda futs: next(iter(wait(futs, return_when=FIRST_COMPLETED)[0])), lambda fut: fut.result())
    assert started[:3] == [neo, *neo.then] and started[3:] == ngram and peak[0] == 1


def test_parallel_transformer_cells_equal_a_serial_run(tmp_path):
    pytest.importorskip("torch")
    from collapse.experiment.loop import run_experiment
    from collapse.experiment.rundir import TIMING_COLUMNS

    def rows(df):
        return df.drop(columns=[c for c in df.columns if c in TIMING_COLUMNS]).reset_index(drop=True)

    raw = _raw(keeps=[1.0, 0.5])  # a filter: the cell tasks read the reference M_0 back from gen_0000
    serial = run_experiment(_raw(workers=1, keeps=[1.0, 0.5]), out=str(tmp_path / "serial"))
    parallel = run_experiment(raw, out=str(tmp_path / "parallel"))
    pd.testing.assert_frame_equal(rows(serial), rows(parallel))
