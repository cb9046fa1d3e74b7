"""Scoring held-out text: per-document log-probabilities and two sliding-window perplexities.

- ``document_log_probs``: the natural-log probability of each document as text (its BPE
  tokens and the end-of-text after it, given the end-of-text before it), which is what
  puts the transformer on the same per-word scale as the n-gram family.
- ``sliding_window_nll`` (ours, below): the text as one stream scored token by token.
- ``paper_perplexity_per_story`` and ``paper_perplexity``: the numbers the paper's
  evaluate_ppl.py reports, in its current version (each story on its own) and its older
  one (the stories joined by blank lines); see there.

``sliding_window_nll``: the text is one token stream: end-of-text, document, end-of-text, document, ... (as in
training). Every token after the first is scored exactly once: the tokens are taken
``stride`` at a time, each group by a window of at most ``max_length`` tokens that ends
with it, so every token sees at least max_length - stride tokens of context (fewer only
at the start). Perplexity = exp(mean negative log likelihood per token), end-of-text
tokens included.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from ..errors import CollapseError
from .backend import CausalLM, as_lm
from .model import GPTNeo
from .precision import resolve_precision

Model = Union[GPTNeo, CausalLM]  # a GPTNeo is scored through its adapter (backend.as_lm)


@dataclass
class PerplexityResult:
    nll_sum: float
    num_tokens: int

    @property
    def perplexity(self) -> float:
        return math.exp(self.nll_sum / self.num_tokens) if self.num_tokens else float("nan")


def windows(length: int, max_length: int, stride: int) -> List[Tuple[int, int, int]]:
    """(begin, end, first scored position) of each window over a stream of ``length``.

    The scored positions 1..length-1 are cut into consecutive chunks of ``stride`` tokens
    (at most max_length - 1, since a window of max_length tokens predicts max_length - 1
    of them); the chunk [first, end) is scored by the window [max(0, end - max_length), end),
    so each of its tokens sees at least max_length - stride tokens of context (fewer only
    at the start of the stream)."""
    if max_length < 2:
        raise CollapseError("perplexity: max_length must be at least 2")
    if stride < 1:
        raise CollapseError(f"perplexity: stride must be positive, got {stride}")
    stride = min(stride, max_length - 1)
    out = []
    for first in range(1, length, stride):
        end = min(first + stride, length)
        out.append((max(0, end - max_length), end, first))
    return out


def _scored_nll(lm: CausalLM, inputs: torch.Tensor, firsts: torch.Tensor,
                precision: str = "fp32") -> Tuple[torch.Tensor, torch.Tensor]:
    """Per-row summed NLL of inputs[:, p] for p >= firsts[row] (and p < the row's padding
    at -1), and the number of scored positions per row; the logits are never materialised
    beyond a chunk (loss.token_nll). ``precision``: resolved (fp32 | bf16 | fp16)."""
    device = inputs.device
    targets = inputs[:, 1:].clone()
    pos = torch.arange(1, inputs.size(1), device=device)[None, :]
    targets[(pos < firsts[:, None]) | (targets < 0)] = -100
    nll = lm.target_nll(inputs.clamp(min=0), targets, precision)
    return nll.double().sum(-1), (targets != -100).sum(-1)


@torch.no_grad()
def document_log_probs(model: Model, documents: Sequence[np.ndarray], eot_id: int, max_length: Optional[int] = None,
                       stride: int = 512, batch_size: int = 32, precision: str = "auto") -> np.ndarray:
    """ln p(document) for each token-id array (no end-of-text inside): the sum over the
    document's tokens and the end-of-text after it of ln p(token | end-of-text, earlier
    tokens). Documents of at most max_length - 1 tokens are scored by one forward (in
    batches of similar length, right-padded: causal attention never sees the padding);
    longer ones by sliding_window_nll over [eot, document, eot]. ``precision`` as in
    training (collapse.transformer.precision)."""
    lm = as_lm(model)
    max_length = max_length or lm.max_positions
    out = np.zeros(len(documents), dtype=np.float64)
    seqs = [np.concatenate([[eot_id], np.asarray(d, dtype=np.int64), [eot_id]]) for d in documents]
    short = sorted((i for i, q in enumerate(seqs) if q.size <= max_length), key=lambda i: seqs[i].size)
    device = lm.device
    resolved = resolve_precision(precision, device)
    was_training = lm.module.training
    lm.module.eval()
    try:
        for s in range(0, len(short), batch_size):
            idx = short[s:s + batch_size]
            width = seqs[idx[-1]].size
            batch = torch.full((len(idx), width), -1, dtype=torch.long)
            for r, i in enumerate(idx):
                batch[r, :seqs[i].size] = torch.from_numpy(seqs[i])
            nll, _ = _scored_nll(lm, batch.to(device), torch.ones(len(idx), dtype=torch.long, device=device),
                                 resolved)
            out[idx] = -nll.cpu().numpy()
        for i, q in enumerate(seqs):
            if q.size > max_length:
                out[i] = -sliding_window_nll(lm, q, max_length=max_length, stride=stride,
                                             precision=resolved).nll_sum
    finally:
        lm.module.train(was_training)
    return out


@dataclass
class PaperPerplexity:
    perplexity: float
    window_mean_nll: List[float]   # each window's mean NLL (nats per scored token)
    window_tokens: List[int]       # tokens each window scored


PAPER_PERPLEXITY_MODES = ("per-story", "joined")


def _check_paper_window(lm: CausalLM, max_length: Optional[int], stride: int) -> int:
    max_length = max_length or lm.max_positions
    if max_length > lm.max_positions:
        raise CollapseError(f"perplexity: max_length {max_length} exceeds the model's "
                            f"{lm.max_positions} positions")
    if stride < 1:
        raise CollapseError(f"perplexity: stride must be positive, got {stride}")
    return max_length


def _paper_windows(lm: CausalLM, ids: torch.Tensor, max_length: int, stride: int,
                   precision: str) -> Tuple[List[float], List[int]]:
    """evaluate_ppl.py's windows over one token sequence: a window of ``max_length`` starts
    every ``stride`` tokens and scores the tokens after the previous window's end (the
    first window all but its first token). Each window's summed NLL and scored tokens."""
    device = lm.device
    sums, counts = [], []
    prev_end, n = 0, ids.numel()
    for begin in range(0, n, stride):
        end = min(begin + max_length, n)
        first = max(prev_end, begin + 1) - begin  # scored positions inside the window
        nll, k = _scored_nll(lm, ids[None, begin:end].to(device), torch.tensor([first], device=device), precision)
        sums.append(float(nll[0]))
        counts.append(int(k[0]))
        prev_end = end
        if end == n:
            break
    return sums, counts


@torch.no_grad()
def paper_perplexity(model: Model, stream: np.ndarray, max_length: Optional[int] = None,
                     stride: int = 512, precision: str = "auto") -> PaperPerplexity:
    """The paper's older evaluate_ppl.py ("joined") on a token stream (the validation
    stories joined by blank lines, no end-of-text): windows as in _paper_windows;
    perplexity = exp(the unweighted MEAN over windows of each window's mean NLL), as that
    script does, not exp(total NLL / tokens): a short last window weighs as much as a full
    one."""
    lm = as_lm(model)
    max_length = _check_paper_window(lm, max_length, stride)
    ids = torch.as_tensor(np.asarray(stream, dtype=np.int64))
    if ids.numel() < 2:
        raise CollapseError("perplexity: the text has fewer than two tokens")
    was_training = lm.module.training
    lm.module.eval()
    try:
        sums, counts = _paper_windows(lm, ids, max_length, stride, resolve_precision(precision, lm.device))
    finally:
        lm.module.train(was_training)
    means = [s / k for s, k in zip(sums, counts)]
    return PaperPerplexity(math.exp(sum(means) / len(means)), means, counts)


@torch.no_grad()
def paper_perplexity_per_story(model: Model, stories: Sequence[np.ndarray], max_length: Optional[int] = None,
                               stride: int = 512, batch_size: int = 32, precision: str = "auto") -> PerplexityResult:
    """The paper's current evaluate_ppl.py ("per-story"): each story's tokens on their own
    (no end-of-text before or after: its first token is not scored), evaluate_ppl's
    windows inside a story longer than ``max_length``, and exp(token-weighted mean NLL)
    over all stories: the returned PerplexityResult's ``perplexity``. Stories that fit one
    window go through the model together (right-padded, as document_log_probs does)."""
    lm = as_lm(model)
    max_length = _check_paper_window(lm, max_length, stride)
    seqs = [np.asarray(q, dtype=np.int64) for q in stories]
    if sum(max(q.size - 1, 0) for q in seqs) == 0:
        raise CollapseError("perplexity: the stories have no token to score (each needs two or more)")
    device = lm.device
    resolved = resolve_precision(precision, device)
    short = sorted((i for i, q in enumerate(seqs) if 2 <= q.size <= max_length), key=lambda i: seqs[i].size)
    total, count = 0.0, 0
    was_training = lm.module.training
    lm.module.eval()
    try:
        for s in range(0, len(short), batch_size):
            idx = short[s:s + batch_size]
            batch = torch.full((len(idx), seqs[idx[-1]].size), -1, dtype=torch.long)
            for r, i in enumerate(idx):
                batch[r, :seqs[i].size] = torch.from_numpy(seqs[i])
            nll, k = _scored_nll(lm, batch.to(device), torch.ones(len(idx), dtype=torch.long, device=device),
                                 resolved)
            total, count = total + float(nll.sum()), count + int(k.sum())
        for q in seqs:
            if q.size > max_length:
                sums, counts = _paper_windows(lm, torch.from_numpy(q), max_length, stride, resolved)
                total, count = total + sum(sums), count + sum(counts)
    finally:
        lm.module.train(was_training)
    return PerplexityResult(total, count)


@torch.no_grad()
def sliding_window_nll(model: Model, stream: np.ndarray, max_length: Optional[int] = None,
                       stride: int = 512, batch_size: int = 8, precision: str = "auto") -> PerplexityResult:
    """Summed NLL (nats) and the number of scored tokens of ``stream`` (int ids).
    ``precision`` as in training; the logits are never materialised beyond a chunk
    (loss.token_nll)."""
    lm = as_lm(model)
    max_length = max_length or lm.max_positions
    if max_length > lm.max_positions:
        raise CollapseError(f"perplexity: max_length {max_length} exceeds the model's "
                            f"{lm.max_positions} positions")
    ids = torch.as_tensor(np.asarray(stream, dtype=np.int64))
    device = lm.device
    was_training = lm.module.training
    lm.module.eval()
    precision = resolve_precision(precision, device)
    total, count = 0.0, 0
    try:
        spans = windows(ids.numel(), max_length, stride)
        # windows of equal length go through the model together
        groups: dict = {}
        for span in spans:
            groups.setdefault(span[1] - span[0], []).append(span)
        for width, group in groups.items():
            for s in range(0, len(group), batch_size):
                chunk = group[s:s + batch_size]
                inputs = torch.stack([ids[b:e] for b, e, _ in chunk]).to(device)
                targets = inputs[:, 1:].clone()
                # score only positions >= first: mask the others out
                pos = torch.arange(1, width, device=device)[None, :]
                firsts = torch.tensor([f - b for b, _, f in chunk], device=device)[:, None]
                targets[pos < firsts] = -100
                nll = lm.target_nll(inputs, targets, precision).double().sum()
                total += float(nll)
                count += int((targets != -100).sum())
    finally:
        lm.module.train(was_training)
    return PerplexityResult(total, count)
