"""A downstream task's examples: read from a local labelled dataset and split.

Formats: JSONL, CSV, parquet, Arrow or a Hugging Face ``save_to_disk`` folder (built-in
tasks draw theirs: builtin.py)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, List, Optional

import numpy as np

from ...data.corpus import arrow_files
from ...errors import CollapseError

PAIR_SEPARATOR = "\n"  # between a text and its pair (text_pair_field): both families read it as a space


@dataclass
class TaskData:
    name: str
    train_texts: List[str]
    train_labels: np.ndarray   # int64 class indices into classes
    test_texts: List[str]
    test_labels: np.ndarray
    classes: List[str]
    bayes_accuracy: float = float("nan")  # built-in tasks: the Bayes classifier's expected accuracy on the test inputs
    oracle: Optional[np.ndarray] = field(default=None, repr=False)  # built-in tasks: the Bayes classifier's labels

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def _read_table(path: str) -> Any:
    """A pandas DataFrame of a file or of a save_to_disk folder of one split."""
    import pandas as pd

    if not os.path.exists(path):
        raise CollapseError(f"no such file or directory: {path}")
    lower = path.lower()
    try:
        if os.path.isdir(path) or lower.endswith(".arrow"):
            import pyarrow as pa

            tables = []
            for file in arrow_files(path):
                with pa.memory_map(file) as source:
                    try:
                        tables.append(pa.ipc.open_stream(source).read_all())
                    except pa.ArrowInvalid:
                        tables.append(pa.ipc.open_file(source).read_all())
            return pa.concat_tables(tables).to_pandas()
        if lower.endswith((".jsonl", ".json")):
            return pd.read_json(path, lines=lower.endswith(".jsonl"))
        if lower.endswith((".csv", ".tsv")):
            return pd.read_csv(path, sep="\t" if lower.endswith(".tsv") else ",")
        if lower.endswith(".parquet"):
            return pd.read_parquet(path)
    except (ValueError, OSError) as e:
        raise CollapseError(f"{path}: cannot read it ({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    raise CollapseError(f"{path}: not a .jsonl, .json, .csv, .tsv, .parquet or .arrow file nor a save_to_disk folder")


def _columns(frame: Any, task: Any, where: str) -> "tuple[List[str], List[Any]]":
    fields = [task.text_field, task.label_field] + ([task.text_pair_field] if task.text_pair_field else [])
    for name in fields:
        if name not in frame.columns:
            raise CollapseError(f"downstream task {task.name}: {where} has no field {name!r} "
                                f"(fields: {', '.join(map(str, frame.columns))})")
    frame = frame.dropna(subset=fields)
    texts = frame[task.text_field].astype(str).tolist()
    if task.text_pair_field:
        texts = [a + PAIR_SEPARATOR + b for a, b in zip(texts, frame[task.text_pair_field].astype(str).tolist())]
    return texts, frame[task.label_field].tolist()


def _cap(texts: List[str], labels: List[Any], limit: Optional[int], seed: int) -> "tuple[List[str], List[Any]]":
    """A seeded shuffle cut to ``limit`` examples (the paper's 5,000 shuffled IMDB test reviews)."""
    if limit is None or limit >= len(texts):
        return texts, labels
    keep = np.random.Generator(np.random.Philox(seed)).permutation(len(texts))[:limit]
    return [texts[i] for i in keep], [labels[i] for i in keep]


def load_task(task: Any, seed: int) -> TaskData:
    """The examples of a [downstream] task table read from its path (config.DownstreamTask)."""
    path = task.path
    if os.path.isdir(path) and os.path.exists(os.path.join(path, "dataset_dict.json")):
        train = _columns(_read_table(os.path.join(path, task.train_split)), task, f"{path} split {task.train_split}")
        test = _columns(_read_table(os.path.join(path, task.test_split)), task, f"{path} split {task.test_split}")
    elif task.test_path is not None:
        train = _columns(_read_table(path), task, path)
        test = _columns(_read_table(task.test_path), task, task.test_path)
    else:
        texts, labels = _columns(_read_table(path), task, path)
        order = np.random.Generator(np.random.Philox(seed)).permutation(len(texts))
        n_test = int(round(task.test_fraction * len(texts)))
        test = [texts[i] for i in order[:n_test]], [labels[i] for i in order[:n_test]]
        train = [texts[i] for i in order[n_test:]], [labels[i] for i in order[n_test:]]
    train = _cap(*train, task.max_train, seed)
    test = _cap(*test, task.max_test, seed + 1)
    classes = sorted(set(train[1]), key=lambda v: (str(type(v)), v))
    if len(classes) < 2:
        shown = f" ({classes[0]!r})" if classes else ""
        raise CollapseError(f"downstream task {task.name}: its training examples have {len(classes)} class{shown}; "
                            "a classifier needs at least two")
    index = {c: i for i, c in enumerate(classes)}
    unknown = [v for v in test[1] if v not in index]
    if unknown:
        raise CollapseError(f"downstream task {task.name}: test label {unknown[0]!r} is not among the training labels")
    if not test[0]:
        raise CollapseError(f"downstream task {task.name}: no test examples")
    return TaskData(task.name, train[0], np.array([index[v] for v in train[1]], dtype=np.int64),
                    test[0], np.array([index[v] for v in test[1]], dtype=np.int64), [str(c) for c in classes])
