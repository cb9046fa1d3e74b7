"""The n-gram family: NGramModel (C++ estimation, scoring, ARPA), its sampler, and its family for the loop."""

from .model import MAX_ORDER, SMOOTHINGS, NGramModel
from .pool import NGramPool

__all__ = ["MAX_ORDER", "SMOOTHINGS", "NGramModel", "NGramPool"]
