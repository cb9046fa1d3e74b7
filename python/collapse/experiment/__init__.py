"""The recursive-training experiment: config, real data, paradigms, filters, metrics, the loop, run directories, plots."""

from .loop import run_experiment

__all__ = ["run_experiment"]
