"""Fine-tuning a generation's GPT-Neo with a sequence-classification head, and its baseline.

transformers' GPTNeoForSequenceClassification on the Hugging Face folder our model saves;
the baseline: the same architecture randomly initialised, fine-tuned the same way.

The head reads the last non-padding token (padding: the end-of-text token, which no task
text contains); AdamW at a constant learning rate, batches of a seeded permutation, the
paper's settings by default (max length 128, batch 8, lr 2e-5, 1 epoch). The seed fixes the
head's initialisation (and the baseline's whole initialisation) and the data order.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any, Iterator, List

import numpy as np

from .tasks import TaskData


@contextlib.contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    if n > 0:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _batch(ids: List[np.ndarray], pad: int) -> "tuple[Any, Any]":
    import torch

    width = max(1, max(len(x) for x in ids))
    tokens = torch.full((len(ids), width), pad, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for i, x in enumerate(ids):
        tokens[i, :len(x)] = torch.as_tensor(x, dtype=torch.long)
        mask[i, :len(x)] = 1
    return tokens, mask


def finetune_predict(folder: str, tokenizer: Any, task: TaskData, *, pretrained: bool, seed: int,
                     max_length: int, batch_size: int, lr: float, epochs: float, threads: int = 1,
                     device: str = "cpu") -> np.ndarray:
    """Fine-tune the model in ``folder`` (pretrained) or its architecture from a random
    initialisation (not pretrained) on the task's training texts, on ``device`` (the
    generation's model's); the test texts' predicted classes."""
    from transformers.utils import logging as hf_logging

    eot = int(tokenizer.eot_id)
    encode = lambda texts: [np.asarray(x[:max_length]) for x in tokenizer.encode_batch(texts)]  # noqa: E731
    train_ids, test_ids = encode(task.train_texts), encode(task.test_texts)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # its load report (the new head is "missing") would print at every generation
    try:
        return _finetune(folder, task, train_ids, test_ids, eot, pretrained, seed, batch_size, lr, epochs, threads,
                         device)
    finally:
        hf_logging.set_verbosity(verbosity)


def _finetune(folder: str, task: TaskData, train_ids: List[np.ndarray], test_ids: List[np.ndarray], eot: int,
              pretrained: bool, seed: int, batch_size: int, lr: float, epochs: float, threads: int,
              device: str) -> np.ndarray:
    import torch
    from transformers import GPTNeoConfig, GPTNeoForSequenceClassification

    with _torch_threads(threads):
        torch.manual_seed(seed)
        if pretrained:
            model = GPTNeoForSequenceClassification.from_pretrained(folder, num_labels=task.num_classes,
                                                                    pad_token_id=eot)
        else:
            config = GPTNeoConfig.from_pretrained(folder, num_labels=task.num_classes, pad_token_id=eot)
            model = GPTNeoForSequenceClassification(config)
        model.to(device)
        optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
        labels = torch.as_tensor(task.train_labels, dtype=torch.long, device=device)
        rng = np.random.Generator(np.random.Philox(seed))
        n = len(train_ids)
        steps = max(1, math.ceil(epochs * n / batch_size))
        order: List[int] = []
        model.train()
        for _ in range(steps):
            if len(order) < batch_size:
                order.extend(rng.permutation(n).tolist())
            rows, order = order[:batch_size], order[batch_size:]
            tokens, mask = _batch([train_ids[i] for i in rows], eot)
            loss = model(input_ids=tokens.to(device), attention_mask=mask.to(device), labels=labels[rows]).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        model.eval()
        out = []
        with torch.no_grad():
            for first in range(0, len(test_ids), 64):
                tokens, mask = _batch(test_ids[first:first + 64], eot)
                logits = model(input_ids=tokens.to(device), attention_mask=mask.to(device)).logits
                out.append(logits.argmax(-1).cpu().numpy())
    return np.concatenate(out).astype(np.int64)
