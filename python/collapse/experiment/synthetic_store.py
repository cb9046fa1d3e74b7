"""SyntheticStore: Accumulate-Subsample's pool S_0, S_1, ... on disk as memory-mapped arrays, so its memory stays bounded.

Accumulate-Subsample draws generation t's N documents from R + S_0 + ... + S_{t-1}. Held
in memory, that pool grows by one S_k a generation (~250 MB at 1M stories, 12-13 GB by
generation 40). The store keeps each S_k as uncompressed .npy files (token ids, document
offsets) and its vocabulary in the cell's folder; a part is memory-mapped only while its
drawn documents are gathered (collapse.experiment.paradigms.draw_from_pool, one part at a
time), and only their pages are read: the process holds the draw (N documents), not the pool.
A part whose corpus keeps its source text stores it too (uncompressed Arrow, mapped the
same way), so the draw keeps its texts.
"""

from __future__ import annotations

import os
from typing import Callable

import numpy as np

from .. import _core
from ..data.corpus import Corpus, Vocab
from ..data.texts import DocumentTexts
from ..errors import CollapseError
from ..files import atomic_path, write_bytes

STORE_DIR = "synthetic_pool"  # in the cell's folder; removed when the cell has finished


def _save_npy(path: str, array: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, array, allow_pickle=False)


class StoredPart:
    """One S_k on disk: its size without reading it, the documents drawn from it (mapped)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        offsets = np.load(prefix + ".offsets.npy", mmap_mode="r")
        self.num_documents = int(offsets.shape[0]) - 1

    def vocab(self) -> Vocab:
        with open(self.prefix + ".vocab.txt", encoding="utf-8") as f:
            return Vocab(f.read().split("\n")[:-1])

    def gather(self, indices: np.ndarray) -> Corpus:
        """The documents at ``indices`` (as collapse.resample.gather). The part's files were
        written from a checked Corpus, so they are not scanned again (that would read every
        page of the part): only the drawn documents' pages are read, and they are checked as
        a new Corpus."""
        tokens = np.load(self.prefix + ".tokens.npy", mmap_mode="r")
        offsets = np.load(self.prefix + ".offsets.npy", mmap_mode="r")
        if offsets.shape[0] - 1 != self.num_documents or int(offsets[-1]) != tokens.shape[0]:
            raise CollapseError(f"{self.prefix}: damaged synthetic pool file (sizes disagree)")
        drawn_tokens, drawn_offsets = _core.gather_documents(tokens, offsets, np.asarray(indices, dtype=np.int64),
                                                             threads=1)
        del tokens, offsets  # the mapping ends here
        text = None
        if os.path.exists(self.prefix + ".text.arrow"):
            stored = DocumentTexts.read(self.prefix + ".text.arrow", memory_map=True)
            if len(stored) != self.num_documents:
                raise CollapseError(f"{self.prefix}: damaged synthetic pool file (texts and offsets disagree)")
            text = stored.take(np.asarray(indices, dtype=np.int64))
            del stored
        return Corpus(drawn_tokens, drawn_offsets, self.vocab(), source_text=text)


class SyntheticStore:
    """S_k of one cell, k = 0, 1, ..., as StoredPart files under ``directory``."""

    def __init__(self, directory: str) -> None:
        self.directory = directory

    def _prefix(self, k: int) -> str:
        return os.path.join(self.directory, f"s_{k:04d}")

    def has(self, k: int) -> bool:
        # the offsets are written last: their presence means the part is complete
        return os.path.exists(self._prefix(k) + ".offsets.npy")

    def put(self, k: int, corpus: Corpus) -> StoredPart:
        os.makedirs(self.directory, exist_ok=True)
        prefix = self._prefix(k)
        write_bytes(prefix + ".vocab.txt", "".join(w + "\n" for w in corpus.vocab.words[3:]).encode("utf-8"))
        if corpus.source_text is not None:
            corpus.source_text.write(prefix + ".text.arrow", level=0)  # uncompressed: mapped by gather
        elif os.path.exists(prefix + ".text.arrow"):
            os.remove(prefix + ".text.arrow")
        _save_npy(prefix + ".tokens.npy", np.ascontiguousarray(corpus.tokens, dtype=np.uint32))
        _save_npy(prefix + ".offsets.npy", np.ascontiguousarray(corpus.offsets, dtype=np.int64))
        return StoredPart(prefix)

    def part(self, k: int, load: Callable[[], Corpus]) -> StoredPart:
        """S_k from the store, written there first from ``load()`` (its saved generation)
        when missing, e.g. in a run resumed from before the store."""
        if self.has(k):
            try:
                return StoredPart(self._prefix(k))
            except (OSError, ValueError) as e:
                raise CollapseError(f"{self._prefix(k)}: damaged synthetic pool file ({e})") from None
        return self.put(k, load())
