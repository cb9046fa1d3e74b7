"""Paradigms: how generation t's training corpus is built (DESIGN.md, "Names").

Notation: R the real training corpus (N documents), S_k the synthetic corpus sampled from
model M_k (round(synthetic_factor * N) documents), generation 0 trains on R.

- replace:              D_t = the first N documents of S_{t-1}
- accumulate:           D_t = R + S_0 + ... + S_{t-1}
- accumulate-subsample: D_t = N documents drawn without replacement from R + S_0 + ... + S_{t-1}
- mix(alpha):           D_t = round(alpha N) documents drawn from S_{t-1} + the rest drawn
                        without replacement from the finite R
- fresh(alpha):         like mix, but the real part is new real documents every generation

Sizes are counted in documents. Every draw uses collapse.resample (C++ Philox streams) keyed by a seed
derived from (seed, cell, generation, purpose), so a resumed run draws the same documents.
"""

from __future__ import annotations

from typing import Callable, List, Optional

import numpy as np

from .corpus import Corpus, concatenate
from .errors import CollapseError
from .resample import subsample

PURPOSE_SUBSAMPLE = 11
PURPOSE_MIX_SYNTH = 12
PURPOSE_MIX_REAL = 13


def draw_without_replacement(corpus: Corpus, k: int, seed: int) -> Corpus:
    """k documents of corpus, uniformly without replacement, kept in corpus order
    (collapse.resample.subsample: C++ Philox streams, independent of thread count)."""
    if k > corpus.num_documents:
        raise CollapseError(f"cannot draw {k} documents from {corpus.num_documents}")
    return subsample(corpus, n=k, seed=seed, threads=1)


def synthetic_needed(paradigm: str, alpha: Optional[float], num_real: int, synthetic_factor: float) -> int:
    """How many documents each generation samples (S_t)."""
    n = int(round(synthetic_factor * num_real))
    if paradigm == "replace" and n < num_real:
        raise CollapseError(f"experiment.synthetic_factor: replace needs at least as many synthetic documents "
                            f"as real ones ({num_real}), got {n}")
    if paradigm in ("mix", "fresh") and alpha is not None and n < int(round(alpha * num_real)):
        raise CollapseError("experiment.synthetic_factor: too small for the synthetic part of mix/fresh")
    return max(n, 1)


def training_corpus(paradigm: str, alpha: Optional[float], t: int, real: Corpus, synthetic: List[Corpus],
                    seed_of: Callable[[int], int], fresh_real: Optional[Callable[[int, int], Corpus]] = None) -> Corpus:
    """D_t for t >= 1. synthetic[k] is S_k (only those the paradigm reads must be loaded);
    seed_of(purpose) gives this (cell, generation)'s seed for a purpose; fresh_real(t, k)
    returns k new real documents for generation t."""
    n = real.num_documents
    if t == 0:
        return real
    if paradigm == "replace":
        prev = synthetic[t - 1]
        return prev if prev.num_documents == n else prev.select(np.arange(n))
    if paradigm == "accumulate":
        return concatenate([real] + list(synthetic[:t]))
    if paradigm == "accumulate-subsample":
        pool = concatenate([real] + list(synthetic[:t]))
        return draw_without_replacement(pool, n, seed_of(PURPOSE_SUBSAMPLE))
    if paradigm in ("mix", "fresh"):
        assert alpha is not None
        k_syn = int(round(alpha * n))
        k_real = n - k_syn
        parts = []
        if k_syn:
            parts.append(draw_without_replacement(synthetic[t - 1], k_syn, seed_of(PURPOSE_MIX_SYNTH)))
        if k_real:
            if paradigm == "mix":
                parts.append(draw_without_replacement(real, k_real, seed_of(PURPOSE_MIX_REAL)))
            else:
                assert fresh_real is not None
                parts.append(fresh_real(t, k_real))
        return concatenate(parts)
    raise CollapseError(f"unknown paradigm {paradigm!r}")


def needed_synthetic(paradigm: str, t: int) -> List[int]:
    """Which S_k generation t's training corpus reads (for loading on resume)."""
    if t == 0:
        return []
    if paradigm in ("accumulate", "accumulate-subsample"):
        return list(range(t))
    return [t - 1]
