"""Theory: simulated collapse processes with exact answers (categorical, n-gram), one result type."""

from .result import SimulationResult
from .simulator import simulate

__all__ = ["SimulationResult", "simulate"]
