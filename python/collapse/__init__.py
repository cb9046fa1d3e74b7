"""collapse: model collapse under recursive training, on a C++ core."""

from .data import resample  # finite-corpus resampling (C++)
from .data.corpus import Corpus, Vocab, concatenate, load_corpus
from .errors import CollapseError
from .experiment.loop import run_experiment
from .experiment.registry import register_family  # a model family of one's own (docs/families.md)
from .experiment.rundir import COLLAPSE_VERSION as __version__
from .ngram.model import NGramModel
from .theory import simulate

__all__ = ["Corpus", "Vocab", "CollapseError", "NGramModel", "concatenate", "load_corpus", "register_family",
           "resample", "run_experiment", "simulate", "__version__"]
