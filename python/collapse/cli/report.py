"""CLI commands: report (a run's self-contained HTML page) and status (a run's progress, live or after a kill)."""

from __future__ import annotations

import os
import sys


def cmd_report(args) -> int:  # noqa: ANN001
    from ..experiment.report import REPORT_FILE, write_report

    path = write_report(args.run_dir, args.output or os.path.join(args.run_dir, REPORT_FILE))
    sys.stderr.write(f"wrote {path}\n")
    return 0


def cmd_status(args) -> int:  # noqa: ANN001
    from ..experiment.status import status_text

    print(status_text(args.run_dir))
    return 0


def register(subparsers) -> None:  # noqa: ANN001
    """Add this module's commands to subparsers."""
    p = subparsers.add_parser("report", help="write a run's report: one self-contained HTML page (config, cells, "
                                             "figures, tables, provenance)")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("-o", "--output", metavar="FILE.html", help="where to write it (default RUN_DIR/report.html)")
    p.set_defaults(func=cmd_report)

    p = subparsers.add_parser("status", help="each cell's generation, last metrics, time per generation and time "
                                             "left (while a run goes, or after it stopped)")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.set_defaults(func=cmd_status)
