"""collapse: model collapse under recursive training, on a C++ core."""

from . import resample  # finite-corpus resampling (C++)
from .corpus import Corpus, Vocab, concatenate, load_corpus
from .errors import CollapseError
from .experiment import run_experiment
from .ngram import NGramModel
from .simulate import simulate

__version__ = "0.1.0"

__all__ = ["Corpus", "Vocab", "CollapseError", "NGramModel", "concatenate", "load_corpus", "resample",
           "run_experiment", "simulate", "__version__"]
