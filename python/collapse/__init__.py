"""collapse: model collapse under recursive training, on a C++ core."""

from .corpus import Corpus, Vocab, concatenate, load_corpus
from .errors import CollapseError
from .ngram import NGramModel
from . import resample  # noqa: E402  (finite-corpus resampling)
from .experiment import run_experiment

__version__ = "0.1.0"

__all__ = ["Corpus", "Vocab", "CollapseError", "NGramModel", "run_experiment", "concatenate", "load_corpus", "__version__"]
