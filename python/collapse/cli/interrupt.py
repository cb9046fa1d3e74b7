"""Ctrl-C and SIGTERM for the command line: SIGTERM raised as Terminated (a KeyboardInterrupt), conventional exit statuses."""

from __future__ import annotations

import signal

EXIT_INTERRUPTED, EXIT_TERMINATED = 130, 143  # 128 + SIGINT, 128 + SIGTERM (the shells' convention)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread so that a run ends as it does on Ctrl-C: workers
    stopped, run files rebuilt, one line, no leaked resources (Python's default for SIGTERM
    ends the process without any of it)."""


_received = []  # SIGTERM seen: some libraries (Ray's wait) re-raise a plain KeyboardInterrupt


def on_sigterm(signum: int, frame: object) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends the process at once
    _received.append(signum)
    raise Terminated()


def interrupt_status(error: KeyboardInterrupt) -> "tuple[str, int]":
    """("interrupted" | "terminated", the exit status) of a Ctrl-C or a SIGTERM."""
    if isinstance(error, Terminated) or _received:
        return "terminated", EXIT_TERMINATED
    return "interrupted", EXIT_INTERRUPTED
