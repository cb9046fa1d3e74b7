"""Sampling from n-gram models: the C++ Sampler behind NGramModel.sample, with argument checks.

``sample_ngram(model, ...)`` is what ``NGramModel.sample`` calls. The forward structure
is built once per (model, temperature) and cached on the model object for the last two
temperatures used.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any, Tuple

import numpy as np

from .. import _core
from ..data.corpus import Corpus
from ..errors import CollapseError
from ..validate import integer, seed as check_seed, threads as check_threads

DEFAULT_MAX_LENGTH = 4096


def check_sample_args(num_sequences: object, seed: object, temperature: object, top_k: object, top_p: object,
                      max_length: object, threads: object) -> Tuple[int, int, float, int, float, int, int]:
    """Validated (num_sequences, seed, temperature, top_k, top_p, max_length, threads)."""
    num_sequences = integer("num_sequences", num_sequences, 1)
    seed = check_seed("seed", seed)
    try:
        temperature = float(temperature)
    except (TypeError, ValueError):
        raise CollapseError(f"temperature must be a number, got {temperature!r}") from None
    if not (temperature > 0.0) or not math.isfinite(temperature):
        raise CollapseError(f"temperature must be positive and finite, got {temperature}")
    top_k = integer("top_k", top_k, 0)
    try:
        top_p = float(top_p)
    except (TypeError, ValueError):
        raise CollapseError(f"top_p must be a number, got {top_p!r}") from None
    if not (0.0 < top_p <= 1.0):
        raise CollapseError(f"top_p must be in (0, 1], got {top_p}")
    max_length = integer("max_length", max_length, 1, 2 ** 32 - 1)
    threads = check_threads("threads", threads)
    return num_sequences, seed, temperature, top_k, top_p, max_length, threads


# `model` below is an NGramModel, typed Any: model.py imports this module.
SAMPLER_CACHE_SIZE = 2  # samplers kept per model (each at most about 2x the model's tables)


def sampler_for(model: Any, temperature: float) -> "_core.Sampler":
    """The model's sampler for this temperature: built on first use and kept for the last
    SAMPLER_CACHE_SIZE temperatures used (least recently used dropped), so a sweep over
    temperatures does not hold one sampler per temperature for the model's lifetime."""
    cache: "OrderedDict[float, _core.Sampler]" = model.__dict__.setdefault("_samplers", OrderedDict())
    sampler = cache.get(temperature)
    if sampler is None:
        sampler = _core.Sampler(model._core, temperature)
        cache[temperature] = sampler
        while len(cache) > SAMPLER_CACHE_SIZE:
            cache.popitem(last=False)
    cache.move_to_end(temperature)
    return sampler


def release_samplers(model) -> None:  # noqa: ANN001
    """Drop the model's cached samplers (sampler_for builds them again when needed)."""
    model.__dict__.pop("_samplers", None)


def sample_ngram(model: Any, num_sequences: int, seed: int = 0, temperature: float = 1.0, top_k: int = 0,
                 top_p: float = 1.0, max_length: int = DEFAULT_MAX_LENGTH, threads: int = 0) -> Corpus:
    """num_sequences sequences drawn from <s> to </s> (or max_length words) as a Corpus
    in the model's vocabulary. Sequence i uses the Philox stream (seed, i): the output is
    the same for any thread count, and the first k sequences of a call for n >= k are
    those of a call for k. ``truncated`` marks the sequences stopped at max_length words
    (the sampler stops there without drawing </s>)."""
    num_sequences, seed, temperature, top_k, top_p, max_length, threads = check_sample_args(
        num_sequences, seed, temperature, top_k, top_p, max_length, threads)
    sampler = sampler_for(model, temperature)
    tokens, offsets = sampler.sample(num_sequences, seed=seed, max_length=max_length, top_k=top_k, top_p=top_p,
                                     threads=threads)
    offsets = np.asarray(offsets)
    return Corpus(np.asarray(tokens), offsets, model.vocab, truncated=np.diff(offsets) >= max_length)
