"""The one set of argument validators (integers, seeds, numbers, choices) behind every public entry point."""

from __future__ import annotations

import math
import numbers
from typing import Any, Callable, Optional, Sequence

from .errors import CollapseError

# How a failed check becomes an exception: fail(name, message) -> Exception. The default
# reads "N must be >= 1, got 0"; the config uses "experiment.generations: must be >= 1, got 0".
Fail = Callable[[str, str], Exception]

SEED_LIMIT = 2 ** 64  # seeds are uint64 in the C++ core


def default_fail(name: str, message: str) -> Exception:
    return CollapseError(f"{name} {message}")


def integer(name: str, value: Any, minimum: Optional[int] = None, maximum: Optional[int] = None,
            fail: Fail = default_fail) -> int:
    """An int (numpy integers accepted, bools refused) within [minimum, maximum]."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise fail(name, f"must be an integer, got {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise fail(name, f"must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise fail(name, f"must be <= {maximum}, got {value}")
    return value


def seed(name: str, value: Any, fail: Fail = default_fail) -> int:
    """A seed: an integer in [0, 2**64)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise fail(name, f"must be a non-negative integer, got {value!r}")
    if value >= SEED_LIMIT:
        raise fail(name, "must be below 2**64")
    return int(value)


def real(name: str, value: Any, lo: Optional[float] = None, hi: Optional[float] = None, lo_open: bool = False,
         hi_open: bool = False, fail: Fail = default_fail) -> float:
    """A finite float (ints accepted, bools and strings refused) within the bounds given."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise fail(name, f"must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise fail(name, f"must be finite, got {value}")
    below = lo is not None and (value < lo or (lo_open and value == lo))
    above = hi is not None and (value > hi or (hi_open and value == hi))
    if below or above:
        if lo is not None and hi is not None:
            raise fail(name, f"must be in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}, "
                             f"got {value:g}")
        if lo is not None:
            raise fail(name, f"must be {'>' if lo_open else '>='} {lo:g}, got {value:g}")
        raise fail(name, f"must be {'<' if hi_open else '<='} {hi:g}, got {value:g}")
    return value


def choice(name: str, value: Any, choices: Sequence[str], what: str = "value", fail: Optional[Fail] = None) -> str:
    """One of ``choices``; the error says "unknown <what> 'x' (choose from a, b)"."""
    if not isinstance(value, str) or value not in choices:
        message = f"unknown {what} {value!r} (choose from {', '.join(choices)})"
        raise (fail(name, message) if fail is not None else CollapseError(message))
    return value


def boolean(name: str, value: Any, fail: Fail = default_fail) -> bool:
    if not isinstance(value, bool):
        raise fail(name, f"must be true or false, got {value!r}")
    return value
