"""One generation's downstream stage: every task x fine-tuning seed, cached task by task.

A killed generation resumes where it stopped (docs/downstream.md)."""

from __future__ import annotations

import math
import os
import time
import zlib
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional

import numpy as np

from ... import _core
from ...data.codegrammar import get_code_grammar
from ...data.embedded import embedded_source
from ...data.storygrammar import get_grammar
from ...errors import CollapseError
from ...files import read_json, write_json
from .builtin import BUILTIN_TASKS, TASK_SOURCES
from .scores import classification_scores
from .tasks import TaskData, load_task

RESULTS_FILE = "downstream.json"  # in each evaluated gen_NNNN: the generation's rows (and generation 0's baseline)
CACHE_FOLDER = "downstream"       # in the generation's work folder: one finished (task, seed, model) per file
BASELINE = -1                     # the generation column of the untrained baseline's rows

_TASKS: Dict[tuple, TaskData] = {}  # a process's tasks, read or drawn once


def task_data(cfg: Any, task: Any) -> TaskData:
    """The examples of one [downstream] task (built-in: drawn from the embedded source it
    needs, with [data]'s parameters when [data] is that source, else its defaults)."""
    d = cfg.data
    key = (repr(sorted(vars(task).items())), repr(sorted(vars(d).items())))
    if key not in _TASKS:
        if task.builtin:
            source = TASK_SOURCES[task.name]
            grammar = embedded_source(d) if d.source == source else (get_code_grammar() if source == "code"
                                                                        else get_grammar())
            _TASKS[key] = BUILTIN_TASKS[task.name](grammar, task.max_train, task.max_test, d.seed)
        else:
            _TASKS[key] = load_task(task, seed=zlib.crc32(task.name.encode("utf-8")) ^ d.seed)
    return _TASKS[key]


def check_tasks(cfg: Any) -> None:
    """Read (or draw) every task before a run writes anything: a dataset without its label
    field, or with one class, is then the run's one-line error, not a cell ended early."""
    ds = getattr(cfg, "downstream", None)
    for task in ds.tasks if ds is not None else []:
        task_data(cfg, task)


def _seed(cell_seed: int, task: str, seed: int) -> int:
    """The fine-tuning seed: the same for every generation of a cell (and for its baseline)."""
    return _core.derive_seed(_core.derive_seed(cell_seed, zlib.crc32(task.encode("utf-8"))), seed) & (2**63 - 1)


@dataclass(frozen=True)
class DownstreamJob:
    """One fine-tuning of a [downstream] task, as a family's registration predicts it
    (FamilyRegistration.downstream(job) -> the predicted class of every test text).

    model: generation t's TrainedModel; train: its training corpus D_t; settings: the
    model table's (validated); order: the cell's order (n-gram); pretrained: fine-tune the
    generation's model (else the untrained baseline: its architecture from scratch, or no
    background text); folder: a folder of the generation's work folder for the model's
    files, kept until the generation is committed; the rest is [downstream]'s."""
    model: Any
    train: Any
    data: TaskData
    settings: Dict[str, Any]
    order: Optional[int]
    seed: int
    pretrained: bool
    folder: str
    threads: int
    max_length: int
    batch_size: int
    lr: float
    epochs: float


def _evaluate(cfg: Any, model_table: Any, cell: Any, model: Any, train: Any, data: TaskData, task: Any,
              seed: int, pretrained: bool, folder: str, predict: Optional[Callable[[DownstreamJob], Any]]) -> np.ndarray:
    ds = cfg.downstream
    if predict is None:  # refused when the config was read; a family registered differently since
        raise CollapseError(f"{model_table.field_name}.family: the {model_table.family!r} family has no "
                            "downstream evaluation")
    return predict(DownstreamJob(model=model, train=train, data=data, settings=model_table.settings,
                                 order=cell.order, seed=seed, pretrained=pretrained, folder=folder,
                                 threads=cfg.experiment.threads, max_length=ds.max_length,
                                 batch_size=ds.batch_size, lr=ds.lr,
                                 epochs=task.epochs if task.epochs is not None else ds.epochs))


def run_stage(cfg: Any, model_table: Any, cell: Any, t: int, model: Any, train: Any, work: str, gdir: str,
              predict: Optional[Callable[[DownstreamJob], Any]] = None) -> float:
    """Evaluate generation t's model (and, at generation 0, the baseline) on every task when
    [downstream] asks for this generation; writes gdir/downstream.json; returns the seconds
    it took (NaN when it did not run). predict: the family's (FamilyRegistration.downstream)."""
    ds = getattr(cfg, "downstream", None)
    if ds is None or t % ds.every:
        return math.nan
    start = time.perf_counter()
    cache = os.path.join(work, CACHE_FOLDER)
    os.makedirs(cache, exist_ok=True)
    folder = os.path.join(cache, "model")
    rows: List[Dict[str, Any]] = []
    for task in ds.tasks:
        data = task_data(cfg, task)
        for s in ds.seeds:
            for pretrained in ([False] if t == 0 else []) + [True]:
                path = os.path.join(cache, f"{task.name}.seed{s}.{'model' if pretrained else 'baseline'}.json")
                if not os.path.exists(path):  # a killed run's finished tasks are kept
                    seed = _seed(cell.seed, task.name, s)
                    predicted = _evaluate(cfg, model_table, cell, model, train, data, task, seed, pretrained, folder,
                                          predict)
                    row = {"generation": t if pretrained else BASELINE, "task": task.name, "finetune_seed": s,
                           **classification_scores(data.test_labels, predicted),
                           "bayes_accuracy": data.bayes_accuracy, "train_examples": len(data.train_texts),
                           "test_examples": len(data.test_texts)}
                    write_json(path, row)
                rows.append(read_json(path))
    os.makedirs(gdir, exist_ok=True)
    write_json(os.path.join(gdir, RESULTS_FILE), {"rows": rows})
    return time.perf_counter() - start
