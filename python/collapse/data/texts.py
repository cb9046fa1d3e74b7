"""DocumentTexts: each document's source text as loaded (punctuation, casing, line breaks), kept compactly.

A Corpus is words (whitespace tokens); a family whose tokenizer expects the text itself
(a pretrained Hugging Face tokenizer) needs what the file held, not the words re-joined
with single spaces. DocumentTexts holds it as one pyarrow ``large_string`` array: one UTF-8
buffer and int64 offsets, never a Python str per document (corpora reach 1M documents);
selection and concatenation run in Arrow's C++ kernels. Files: an Arrow IPC file of one
column (``text``), zstd-compressed or not, written atomically (collapse.files).
"""

from __future__ import annotations

from typing import Iterable, List, Sequence

import numpy as np

from ..errors import CollapseError
from ..files import atomic_path

TEXT_COLUMN = "text"


def _pa():  # noqa: ANN202 - pyarrow is imported only where texts are kept
    import pyarrow as pa

    return pa


class DocumentTexts:
    """The source text of each document, in corpus order (one pyarrow large_string array)."""

    __slots__ = ("_array",)

    def __init__(self, array: "object") -> None:
        pa = _pa()
        if isinstance(array, pa.ChunkedArray):
            array = array.chunk(0) if array.num_chunks == 1 else array.combine_chunks()
        if not isinstance(array, pa.Array) or array.type != pa.large_string():
            raise CollapseError("document texts must be a pyarrow large_string array")
        if array.null_count:
            raise CollapseError("a document text is missing (null)")
        self._array = array

    @classmethod
    def from_strings(cls, texts: Iterable[str]) -> "DocumentTexts":
        pa = _pa()
        texts = texts if isinstance(texts, (list, tuple)) else list(texts)
        try:
            return cls(pa.array(texts, type=pa.large_string()))
        except (pa.ArrowException, UnicodeEncodeError, TypeError) as e:
            raise CollapseError(f"document texts must be str without lone surrogates ({e})") from None

    @classmethod
    def from_utf8(cls, data: bytes, bounds: np.ndarray) -> "DocumentTexts":
        """Document i is ``data[bounds[i]:bounds[i+1]]`` (UTF-8, checked); the buffer is shared, not copied."""
        pa = _pa()
        bounds = np.ascontiguousarray(bounds, dtype=np.int64)
        if bounds.ndim != 1 or bounds.size < 1 or bounds[0] != 0 or bounds[-1] != len(data) \
                or np.any(np.diff(bounds) < 0):
            raise CollapseError("document text bounds must run from 0 to the end of the data, non-decreasing")
        array = pa.LargeStringArray.from_buffers(bounds.size - 1, pa.py_buffer(bounds), pa.py_buffer(data))
        try:
            array.validate(full=True)  # UTF-8 of every document
        except pa.ArrowInvalid as e:
            raise CollapseError(f"document texts are not valid UTF-8 ({e})") from None
        return cls(array)

    @classmethod
    def concat(cls, parts: Sequence["DocumentTexts"]) -> "DocumentTexts":
        pa = _pa()
        if not parts:
            return cls.from_strings([])
        return cls(pa.concat_arrays([p._array for p in parts]))

    def __len__(self) -> int:
        return len(self._array)

    def __getitem__(self, i: int) -> str:
        return self._array[i].as_py()

    def to_list(self) -> List[str]:
        return self._array.to_pylist()

    def take(self, indices: np.ndarray) -> "DocumentTexts":
        """The texts at ``indices`` (in that order, repeats allowed)."""
        pa = _pa()
        return DocumentTexts(self._array.take(pa.array(np.asarray(indices, dtype=np.int64), pa.int64())))

    @property
    def nbytes(self) -> int:
        """Bytes held: the UTF-8 text plus 8 per document (its offset)."""
        return int(self._array.nbytes)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DocumentTexts) and self._array.equals(other._array)

    def __repr__(self) -> str:
        return f"DocumentTexts({len(self)} documents, {self.nbytes} bytes)"

    # -- files --------------------------------------------------------------------------
    def write(self, path: str, level: int = 0) -> None:
        """An Arrow IPC file of one ``text`` column (zstd at ``level``; 0: uncompressed, so
        that read(memory_map=True) touches only the pages a take reads), written atomically."""
        pa = _pa()
        table = pa.table({TEXT_COLUMN: self._array})
        codec = pa.Codec("zstd", compression_level=level) if level else None
        options = pa.ipc.IpcWriteOptions(compression=codec, use_threads=False)
        with atomic_path(path) as tmp:
            with pa.ipc.new_file(tmp, table.schema, options=options) as writer:
                writer.write_table(table)

    @classmethod
    def read(cls, path: str, memory_map: bool = False) -> "DocumentTexts":
        """What write() wrote; memory_map: the buffers stay on disk (an uncompressed file)."""
        pa = _pa()
        try:
            if memory_map:  # left open: the table's buffers are views of the mapping
                table = pa.ipc.open_file(pa.memory_map(path)).read_all()
            else:
                with pa.OSFile(path, "rb") as source:
                    table = pa.ipc.open_file(source).read_all()
        except (pa.ArrowInvalid, OSError) as e:
            raise CollapseError(f"{path}: cannot read document texts ({e})") from None
        if table.schema.names != [TEXT_COLUMN] or table.schema.types[0] != pa.large_string():
            raise CollapseError(f"{path}: not a document-texts file (schema {table.schema})")
        return cls(table.column(TEXT_COLUMN))
