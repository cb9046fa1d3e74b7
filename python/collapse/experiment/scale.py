"""One scale for every model family: bits per word and KL to the true source, from document log-probabilities.

Every trained model gives the natural-log probability of each document of a word-level
Corpus *as text* (``TrainedModel.document_log_probs``: the n-gram over its words and
``</s>``, the transformer over its BPE tokens and the end-of-text after them). From it:

- ``heldout_bits_per_word`` = -sum_d log2 p(d) / sum_d (words_d + 1) over the held-out
  real documents: the n-gram's log2 perplexity, and for the transformer the same
  quantity per word instead of per BPE token, so the two families are compared on one
  scale. (Units: bits per word, the end of a story counted as one word.)
- ``kl_truth`` (embedded sources only, the story and the code grammar, whose exact
  document probabilities are known): the mean over held-out documents d ~ P of
  ln P(d) - ln Q(d), an unbiased estimate of KL(P || Q) in nats per document, with
  ``kl_truth_se`` its standard error (sample standard deviation / sqrt(documents)).
"""

from __future__ import annotations

import math
from typing import Dict, Optional

import numpy as np

LOG2 = math.log(2.0)


def bits_per_word(doc_log_probs: np.ndarray, words: int, documents: int) -> float:
    """-sum ln p / ln 2 / (words + documents): words plus one end per document."""
    predicted = int(words) + int(documents)
    if predicted == 0:
        return math.nan
    return float(-np.sum(doc_log_probs, dtype=np.float64) / LOG2 / predicted)


def kl_to_truth(true_log_probs: np.ndarray, doc_log_probs: np.ndarray) -> "tuple[float, float]":
    """(mean of ln P(d) - ln Q(d) over documents d drawn from P, its standard error), nats per story."""
    diff = np.asarray(true_log_probs, dtype=np.float64) - np.asarray(doc_log_probs, dtype=np.float64)
    n = diff.size
    if n == 0:
        return math.nan, math.nan
    se = float(np.std(diff, ddof=1) / math.sqrt(n)) if n > 1 else math.nan
    return float(diff.mean()), se


def heldout_scale(model, heldout, true_log_probs: Optional[np.ndarray] = None,  # noqa: ANN001
                  doc_log_probs: Optional[np.ndarray] = None) -> Dict[str, float]:
    """heldout_bits_per_word, kl_truth and kl_truth_se of a trained model on the held-out
    Corpus (doc_log_probs: the model's document_log_probs of it, when already computed)."""
    lp = np.asarray(model.document_log_probs(heldout) if doc_log_probs is None else doc_log_probs, dtype=np.float64)
    out = {"heldout_bits_per_word": bits_per_word(lp, heldout.num_tokens, heldout.num_documents),
           "kl_truth": math.nan, "kl_truth_se": math.nan}
    if true_log_probs is not None:
        out["kl_truth"], out["kl_truth_se"] = kl_to_truth(true_log_probs, lp)
    return out
