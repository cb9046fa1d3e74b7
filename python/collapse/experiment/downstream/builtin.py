"""Built-in downstream tasks drawn from the story grammar, each with its exact Bayes-optimal accuracy.

``acceptability`` (the grammar's CoLA): a story from the grammar, and with probability 1/2
the same story with two adjacent tokens swapped, the pair uniform among its last WINDOW
pairs (i, i + 1) (near the end, where a classification head reading the last token sees it);
label 1 = as the grammar wrote it, 0 = swapped. The Bayes posterior of every text is exact:
with p the grammar's story probability (StoryGrammar.log_prob) and I the WINDOW positions
(a swap keeps the length, so x's positions are its source's),
P(real | x) = p(x) / (p(x) + q(x)), q(x) = sum_{i in I} p(swap_i(x)) / |I| (a swap is its
own inverse, so the stories that a swap turns into x are the swaps of x). ``bayes_accuracy`` is
the Bayes classifier's expected accuracy on the test inputs, mean_x max(P(real|x), P(swapped|x)),
computed exactly from the grammar (its expectation over test sets is the task's Bayes rate);
a random guess scores 1/2.

Why not "which feeling a story is about, with the feeling words masked": the grammar draws
every class word independently of the rest of the story, so the masked text says nothing
about it, and the Bayes rate of such a task is the prior's largest class: every model ties.

``code_parity`` (from the code grammar, data.codegrammar): a program, labelled by whether
the value of its last assignment executed is even (CodeGrammar.last_value_is_even). The
label is a function of the text, so the Bayes rate is 1 (the oracle runs the program); the
majority class ("even", about 0.8 at the default grammar) is what a model that cannot
evaluate arithmetic scores.

Adding a task: a function (source, train_size, test_size, seed) -> TaskData in
BUILTIN_TASKS, and the embedded source it draws from ("grammar" or "code") in TASK_SOURCES.
"""

from __future__ import annotations

import zlib
from typing import Callable, Dict, List, Tuple

import numpy as np

from ...data.codegrammar import CodeGrammar
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


WINDOW = 6  # the swap is of one of the story's last WINDOW adjacent pairs: near the end the head reads


def _positions(n: int) -> range:
    """The adjacent pairs (i, i + 1) a swap may take in a story of n tokens."""
    return range(max(0, n - 1 - WINDOW), n - 1)


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
            positions = _positions(len(tokens))
            tokens = _swap(tokens, positions[int(where[k] * len(positions))])
            labels[k] = 0
        texts.append(" ".join(tokens))
    return texts, labels


def acceptability_posterior(grammar: StoryGrammar, text: str) -> float:
    """Exact P(label 1 | text) under the task's generative process (module docstring)."""
    tokens = text.split()
    p = float(np.exp(grammar.log_prob(tokens)))
    n = len(tokens)
    positions = _positions(n)
    q = sum(float(np.exp(grammar.log_prob(_swap(tokens, i)))) for i in positions) / len(positions) if n >= 2 else 0.0
    return p / (p + q) if p + q > 0 else 0.5


def acceptability(grammar: StoryGrammar, train_size: int, test_size: int, seed: int) -> TaskData:
    train_x, train_y = acceptability_examples(grammar, train_size, task_seed("acceptability/train", seed))
    test_x, test_y = acceptability_examples(grammar, test_size, task_seed("acceptability/test", seed))
    posterior = np.array([acceptability_posterior(grammar, x) for x in test_x])
    return TaskData("acceptability", train_x, train_y, test_x, test_y, ["swapped", "real"],
                    bayes_accuracy=float(np.mean(np.maximum(posterior, 1.0 - posterior))),
                    oracle=(posterior >= 0.5).astype(np.int64))


def _next_class_probs(grammar: StoryGrammar, index: Dict[str, int], owner: Dict[int, str],
                      prefix: List[str]) -> Dict[str, float]:
    """P(the next word's class | prefix, the next word is a class word), exactly: the PDFA's
    state after the prefix and its next-token distribution."""
    s = grammar.start_state
    for tok in prefix:
        s = int(grammar.edge_target[grammar._transition[(s, index[tok])]])
    lo, hi = int(grammar.edges.ptr[s]), int(grammar.edges.ptr[s + 1])
    mass: Dict[str, float] = {}
    for w, p in zip(grammar.edge_word[lo:hi].tolist(), grammar.edges.prob[lo:hi].tolist()):
        if w in owner:
            mass[owner[w]] = mass.get(owner[w], 0.0) + p
    total = sum(mass.values())
    return {c: m / total for c, m in mass.items()}


def next_class(grammar: StoryGrammar, train_size: int, test_size: int, seed: int) -> TaskData:
    """``next_class``: a story cut just before one of its class words (the position uniform
    among them); the label is that word's class (NAME, ANIMAL, OBJECT, ...). What a language
    model predicts next is what the head reads, so pretraining should show; the Bayes
    posterior is the grammar's next-token distribution after the prefix, summed by class."""
    classes = list(grammar.classes)
    index = {w: i for i, w in enumerate(grammar.words)}
    owner = {index[w]: c for c, ws in grammar.classes.items() for w in ws}

    def examples(size: int, part: str) -> "tuple[List[str], np.ndarray, List[Dict[str, float]]]":
        key = task_seed("next_class/" + part, seed)
        corpus, _ = grammar.sample(size, key)
        where = np.random.Generator(np.random.Philox(key + 1)).random(size)
        words = corpus.vocab.words
        texts, labels, posts = [], np.zeros(size, dtype=np.int64), []
        for k, doc in enumerate(corpus.documents()):
            tokens = [words[i] for i in doc]
            slots = [i for i, tok in enumerate(tokens) if index[tok] in owner]
            i = slots[int(where[k] * len(slots))]
            texts.append(" ".join(tokens[:i]))
            labels[k] = classes.index(owner[index[tokens[i]]])
            posts.append(_next_class_probs(grammar, index, owner, tokens[:i]))
        return texts, labels, posts

    train_x, train_y, _ = examples(train_size, "train")
    test_x, test_y, posts = examples(test_size, "test")
    oracle = np.array([classes.index(max(p, key=lambda c: (p[c], c))) for p in posts], dtype=np.int64)
    return TaskData("next_class", train_x, train_y, test_x, test_y, classes,
                    bayes_accuracy=float(np.mean([max(p.values()) for p in posts])), oracle=oracle)


def code_parity(grammar: CodeGrammar, train_size: int, test_size: int, seed: int) -> TaskData:
    """``code_parity`` (module docstring): is the last assignment's value even?"""
    def examples(size: int, part: str) -> "tuple[List[str], np.ndarray]":
        corpus, _ = grammar.sample(size, task_seed("code_parity/" + part, seed))
        return list(corpus.texts()), grammar.corpus_labels(corpus).astype(np.int64)

    train_x, train_y = examples(train_size, "train")
    test_x, test_y = examples(test_size, "test")
    return TaskData("code_parity", train_x, train_y, test_x, test_y, ["odd", "even"], bayes_accuracy=1.0,
                    oracle=np.array([grammar.last_value_is_even(x.split()) for x in test_x], dtype=np.int64))


# name -> builder(source, train_size, test_size, seed), and the embedded source it draws from
BUILTIN_TASKS: Dict[str, Callable[..., TaskData]] = {
    "acceptability": acceptability, "next_class": next_class, "code_parity": code_parity}
TASK_SOURCES: Dict[str, str] = {"acceptability": "grammar", "next_class": "grammar", "code_parity": "code"}
