"""Subword tokenizers for the transformer family, through Hugging Face ``tokenizers``.

Either a user's local tokenizer.json (for example GPT-Neo's, whose end-of-text token is
``<|endoftext|>``) or a byte-level BPE trained on the real corpus's texts. Nothing is ever
downloaded.
"""

from __future__ import annotations

import itertools
import os
from typing import Iterable, Iterator, List, Optional, Sequence, Sized

import numpy as np

from ..errors import CollapseError
from ..files import atomic_path
from .progress import Progress

END_OF_TEXT = "<|endoftext|>"
ENCODE_CHUNK = 1024  # texts per encode_batch call (its per-thread allocations scale with it)


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
        except Exception as e:  # noqa: BLE001 - tokenizers raises its own Exception type for bad JSON
            raise CollapseError(f"{path}: not a tokenizers JSON file ({e})") from None
        return cls(tok, eot_token)

    @classmethod
    def train_bpe(cls, texts: Iterable[str], vocab_size: int, min_frequency: int = 2,
                  progress: bool = False, total: Optional[int] = None) -> "TextTokenizer":
        """A byte-level BPE (GPT-2 style pre-tokenisation) trained on ``texts``, with
        ``<|endoftext|>`` as id 0. Training is deterministic for the same texts.
        progress: report the documents read (collapse.transformer.progress; the merges that follow
        take a fraction of that time); total: the number of texts, for a stream that has no len()."""
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

        if vocab_size < 257 + 1:
            raise CollapseError(f"BPE vocab size {vocab_size} is below the 256 bytes + end-of-text")
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=int(vocab_size), min_frequency=int(min_frequency),
                                      special_tokens=[END_OF_TEXT], show_progress=False,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
        if total is None:
            total = len(texts) if isinstance(texts, Sized) else None
        with Progress("BPE training", total=total, unit="doc", enabled=progress) as bar:
            def counted(items: Iterable[str]) -> Iterator[str]:
                for text in items:
                    bar.update(1)
                    yield text

            tok.train_from_iterator(counted(texts), trainer=trainer, length=total)
        return cls(tok, END_OF_TEXT)

    def to_json(self) -> str:
        return self._tok.to_str()

    @classmethod
    def from_json(cls, text: str, eot_token: str = END_OF_TEXT) -> "TextTokenizer":
        from tokenizers import Tokenizer

        return cls(Tokenizer.from_str(text), eot_token)

    def save(self, path: str) -> None:
        with atomic_path(path) as tmp:
            self._tok.save(tmp)

    # -- use ------------------------------------------------------------------------------
    def encode_batch(self, texts: Sequence[str]) -> List[np.ndarray]:
        """Token ids of each text (no end-of-text appended), as int64 arrays."""
        encs = self._tok.encode_batch(list(texts), add_special_tokens=False)
        return [np.asarray(e.ids, dtype=np.int64) for e in encs]

    def encode_documents(self, texts: Iterable[str], chunk: int = ENCODE_CHUNK) -> "tuple[np.ndarray, np.ndarray]":
        """Flat int32 ids of all texts, each followed by end-of-text, and int64 offsets.

        Streams: ``chunk`` texts are encoded at a time (never a million Encoding objects at
        once) into an id buffer that grows in place (ndarray.resize: realloc, which moves
        large blocks by remapping pages, not copying them), so the peak is about the final
        array plus one chunk."""
        flat = np.empty(1 << 16, dtype=np.int32)
        lengths = np.empty(1 << 12, dtype=np.int64)
        n_tokens = n_docs = 0
        it = iter(texts)
        while True:
            batch = list(itertools.islice(it, chunk))
            if not batch:
                break
            encs = [e.ids for e in self._tok.encode_batch(batch, add_special_tokens=False)]
            need_docs = n_docs + len(encs)
            need_tokens = n_tokens + sum(len(ids) for ids in encs) + len(encs)
            if need_docs > lengths.size:
                lengths.resize(max(need_docs, 2 * lengths.size), refcheck=False)
            if need_tokens > flat.size:
                flat.resize(max(need_tokens, 2 * flat.size), refcheck=False)
            for ids in encs:
                flat[n_tokens:n_tokens + len(ids)] = ids
                flat[n_tokens + len(ids)] = self.eot_id
                n_tokens += len(ids) + 1
                lengths[n_docs] = len(ids) + 1
                n_docs += 1
            del encs, batch
        flat.resize(n_tokens, refcheck=False)
        offsets = np.zeros(n_docs + 1, dtype=np.int64)
        np.cumsum(lengths[:n_docs], out=offsets[1:])
        return flat, offsets

    def decode_batch(self, sequences: Sequence[Sequence[int]]) -> List[str]:
        return self._tok.decode_batch([list(map(int, s)) for s in sequences], skip_special_tokens=True)


def load_or_train(path: Optional[str], texts: Iterable[str], vocab_size: int) -> TextTokenizer:
    return TextTokenizer.from_file(path) if path else TextTokenizer.train_bpe(texts, vocab_size)
