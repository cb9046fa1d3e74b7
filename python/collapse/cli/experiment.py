"""CLI commands: experiment (filled in by its issue's work)."""

from __future__ import annotations


def register(subparsers) -> None:  # noqa: ANN001
    """Add this module's commands to subparsers."""
