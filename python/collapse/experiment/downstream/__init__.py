"""The downstream stage: each generation's model fine-tuned (or adapted) on classification tasks."""

from .results import write_figure, write_run_table
from .stage import check_tasks, run_stage

__all__ = ["check_tasks", "run_stage", "write_run_table", "write_figure"]
