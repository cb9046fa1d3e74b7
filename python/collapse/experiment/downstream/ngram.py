"""Generative classification with n-gram models: one model per class, adapted from the generation's counts.

Class c's model is fitted (same order and smoothing as the generation's) on the generation's
own training corpus (the counts its model was estimated from) followed by the task's training
texts of class c; a test text goes to argmax_c log p_c(text) + log P(c) (P(c): the class's
share of the training texts). The baseline is the uniform model adapted the same way: class
models fitted on the task's texts alone (no counts to start from; Kneser-Ney's lowest order
then interpolates with the uniform distribution). So a generation helps exactly as far as its
counts smooth the class models better than nothing does.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np

from ...data.corpus import Corpus, concatenate
from ...ngram.model import NGramModel
from .tasks import TaskData


def ngram_predict(task: TaskData, background: Optional[Corpus], order: int, smoothing: str,
                  threads: int = 1) -> np.ndarray:
    """The predicted class of every test text (background None: the uniform baseline)."""
    test = Corpus.from_texts(task.test_texts)
    scores = np.empty((len(task.test_texts), task.num_classes))
    for c in range(task.num_classes):
        texts = [x for x, y in zip(task.train_texts, task.train_labels) if y == c]
        if not texts:  # a class no training text has (a built-in task's rare class): never predicted
            scores[:, c] = -np.inf
            continue
        part = Corpus.from_texts(texts)
        corpus = part if background is None else concatenate([background, part])
        model = NGramModel.fit(corpus, order=order, smoothing=smoothing, threads=threads)
        scores[:, c] = model.score(test, threads=threads) + math.log10(len(texts) / len(task.train_texts))
    return np.argmax(scores, axis=1)
