"""The one set of argument validators (integers, seeds, numbers, choices) behind every public entry point."""

from __future__ import annotations

import difflib
import math
import numbers
import os
from typing import Any, Callable, List, Optional, Sequence

import numpy as np

from . import _core
from .errors import CollapseError

# How a failed check becomes an exception: fail(name, message) -> Exception. The default
# reads "N must be >= 1, got 0"; the config uses "experiment.generations: must be >= 1, got 0".
Fail = Callable[[str, str], Exception]

SEED_LIMIT = 2 ** 64  # seeds are uint64 in the C++ core
# Thread counts: the core's limit and cap (parallel.hpp), one definition for both sides.
MAX_THREADS: int = int(_core.MAX_THREADS)
THREADS_PER_CORE: int = int(_core.THREADS_PER_CORE)


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


def threads(name: str, value: Any, fail: Fail = default_fail, cap: bool = True) -> int:
    """A thread count: 0 (every core) or 1..MAX_THREADS, cut (with cap) to THREADS_PER_CORE
    per core: more cannot help, and each thread may hold buffers (100000 once meant an OOM
    kill). The core checks and cuts the same way (resolve_threads in parallel.hpp)."""
    n = integer(name, value, 0, MAX_THREADS, fail)
    return min(n, THREADS_PER_CORE * (os.cpu_count() or 1)) if cap else n


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


def did_you_mean(word: str, known: Sequence[str]) -> str:
    """" (did you mean 'x'?)" naming the known word closest to a misspelt ``word``
    (difflib's similarity ratio, at least 0.6), or "" when none is close."""
    close = difflib.get_close_matches(str(word), list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def boolean(name: str, value: Any, fail: Fail = default_fail) -> bool:
    if not isinstance(value, bool):
        raise fail(name, f"must be true or false, got {value!r}")
    return value


def integer_array(name: str, value: Any, dtype: Any, fail: Fail = default_fail) -> np.ndarray:
    """``value`` as a C-contiguous array of the integer ``dtype``: integer arrays (and lists)
    are converted when every value fits; floats, bools and other kinds are refused, naming
    the dtype (np.asarray(x, dtype=np.uint32) would truncate 4.7 to 4 and wrap -1)."""
    arr = np.asarray(value)
    kind = arr.dtype.kind
    if kind not in "iu" and not (kind == "f" and arr.size == 0):  # np.asarray([]) is float64
        raise fail(name, f"must be an array of integers, got dtype {arr.dtype}")
    info = np.iinfo(dtype)
    if arr.size and kind in "iu":
        lo, hi = int(arr.min()), int(arr.max())
        if lo < info.min or hi > info.max:
            raise fail(name, f"must hold values in [{info.min}, {info.max}] ({np.dtype(dtype)}), got {lo}..{hi}")
    return np.ascontiguousarray(arr, dtype=dtype)


def prune_thresholds(name: str, value: Any, order: int, smoothing: str = "mkn", fail: Fail = default_fail) -> List[int]:
    """lmplz's ``--prune`` for a model of ``order``: counts >= 0, one per order at most,
    non-decreasing, the last repeated for the higher orders (an n-gram whose raw count is
    at most its order's threshold is removed). None, [] or all 0: no pruning, as []."""
    if value is None:
        return []
    if not isinstance(value, (list, tuple)):
        raise fail(name, f"must be a list of counts, one per order (as lmplz's --prune), got {value!r}")
    values = [integer(f"{name}[{i}]", v, 0, fail=fail) for i, v in enumerate(value)]
    if len(values) > order:
        raise fail(name, f"has {len(values)} thresholds but the model has order {order}")
    for a, b in zip(values, values[1:]):
        if b < a:
            raise fail(name, f"must be non-decreasing (as lmplz's --prune), got {a} then {b}")
    if not any(values):
        return []
    if smoothing not in ("mkn", "kn"):
        raise fail(name, f"needs Kneser-Ney smoothing (mkn or kn), not {smoothing!r}")
    return values + [values[-1]] * (order - len(values))
