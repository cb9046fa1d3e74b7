"""Progress a person can watch: a tqdm bar when stderr is a terminal, plain periodic lines otherwise.

``Progress(desc, total, unit)`` is used for transformer training (steps, with loss and
tokens/s), sampling (documents) and BPE training (documents read); the experiment loop
writes one line per generation itself. ``enabled=False`` (a config's ``progress = false``) makes every call a no-op.
Off a terminal (a log file, CI, a pipe), tqdm's carriage returns would fill the log with
one line per refresh; instead one plain line is written every ``interval`` seconds and
one when the task ends.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Optional, TextIO

DEFAULT_INTERVAL = 30.0  # seconds between plain lines off a terminal


def _is_terminal(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class Progress:
    """Counts units of work towards an optional total and shows them."""

    def __init__(self, desc: str, total: Optional[int] = None, unit: str = "it", enabled: bool = True,
                 interval: float = DEFAULT_INTERVAL, stream: Optional[TextIO] = None) -> None:
        self.desc, self.total, self.unit, self.enabled = desc, total, unit, bool(enabled)
        self.interval = float(interval)
        self.stream = stream if stream is not None else sys.stderr
        self.count = 0
        self.postfix: dict = {}
        self._bar: Any = None
        self._start = self._last = time.perf_counter()
        if self.enabled and _is_terminal(self.stream):
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=desc, unit=unit, file=self.stream, dynamic_ncols=True, leave=False)

    def update(self, n: int = 1, **postfix: Any) -> None:
        if not self.enabled:
            return
        self.count += n
        if postfix:
            self.postfix.update(postfix)
        if self._bar is not None:
            if postfix:
                self._bar.set_postfix({k: _fmt(v) for k, v in self.postfix.items()}, refresh=False)
            self._bar.update(n)
            return
        now = time.perf_counter()
        if now - self._last >= self.interval:
            self._last = now
            self._line()

    def _line(self, final: bool = False) -> None:
        elapsed = time.perf_counter() - self._start
        done = f"{self.count}/{self.total}" if self.total is not None else f"{self.count}"
        rate = f"{self.count / elapsed:.3g} {self.unit}/s" if elapsed > 0 else ""
        extra = "".join(f", {k} {_fmt(v)}" for k, v in self.postfix.items())
        self.stream.write(f"{self.desc}: {done} {self.unit}{' done' if final else ''} in {elapsed:.1f} s "
                          f"({rate}){extra}\n")
        self.stream.flush()

    def close(self) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self.count:
            self._line(final=True)
        self.enabled = False

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.4g}" if abs(v) < 1e4 else f"{v:,.0f}"
    return str(v)
