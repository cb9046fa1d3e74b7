"""Subword tokenizers for the transformer family, through Hugging Face ``tokenizers``.

Either a user's local tokenizer.json (for example GPT-Neo's, whose end-of-text token is
``<|endoftext|>``) or a byte-level BPE trained on the real corpus's texts. Nothing is ever
downloaded.
"""

from __future__ import annotations

import os
from typing import Iterable, Iterator, List, Optional, Sequence, Sized

import numpy as np

from ..errors import CollapseError
from ..files import atomic_path
from .progress import Progress

END_OF_TEXT = "<|endoftext|>"


class TextTokenizer:
    """A ``tokenizers.Tokenizer`` with a known end-of-text id."""

    def __init__(self, tokenizer: "object", eot_token: str = END_OF_TEXT) -> None:
        self._tok = tokenizer
        eot = tokenizer.token_to_id(eot_token)
        if eot is None:
            raise CollapseError(f"tokenizer has no end-of-text token {eot_token!r}")
        self.eot_token = eot_token
        self.eot_id = int(eot)

    @property
    def vocab_size(self) -> int:
        return int(self._tok.get_vocab_size(with_added_tokens=True))

    # -- construction -------------------------------------------------------------------
    @classmethod
    def from_file(cls, path: str, eot_token: str = END_OF_TEXT) -> "TextTokenizer":
        from tokenizers import Tokenizer

        path = os.fspath(path)
        if os.path.isdir(path):
            path = os.path.join(path, "tokenizer.json")
        if not os.path.isfile(path):
            raise CollapseError(f"no such tokenizer file: {path}")
        try:
            tok = Tokenizer.from_file(path)
        except Exception as e:  # tokenizers raises its own Exception type for bad JSON
            raise CollapseError(f"{path}: not a tokenizers JSON file ({e})") from None
        return cls(tok, eot_token)

    @classmethod
    def train_bpe(cls, texts: Iterable[str], vocab_size: int, min_frequency: int = 2,
                  progress: bool = False) -> "TextTokenizer":
        """A byte-level BPE (GPT-2 style pre-tokenisation) trained on ``texts``, with
        ``<|endoftext|>`` as id 0. Training is deterministic for the same texts.
        progress: report the documents read (collapse.transformer.progress; the merges that follow
        take a fraction of that time)."""
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

        if vocab_size < 257 + 1:
            raise CollapseError(f"BPE vocab size {vocab_size} is below the 256 bytes + end-of-text")
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=int(vocab_size), min_frequency=int(min_frequency),
                                      special_tokens=[END_OF_TEXT], show_progress=False,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
        total = len(texts) if isinstance(texts, Sized) else None
        with Progress("BPE training", total=total, unit="doc", enabled=progress) as bar:
            def counted(items: Iterable[str]) -> Iterator[str]:
                for text in items:
                    bar.update(1)
                    yield text

            tok.train_from_iterator(counted(texts), trainer=trainer, length=total)
        return cls(tok, END_OF_TEXT)

    def save(self, path: str) -> None:
        with atomic_path(path) as tmp:
            self._tok.save(tmp)

    # -- use ------------------------------------------------------------------------------
    def encode_batch(self, texts: Sequence[str]) -> List[np.ndarray]:
        """Token ids of each text (no end-of-text appended), as int64 arrays."""
        encs = self._tok.encode_batch(list(texts), add_special_tokens=False)
        return [np.asarray(e.ids, dtype=np.int64) for e in encs]

    def encode_documents(self, texts: Sequence[str]) -> "tuple[np.ndarray, np.ndarray]":
        """Flat ids of all texts, each followed by end-of-text, and int64 offsets."""
        parts = self.encode_batch(texts)
        lengths = np.fromiter((p.size + 1 for p in parts), dtype=np.int64, count=len(parts))
        offsets = np.zeros(len(parts) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        flat = np.full(int(offsets[-1]), self.eot_id, dtype=np.int64)
        for p, start in zip(parts, offsets[:-1]):
            flat[start:start + p.size] = p
        return flat, offsets

    def decode_batch(self, sequences: Sequence[Sequence[int]]) -> List[str]:
        return self._tok.decode_batch([list(map(int, s)) for s in sequences], skip_special_tokens=True)


def load_or_train(path: Optional[str], texts: Iterable[str], vocab_size: int) -> TextTokenizer:
    return TextTokenizer.from_file(path) if path else TextTokenizer.train_bpe(texts, vocab_size)
