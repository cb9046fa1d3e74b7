"""Data: Corpus and Vocab, tokenizers and loaders, the embedded story and code grammars, finite-corpus resampling."""

from .corpus import Corpus, Vocab, concatenate, load_corpus

__all__ = ["Corpus", "Vocab", "concatenate", "load_corpus"]
