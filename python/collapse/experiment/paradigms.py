"""Paradigms: the one definition of how generation t's training corpus is built (loop and n-gram simulator).

Notation: R the real training corpus (N documents), S_k the synthetic corpus sampled from
model M_k (round(synthetic_factor * N) documents), generation 0 trains on R.

- replace:              D_t = the first N documents of S_{t-1}
- accumulate:           D_t = R + S_0 + ... + S_{t-1}
- accumulate-subsample: D_t = N documents drawn without replacement from R + S_0 + ... + S_{t-1}
- mix(alpha):           D_t = round(alpha N) documents drawn without replacement from S_{t-1} +
                        the rest drawn without replacement from the finite R
- fresh(alpha):         like mix, but the real part is new real documents every generation

round(x) is floor(x + 1/2), as in the C++ categorical kernel (which keeps the count-level
form of these same rules; tests/test_paradigms_agree.py checks that the two agree). Sizes
are counted in documents. When S_{t-1} holds exactly the documents a paradigm reads
(``synthetic_size``: what the simulator samples), it is used whole. Every draw uses
collapse.data.resample (C++ Philox streams) keyed by seed_of(purpose), a seed the caller
derives from (seed, cell or trial, generation), so a resumed run draws the same documents.
"""

from __future__ import annotations

import math
from typing import Any, Callable, List, Optional, Sequence

import numpy as np

from ..data.corpus import Corpus, concatenate
from ..data.resample import gather, subsample, subsample_indices
from ..errors import CollapseError
from ..validate import choice

PARADIGMS = ("replace", "accumulate", "accumulate-subsample", "mix", "fresh")
ALPHA_PARADIGMS = ("mix", "fresh")  # the paradigms that use alpha (the synthetic fraction)

PURPOSE_SUBSAMPLE = 11
PURPOSE_MIX_SYNTH = 12
PURPOSE_MIX_REAL = 13


def draw_without_replacement(corpus: Corpus, k: int, seed: int) -> Corpus:
    """k documents of corpus, uniformly without replacement, kept in corpus order
    (collapse.resample.subsample: C++ Philox streams, independent of thread count)."""
    if k > corpus.num_documents:
        raise CollapseError(f"cannot draw {k} documents from {corpus.num_documents}")
    return subsample(corpus, n=k, seed=seed, threads=1)


def draw_from_pool(parts: Sequence[Any], k: int, seed: int) -> Corpus:
    """Exactly draw_without_replacement(concatenate(parts), k, seed), without building the
    concatenation: the same document indices over the whole pool, gathered part by part
    (every part kept, selected or not, so the merged vocabulary is the same too). A part is
    a Corpus or a stored one (collapse.experiment.synthetic_store.StoredPart: num_documents
    and gather(), which maps its files only while it gathers)."""
    sizes = np.array([p.num_documents for p in parts], dtype=np.int64)
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    if k > bounds[-1]:
        raise CollapseError(f"cannot draw {k} documents from {int(bounds[-1])}")
    idx = subsample_indices(int(bounds[-1]), seed, n=k, threads=1)
    cut = np.searchsorted(idx, bounds)
    drawn = []
    for j, p in enumerate(parts):
        picked = idx[cut[j]:cut[j + 1]] - bounds[j]
        drawn.append(gather(p, picked, threads=1) if isinstance(p, Corpus) else p.gather(picked))
    return concatenate(drawn)


def check_paradigm(paradigm: Any, alpha: Any) -> Optional[float]:
    """The paradigm's alpha as a float (None for paradigms without one), or CollapseError."""
    choice("paradigm", paradigm, PARADIGMS, what="paradigm")
    if alpha is None:
        if paradigm in ALPHA_PARADIGMS:
            raise CollapseError(f"paradigm {paradigm!r} needs alpha (the synthetic fraction, in [0, 1])")
        return None
    try:
        a = float(alpha)
    except (TypeError, ValueError):
        raise CollapseError(f"alpha must be a number in [0, 1], got {alpha!r}") from None
    if not (0.0 <= a <= 1.0):
        raise CollapseError(f"alpha must lie in [0, 1], got {alpha!r}")
    return a


def synthetic_part(alpha: float, n: int) -> int:
    """round(alpha n): the synthetic documents of mix(alpha) / fresh(alpha)."""
    return int(math.floor(alpha * n + 0.5))


def synthetic_size(paradigm: str, alpha: Optional[float], n: int) -> int:
    """How many documents of S_{t-1} generation t reads (the least a generation must sample)."""
    return synthetic_part(alpha, n) if paradigm in ALPHA_PARADIGMS else n


def synthetic_needed(paradigm: str, alpha: Optional[float], num_real: int, synthetic_factor: float) -> int:
    """How many documents each generation of the loop samples (S_t): synthetic_factor N."""
    n = int(round(synthetic_factor * num_real))
    if paradigm == "replace" and n < num_real:
        raise CollapseError(f"experiment.synthetic_factor: replace needs at least as many synthetic documents "
                            f"as real ones ({num_real}), got {n}")
    if paradigm in ALPHA_PARADIGMS and alpha is not None and n < synthetic_part(alpha, num_real):
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
        return draw_from_pool([real] + list(synthetic[:t]), n, seed_of(PURPOSE_SUBSAMPLE))
    if paradigm in ALPHA_PARADIGMS:
        assert alpha is not None
        k_syn = synthetic_part(alpha, n)
        k_real = n - k_syn
        parts = []
        prev = synthetic[t - 1]
        if k_syn:
            # a uniform subset of all of S_{t-1} is S_{t-1} itself, in order
            parts.append(prev if prev.num_documents == k_syn
                         else draw_without_replacement(prev, k_syn, seed_of(PURPOSE_MIX_SYNTH)))
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
