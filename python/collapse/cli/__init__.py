"""The ``collapse`` command line.

Each command group lives in its own module with a ``register(subparsers)`` function.
Errors from bad input (CollapseError and the rest of the ValueError family, OSError)
become one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import List, Optional

from ..errors import CollapseError
from .interrupt import interrupt_status, on_sigterm


class OneLineArgumentParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit 2."""

    def error(self, message: str) -> "NoReturn":  # type: ignore[name-defined]  # noqa: F821
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    from . import experiment, ngram, report, sample, simulate

    from ..experiment.rundir import COLLAPSE_VERSION

    parser = OneLineArgumentParser(prog="collapse", description="Model collapse under recursive training.")
    parser.add_argument("--version", action="version", version=f"collapse {COLLAPSE_VERSION}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineArgumentParser)
    sub.required = True
    ngram_parser = sub.add_parser("ngram", help="n-gram models: estimate, score, sample")
    ngram_sub = ngram_parser.add_subparsers(dest="ngram_command", metavar="ACTION",
                                            parser_class=OneLineArgumentParser)
    ngram_sub.required = True
    ngram.register(ngram_sub)
    sample.register(ngram_sub)
    experiment.register(sub)
    report.register(sub)
    simulate.register(sub)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    main_thread = threading.current_thread() is threading.main_thread()  # where signal handlers live
    previous = signal.signal(signal.SIGTERM, on_sigterm) if main_thread else None
    try:
        rc = args.func(args)
    except (CollapseError, ValueError, OSError) as e:
        msg = str(e).strip().splitlines()
        sys.stderr.write(f"collapse: error: {msg[0] if msg else type(e).__name__}\n")
        return 2
    except KeyboardInterrupt as e:
        word, status = interrupt_status(e)
        sys.stderr.write(f"collapse: {word}\n")
        return status
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)
    return int(rc or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
