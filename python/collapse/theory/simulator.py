"""simulate(process=...): the one entry point that dispatches to the categorical or the n-gram process."""

from __future__ import annotations

import inspect
from typing import Any

from ..errors import CollapseError
from .categorical import simulate_categorical
from .ngram import simulate_ngram
from .result import SimulationResult

PROCESSES = ("categorical", "ngram")


def simulate(process: str = "categorical", *args: Any, **kwargs: Any) -> SimulationResult:
    """Simulate a collapse process.

    process="categorical": collapse.theory.categorical.simulate_categorical (p0, N,
    generations, trials, paradigm, alpha, seed, threads, executor, address, K=, zipf_s=, ...).
    process="ngram": collapse.theory.ngram.simulate_ngram (N, generations, trials, paradigm,
    alpha, seed, threads, source= or source_corpus=, order=, ...). docs/simulate.md defines both.
    """
    if process == "categorical":
        unexpected = sorted(set(kwargs) - set(inspect.signature(simulate_categorical).parameters))
        if unexpected:
            raise CollapseError(f"unexpected arguments for the categorical process: {unexpected}")
        return simulate_categorical(*args, **kwargs)
    if process == "ngram":
        if args:
            raise CollapseError("simulate(process='ngram', ...) takes keyword arguments only")
        if kwargs.pop("p0", None) is not None or kwargs.pop("address", None) is not None:
            raise CollapseError("p0 and address are not used by the n-gram process")
        return simulate_ngram(**kwargs)
    raise CollapseError(f"unknown process {process!r} (expected 'categorical' or 'ngram')")
