"""Built-in downstream tasks drawn from the story grammar, each with its exact Bayes-optimal accuracy.

``acceptability`` (the grammar's CoLA): a story from the grammar, and with probability 1/2
the same story with two adjacent tokens swapped (the position uniform); label 1 = as the
grammar wrote it, 0 = swapped. The Bayes posterior of every text is exact: with p the
grammar's story probability (StoryGrammar.log_prob) and n the story's length,
P(real | x) = p(x) / (p(x) + q(x)), q(x) = sum_i p(swap_i(x)) / (n - 1) (a swap is its own
inverse, so the stories that a swap turns into x are the swaps of x). ``bayes_accuracy`` is
the Bayes classifier's expected accuracy on the test inputs, mean_x max(P(real|x), P(swapped|x)),
computed exactly from the grammar (its expectation over test sets is the task's Bayes rate);
a random guess scores 1/2.

Why not "which feeling a story is about, with the feeling words masked": the grammar draws
every class word independently of the rest of the story, so the masked text says nothing
about it, and the Bayes rate of such a task is the prior's largest class: every model ties.

Adding a task: a function (grammar, train_size, test_size, seed) -> TaskData in
BUILTIN_TASKS. A ``code`` task (whether a code document's expression evaluates to an even
number) registers here once the code data source exists, with its builder drawing from it.
"""

from __future__ import annotations

import zlib
from typing import Callable, Dict, List, Tuple

import numpy as np

from ...data.storygrammar import StoryGrammar
from .tasks import TaskData


def task_seed(name: str, seed: int) -> int:
    """The task's data seed: a function of its name and [data] seed only, so every cell and
    generation is evaluated on the same examples."""
    return (zlib.crc32(name.encode("utf-8")) << 20) ^ int(seed)


def _swap(tokens: List[str], i: int) -> List[str]:
    out = list(tokens)
    out[i], out[i + 1] = out[i + 1], out[i]
    return out


def acceptability_examples(grammar: StoryGrammar, size: int, seed: int) -> Tuple[List[str], np.ndarray]:
    """size texts and labels (1 = the grammar's story, 0 = two adjacent tokens swapped)."""
    corpus, _ = grammar.sample(size, seed)
    rng = np.random.Generator(np.random.Philox(seed + 1))
    swapped = rng.random(size) < 0.5
    where = rng.random(size)
    words = corpus.vocab.words
    texts, labels = [], np.ones(size, dtype=np.int64)
    for k, doc in enumerate(corpus.documents()):
        tokens = [words[i] for i in doc]
        if swapped[k] and len(tokens) >= 2:
            tokens = _swap(tokens, int(where[k] * (len(tokens) - 1)))
            labels[k] = 0
        texts.append(" ".join(tokens))
    return texts, labels


def acceptability_posterior(grammar: StoryGrammar, text: str) -> float:
    """Exact P(label 1 | text) under the task's generative process (module docstring)."""
    tokens = text.split()
    p = float(np.exp(grammar.log_prob(tokens)))
    n = len(tokens)
    q = sum(float(np.exp(grammar.log_prob(_swap(tokens, i)))) for i in range(n - 1)) / (n - 1) if n >= 2 else 0.0
    return p / (p + q) if p + q > 0 else 0.5


def acceptability(grammar: StoryGrammar, train_size: int, test_size: int, seed: int) -> TaskData:
    train_x, train_y = acceptability_examples(grammar, train_size, task_seed("acceptability/train", seed))
    test_x, test_y = acceptability_examples(grammar, test_size, task_seed("acceptability/test", seed))
    posterior = np.array([acceptability_posterior(grammar, x) for x in test_x])
    return TaskData("acceptability", train_x, train_y, test_x, test_y, ["swapped", "real"],
                    bayes_accuracy=float(np.mean(np.maximum(posterior, 1.0 - posterior))),
                    oracle=(posterior >= 0.5).astype(np.int64))


# name -> builder(grammar, train_size, test_size, seed); the `code` task goes here (docstring)
BUILTIN_TASKS: Dict[str, Callable[[StoryGrammar, int, int, int], TaskData]] = {"acceptability": acceptability}
