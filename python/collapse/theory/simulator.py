"""simulate(process=...): the one entry point that dispatches to the categorical, Gaussian or n-gram process."""

from __future__ import annotations

import inspect
from typing import Any

from ..errors import CollapseError
from .categorical import simulate_categorical
from .gaussian import simulate_gaussian
from .ngram import simulate_ngram
from .result import SimulationResult

PROCESSES = ("categorical", "gaussian", "ngram")


def simulate(process: str = "categorical", *args: Any, **kwargs: Any) -> SimulationResult:
    """Simulate a collapse process.

    process="categorical": collapse.theory.categorical.simulate_categorical (p0, N,
    generations, trials, paradigm, alpha, seed, threads, executor, address, K=, zipf_s=,
    zipf_offset=, contribution=, ...).
    process="ngram": collapse.theory.ngram.simulate_ngram (N, generations, trials, paradigm,
    alpha, seed, threads, source= or source_corpus=, order=, ...). docs/simulate.md defines both.
    process="gaussian": collapse.theory.gaussian.simulate_gaussian (dim=, N, generations,
    trials, paradigm, alpha, weight, seed, threads, mean=, cov=, draws=, ddof=, contribution=,
    record=, ...; docs/theory.md).
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
        if kwargs.pop("weight", None) is not None:
            raise CollapseError("weight is not used by the n-gram process (it has no paradigm 'weighted')")
        return simulate_ngram(**kwargs)
    if process == "gaussian":
        if args:
            raise CollapseError("simulate(process='gaussian', ...) takes keyword arguments only")
        for name in ("p0", "K", "address"):
            if kwargs.pop(name, None) is not None:
                raise CollapseError(f"{name} is not used by the Gaussian process (it takes dim, mean, cov)")
        unexpected = sorted(set(kwargs) - set(inspect.signature(simulate_gaussian).parameters))
        if unexpected:
            raise CollapseError(f"unexpected arguments for the Gaussian process: {unexpected}")
        return simulate_gaussian(**kwargs)
    raise CollapseError(f"unknown process {process!r} (expected 'categorical', 'gaussian' or 'ngram')")
