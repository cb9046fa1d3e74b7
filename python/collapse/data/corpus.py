"""Corpus and Vocab (token ids + document offsets), the tokenizers, and the loaders of every text format.

A Corpus is two numpy arrays, ``tokens`` (flat uint32 ids) and ``offsets`` (int64, one
more than the number of documents; document i is ``tokens[offsets[i]:offsets[i+1]]``),
plus the Vocab that names the ids. Documents never contain ``<s>``/``</s>``: sequence
boundaries are implied by the offsets, as lmplz implies them by line ends.

A corpus may also keep each document's source text as loaded (``source_text``, a
collapse.data.texts.DocumentTexts: punctuation, casing and line breaks as in the file), for
a family whose tokenizer reads text, not words (``load_corpus(..., keep_text=True)``).
``document_texts()`` gives every caller texts: the kept ones, or the words re-joined with
single spaces. select, remap, concatenate and the resample draws carry the texts along.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, List, Optional, Sequence

import numpy as np

from ..errors import CollapseError
from ..files import atomic_path
from ..validate import integer_array
from .texts import DocumentTexts

UNK, BOS, EOS = "<unk>", "<s>", "</s>"
UNK_ID, BOS_ID, EOS_ID = 0, 1, 2
SPECIALS = (UNK, BOS, EOS)

FORMATS = ("lines", "paragraphs", "tinystories", "jsonl", "parquet", "arrow")
TOKENIZERS = ("whitespace", "word")
TINYSTORIES_SEPARATOR = "<|endoftext|>"


class Vocab:
    """Word <-> id mapping. Ids 0, 1, 2 are always ``<unk>``, ``<s>``, ``</s>``."""

    __slots__ = ("_words", "_ids")

    def __init__(self, words: Iterable[str] = ()) -> None:
        self._words: List[str] = list(SPECIALS)
        self._ids = {w: i for i, w in enumerate(self._words)}
        for w in words:
            self.add(w)

    def add(self, word: str) -> int:
        i = self._ids.get(word)
        if i is None:
            i = len(self._words)
            self._words.append(word)
            self._ids[word] = i
        return i

    def id(self, word: str) -> int:
        """The id of ``word``, or the id of ``<unk>`` when it is not in the vocabulary."""
        return self._ids.get(word, UNK_ID)

    def __contains__(self, word: object) -> bool:
        return word in self._ids

    def __len__(self) -> int:
        return len(self._words)

    def __getitem__(self, i: int) -> str:
        return self._words[i]

    @property
    def words(self) -> List[str]:
        return list(self._words)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and self._words == other._words

    def __repr__(self) -> str:
        return f"Vocab({len(self)} words)"

    def map_to(self, other: "Vocab") -> np.ndarray:
        """uint32 array r with r[i] = other's id of this vocab's word i (``<unk>`` if absent)."""
        return np.fromiter((other.id(w) for w in self._words), dtype=np.uint32, count=len(self._words))


@dataclass(eq=False)
class Corpus:
    """Token ids of many documents, with the vocabulary naming them. ``truncated``: for a
    sample, which documents a sampler cut at its length limit (bool per document; None when
    not known), kept by select, remap and concatenate; not saved with the text.
    ``source_text``: each document's text as loaded (DocumentTexts, or a list of str),
    None when not kept (see document_texts)."""

    tokens: np.ndarray
    offsets: np.ndarray
    vocab: Vocab
    truncated: Optional[np.ndarray] = field(default=None, repr=False)
    source_text: Optional[DocumentTexts] = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.tokens = integer_array("corpus tokens", self.tokens, np.uint32)
        self.offsets = integer_array("corpus offsets", self.offsets, np.int64)
        if self.truncated is not None:
            self.truncated = np.asarray(self.truncated, dtype=bool)
            if self.truncated.shape != (self.offsets.size - 1,):
                raise CollapseError("corpus truncated flags must be one per document")
        if self.source_text is not None:
            if not isinstance(self.source_text, DocumentTexts):
                self.source_text = DocumentTexts.from_strings(self.source_text)
            if len(self.source_text) != self.offsets.size - 1:
                raise CollapseError("corpus source texts must be one per document")
        if self.offsets.ndim != 1 or self.offsets.size < 1 or self.offsets[0] != 0:
            raise CollapseError("corpus offsets must be a 1-d array starting at 0")
        if self.offsets[-1] != self.tokens.size:
            raise CollapseError("corpus offsets must end at the number of tokens")
        if self.offsets.size > 1 and np.any(np.diff(self.offsets) < 0):
            raise CollapseError("corpus offsets must be non-decreasing")
        if self.tokens.size and int(self.tokens.max()) >= len(self.vocab):
            raise CollapseError("corpus token id outside its vocabulary")

    # -- construction -------------------------------------------------------------
    @classmethod
    def from_documents(cls, documents: Iterable[Sequence[str]], vocab: Optional[Vocab] = None,
                       grow: bool = True) -> "Corpus":
        """Build from token lists. With ``grow=False`` unknown words map to ``<unk>``."""
        vocab = Vocab() if vocab is None else vocab
        ids: List[int] = []
        offsets = [0]
        lookup = vocab.add if grow else vocab.id
        for doc in documents:
            ids.extend(lookup(w) for w in doc)
            offsets.append(len(ids))
        return cls(np.asarray(ids, dtype=np.uint32), np.asarray(offsets, dtype=np.int64), vocab)

    @classmethod
    def from_texts(cls, texts: Iterable[str], tokenizer: str = "whitespace", lowercase: bool = False,
                   vocab: Optional[Vocab] = None, grow: bool = True, keep_text: bool = False) -> "Corpus":
        """One document per text. The whitespace tokenizer runs in the C++ core; its output
        is identical to ``from_documents(whitespace_tokenize(t) for t in texts)``.
        keep_text: also keep the texts as given (not lowercased) as ``source_text``: how a
        family that reads text builds its sample from decoded texts."""
        if tokenizer == "whitespace":
            if keep_text and not isinstance(texts, (list, tuple)):
                texts = list(texts)
            encoded = [(t.lower() if lowercase else t).encode("utf-8") for t in texts]
            bounds = np.zeros(len(encoded) + 1, dtype=np.int64)
            np.cumsum(np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded)), out=bounds[1:])
            data = b"".join(encoded)
            del encoded
            corpus = _tokenize_bytes(data, bounds, vocab, grow)
            if keep_text:
                # the bytes already joined are the texts themselves unless lowercased
                corpus = corpus.with_source_text(DocumentTexts.from_utf8(data, bounds) if not lowercase
                                                 else DocumentTexts.from_strings(texts))
            return corpus
        if keep_text and not isinstance(texts, (list, tuple)):
            texts = list(texts)
        tok = get_tokenizer(tokenizer, lowercase=lowercase)
        corpus = cls.from_documents((tok(t) for t in texts), vocab=vocab, grow=grow)
        return corpus.with_source_text(DocumentTexts.from_strings(texts)) if keep_text else corpus

    # -- views ----------------------------------------------------------------------
    @property
    def num_documents(self) -> int:
        return int(self.offsets.size - 1)

    @property
    def num_tokens(self) -> int:
        return int(self.tokens.size)

    def __len__(self) -> int:
        return self.num_documents

    def document(self, i: int) -> np.ndarray:
        return self.tokens[self.offsets[i]:self.offsets[i + 1]]

    def documents(self) -> Iterator[np.ndarray]:
        for i in range(self.num_documents):
            yield self.document(i)

    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def texts(self) -> Iterator[str]:
        """Each document's words joined by single spaces (the word view, whatever text is kept)."""
        words = np.asarray(self.vocab.words, dtype=object)
        for doc in self.documents():
            yield " ".join(words[doc])

    @property
    def has_source_text(self) -> bool:
        return self.source_text is not None

    def document_texts(self) -> List[str]:
        """Each document's source text as loaded when the corpus keeps it, else (a sampled
        corpus, an embedded grammar's) its words joined by single spaces."""
        if self.source_text is not None:
            return self.source_text.to_list()
        return list(self.texts())

    def with_source_text(self, texts: "Optional[DocumentTexts | Sequence[str]]") -> "Corpus":
        """The same documents keeping ``texts`` (one per document, checked) as their source text."""
        return Corpus(self.tokens, self.offsets, self.vocab, self.truncated, texts)

    def document_texts_compact(self) -> DocumentTexts:
        """document_texts() as DocumentTexts (the kept ones, or the words joined, built here)."""
        return self.source_text if self.source_text is not None else DocumentTexts.from_strings(self.texts())

    def select(self, indices: np.ndarray) -> "Corpus":
        """The documents at ``indices`` (in that order, repeats allowed), same vocab."""
        indices = integer_array("indices", indices, np.int64)
        if indices.size and (indices.min() < 0 or indices.max() >= self.num_documents):
            raise CollapseError("document index out of range")
        lens = self.lengths()[indices]
        offsets = np.zeros(indices.size + 1, dtype=np.int64)
        np.cumsum(lens, out=offsets[1:])
        starts = self.offsets[indices]
        # gather: position j of output doc k comes from starts[k] + j
        if offsets[-1]:
            rel = np.arange(offsets[-1], dtype=np.int64) - np.repeat(offsets[:-1], lens)
            tokens = self.tokens[np.repeat(starts, lens) + rel]
        else:
            tokens = np.zeros(0, dtype=np.uint32)
        return Corpus(tokens, offsets, self.vocab, None if self.truncated is None else self.truncated[indices],
                      None if self.source_text is None else self.source_text.take(indices))

    def remap(self, vocab: Vocab) -> "Corpus":
        """The same text with ids of ``vocab`` (words it lacks become ``<unk>``)."""
        if vocab is self.vocab or vocab == self.vocab:
            return Corpus(self.tokens, self.offsets, vocab, self.truncated, self.source_text)
        table = self.vocab.map_to(vocab)
        return Corpus(table[self.tokens], self.offsets, vocab, self.truncated, self.source_text)

    def write_text(self, path: str) -> None:
        """One document per line, tokens joined by single spaces (atomic write)."""
        with atomic_path(path) as tmp:
            with open(tmp, "w", encoding="utf-8", newline="\n") as f:
                for line in self.texts():
                    f.write(line)
                    f.write("\n")

    def __repr__(self) -> str:
        return f"Corpus({self.num_documents} documents, {self.num_tokens} tokens, {len(self.vocab)} words)"


@dataclass(frozen=True)
class CorpusSummary:
    """The sizes of a corpus held only as counts (accumulate's pool in the n-gram family):
    what the loop records of a training corpus it never materialises."""

    num_documents: int
    num_tokens: int
    words_used: int  # distinct words occurring (not <unk>, <s>, </s>)

    @classmethod
    def of(cls, corpus: "Corpus") -> "CorpusSummary":
        own = np.bincount(corpus.tokens, minlength=len(corpus.vocab))
        return cls(corpus.num_documents, corpus.num_tokens, int(np.count_nonzero(own[3:])))


def concatenate(corpora: Sequence[Corpus]) -> Corpus:
    """Documents of all corpora in order; ids remapped to the first corpus's vocab, grown.
    When any corpus keeps source text the result keeps it for all (a corpus without it
    contributes its words joined by single spaces: document_texts)."""
    if not corpora:
        raise CollapseError("nothing to concatenate")
    vocab = Vocab(corpora[0].vocab.words[3:])
    parts, offs, base = [], [np.zeros(1, dtype=np.int64)], 0
    for c in corpora:
        table = np.fromiter((vocab.add(w) for w in c.vocab.words), dtype=np.uint32, count=len(c.vocab))
        parts.append(table[c.tokens])
        offs.append(c.offsets[1:] + base)
        base += c.num_tokens
    known = all(c.truncated is not None for c in corpora)
    text = (DocumentTexts.concat([c.document_texts_compact() for c in corpora])
            if any(c.source_text is not None for c in corpora) else None)
    return Corpus(np.concatenate(parts) if parts else np.zeros(0, np.uint32), np.concatenate(offs), vocab,
                  np.concatenate([c.truncated for c in corpora]) if known else None, text)


# ---------------------------------------------------------------------------------------
# Tokenizers. They take str and return a list of str tokens.

# lmplz splits a line on exactly these bytes (lm/builder/corpus_count.cc: NUL, tab, LF,
# CR, space); \v, \f and Unicode spaces (e.g. U+00A0) stay inside tokens, so we split
# bytes, not str.
_LMPLZ_SPACES = b" \t\n\r\x00"
_SPACE_TRANSLATE = bytes.maketrans(_LMPLZ_SPACES, b" " * len(_LMPLZ_SPACES))

_WORD_RE = re.compile(r"\w+(?:['’]\w+)*|[^\w\s]", re.UNICODE)


def whitespace_tokenize(text: str) -> List[str]:
    """Split exactly as KenLM's lmplz splits a line."""
    b = text.encode("utf-8").translate(_SPACE_TRANSLATE)
    return [t.decode("utf-8") for t in b.split(b" ") if t]


def _tokenize_bytes(data: bytes, doc_bounds: Optional[np.ndarray], vocab: Optional[Vocab],
                    grow: bool) -> Corpus:
    """Whitespace-tokenize UTF-8 ``data`` in the C++ core (documents are the byte ranges
    between ``doc_bounds``, or its lines when None) and extend ``vocab`` with the new words
    in the ids the core gave them."""
    from .. import _core

    vocab = Vocab() if vocab is None else vocab
    base = len(vocab)
    tokens, offsets, new_words = _core.tokenize_whitespace(data, doc_bounds, vocab._words, grow)
    # The core numbered new words base, base+1, ... in order of first appearance, which is
    # what Vocab.add gives them here.
    vocab._words.extend(new_words)
    vocab._ids.update(zip(new_words, range(base, base + len(new_words))))
    if len(vocab._ids) != len(vocab._words):  # pragma: no cover - the core returns only unseen words
        raise AssertionError("tokenizer returned a word already in the vocabulary")
    return Corpus(tokens, offsets, vocab)


def corpus_from_lines(data: bytes, vocab: Optional[Vocab] = None, grow: bool = True) -> Corpus:
    """One document per line of UTF-8 ``data``, split as lmplz splits (in the C++ core);
    with ``grow=False`` words outside ``vocab`` become ``<unk>``. Bad UTF-8 is a ValueError
    naming the byte and line."""
    return _tokenize_bytes(data, None, vocab, grow)


def _line_texts(data: bytes) -> DocumentTexts:
    """The lines of ``data`` as iter_lines yields them (every line, empty ones included, a
    final newline starting none), from the bytes: the newlines dropped, one buffer."""
    raw = np.frombuffer(data, dtype=np.uint8)
    newlines = np.flatnonzero(raw == 0x0A)
    ends = newlines if (raw.size == 0 or raw[-1] == 0x0A) else np.append(newlines, raw.size)
    # line i ends at ends[i] in data; without the i newlines before it, at ends[i] - i
    bounds = np.zeros(ends.size + 1, dtype=np.int64)
    bounds[1:] = ends - np.arange(ends.size, dtype=np.int64)
    return DocumentTexts.from_utf8(raw[raw != 0x0A].tobytes(), bounds)


def word_tokenizer(lowercase: bool = False) -> Callable[[str], List[str]]:
    """Words and single punctuation marks ("Lily's dog." -> Lily's, dog, .)."""
    def tokenize(text: str) -> List[str]:
        if lowercase:
            text = text.lower()
        return _WORD_RE.findall(text)
    return tokenize


def get_tokenizer(name: str, lowercase: bool = False) -> Callable[[str], List[str]]:
    if name == "whitespace":
        if lowercase:
            return lambda t: whitespace_tokenize(t.lower())
        return whitespace_tokenize
    if name == "word":
        return word_tokenizer(lowercase)
    raise CollapseError(f"unknown tokenizer {name!r} (choose from {', '.join(TOKENIZERS)})")


# ---------------------------------------------------------------------------------------
# Loaders: each yields document texts.

def _read_bytes(path: str) -> bytes:
    if not os.path.exists(path):
        raise CollapseError(f"no such file: {path}")
    if os.path.isdir(path):
        raise CollapseError(f"{path} is a directory, not a file")
    with open(path, "rb") as f:
        return f.read()


def _read_text(path: str) -> str:
    data = _read_bytes(path)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise CollapseError(f"{path}: invalid UTF-8 at byte {e.start} (line {line})") from None


def iter_lines(path: str) -> Iterator[str]:
    """One document per line. Every line is a document, empty ones included, as lmplz
    counts them; a final newline does not start another."""
    text = _read_text(path)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return iter(lines)


# A blank line: one holding only whitespace (as str.strip sees it); one or more of them
# between two lines of text end a paragraph.
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")


def iter_paragraphs(path: str) -> Iterator[str]:
    """Documents separated by one or more blank lines (TinyStories' validation text as the
    Hugging Face dataset exports it); each document is its lines, stripped. There are no
    empty documents: blank lines at the start, the end or in a row separate nothing."""
    for doc in _PARAGRAPH_BREAK.split(_read_text(path)):
        doc = doc.strip()
        if doc:
            yield doc


def iter_tinystories(path: str) -> Iterator[str]:
    """Raw TinyStories: stories separated by lines holding only <|endoftext|> (and
    whitespace, as str.strip sees it); each story is the text between two separator lines,
    stripped; empty stories are dropped."""
    text = _read_text(path)
    sep, n = TINYSTORIES_SEPARATOR, len(text)
    story_start = 0
    # Jump from one occurrence of the separator to the next (str.find is a fast search)
    # and keep those alone on their line.
    pos = text.find(sep)
    while pos != -1:
        line_start = text.rfind("\n", 0, pos) + 1
        line_end = text.find("\n", pos + len(sep))
        if line_end == -1:
            line_end = n
        if text[line_start:pos].strip() == "" and text[pos + len(sep):line_end].strip() == "":
            doc = text[story_start:line_start].strip()
            if doc:
                yield doc
            story_start = line_end
            pos = text.find(sep, line_end)
        else:
            pos = text.find(sep, pos + 1)
    doc = text[story_start:].strip()
    if doc:
        yield doc


def iter_jsonl(path: str, field: str = "text") -> Iterator[str]:
    text = _read_text(path)
    for n, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise CollapseError(f"{path}: line {n} is not valid JSON ({e.msg})") from None
        if not isinstance(obj, dict) or field not in obj:
            raise CollapseError(f"{path}: line {n} has no {field!r} field")
        value = obj[field]
        if not isinstance(value, str):
            raise CollapseError(f"{path}: line {n}: field {field!r} is not a string")
        try:  # JSON's \ud800-\udfff escapes can make a lone surrogate, which is not text
            value.encode("utf-8")
        except UnicodeEncodeError as e:
            raise CollapseError(f"{path}: line {n}: field {field!r} holds a lone surrogate "
                                f"({value[e.start:e.end].encode('unicode_escape').decode()}), not valid Unicode") from None
        yield value


def iter_parquet(path: str, field: str = "text") -> Iterator[str]:
    if not os.path.exists(path):
        raise CollapseError(f"no such file: {path}")
    try:
        import pyarrow.parquet as pq
    except ImportError:  # pragma: no cover - pyarrow is a dependency
        raise CollapseError("reading parquet needs pyarrow (pip install pyarrow)") from None
    try:
        table = pq.read_table(path, columns=[field])
    except Exception as e:  # noqa: BLE001 - pyarrow raises several types for bad files / missing columns
        raise CollapseError(f"{path}: cannot read {field!r} from parquet ({e})") from None
    for value in table.column(field).to_pylist():
        if value is None:
            continue
        if not isinstance(value, str):
            raise CollapseError(f"{path}: parquet column {field!r} is not text")
        yield value


def arrow_files(path: str) -> List[str]:
    """The Arrow files of ``path``: the file itself, or the shards of a Hugging Face
    ``Dataset.save_to_disk`` directory (in the order its state.json lists them, else by name)."""
    if not os.path.exists(path):
        raise CollapseError(f"no such file or directory: {path}")
    if not os.path.isdir(path):
        return [path]
    if os.path.exists(os.path.join(path, "dataset_dict.json")):
        raise CollapseError(f"{path} is a DatasetDict; give the directory of one split (e.g. {path}/train)")
    state = os.path.join(path, "state.json")
    names: List[str] = []
    if os.path.exists(state):
        try:
            with open(state, encoding="utf-8") as f:
                names = [d["filename"] for d in json.load(f).get("_data_files", [])]
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise CollapseError(f"{state}: not a datasets state file ({e})") from None
    if not names:
        names = sorted(n for n in os.listdir(path) if n.endswith(".arrow"))
    if not names:
        raise CollapseError(f"{path}: no .arrow files")
    return [os.path.join(path, n) for n in names]


def iter_arrow(path: str, field: str = "text") -> Iterator[str]:
    """Texts of Arrow data (pyarrow): one .arrow file in IPC stream format (what Hugging Face
    datasets writes) or IPC file format, or a ``save_to_disk`` directory of them."""
    import pyarrow as pa

    for file in arrow_files(path):
        try:
            with pa.memory_map(file) as source:
                try:
                    reader = pa.ipc.open_stream(source)
                except pa.ArrowInvalid:
                    reader = pa.ipc.open_file(source)
                table = reader.read_all()
        except (pa.ArrowInvalid, OSError) as e:
            raise CollapseError(f"{file}: cannot read Arrow data ({e})") from None
        if field not in table.column_names:
            raise CollapseError(f"{file}: no column {field!r} (columns: {', '.join(table.column_names)})")
        for value in table.column(field).to_pylist():
            if value is None:
                continue
            if not isinstance(value, str):
                raise CollapseError(f"{file}: Arrow column {field!r} is not text")
            yield value


_LOADERS = {"lines": iter_lines, "paragraphs": iter_paragraphs, "tinystories": iter_tinystories, "jsonl": iter_jsonl,
            "parquet": iter_parquet, "arrow": iter_arrow}
_FIELD_FORMATS = ("jsonl", "parquet", "arrow")  # formats whose documents are a named field


def iter_documents(path: str, format: str = "lines", field: str = "text") -> Iterator[str]:
    """The document texts of ``path`` in ``format`` (``field``: the column of jsonl, parquet, arrow)."""
    loader = _LOADERS.get(format)
    if loader is None:
        raise CollapseError(f"unknown format {format!r} (choose from {', '.join(FORMATS)})")
    return loader(path, field) if format in _FIELD_FORMATS else loader(path)


# A corpus that is almost surely mis-split (a file read in the wrong format): more than
# MISSPLIT_EMPTY_SHARE of its documents empty ("lines" on blank-line separated text), or a
# document longer than MISSPLIT_LONG_FACTOR times the median training document and than
# MISSPLIT_LONG_FLOOR tokens (a whole file read as one story). The floor keeps short-line
# corpora, whose lengths vary widely, clear of the ratio; a training corpus that is one
# document of more than the floor is refused too (it has no median to compare with).
MISSPLIT_EMPTY_SHARE = 0.2
MISSPLIT_LONG_FACTOR = 50
MISSPLIT_LONG_FLOOR = 10_000


def split_problem(lengths: np.ndarray, typical: Optional[float] = None) -> Optional[str]:
    """Why a corpus whose documents have ``lengths`` tokens looks mis-split ("loads as 1
    document of 181,421 tokens while the training documents' median is 187 tokens"), or
    None. typical: the median length of the training documents; None for the training
    corpus itself (its own median)."""
    lengths = np.asarray(lengths)
    n = int(lengths.size)
    if n == 0:
        return None
    empty = int(np.count_nonzero(lengths == 0))
    if empty > MISSPLIT_EMPTY_SHARE * n:
        return f"loads as {n:,} documents of which {empty:,} ({100 * empty / n:.0f}%) are empty"
    own = typical is None
    median = float(np.median(lengths)) if typical is None else float(typical)
    longest = int(lengths.max())
    alone = own and n == 1  # a training corpus of one document has no median to compare with
    if longest <= MISSPLIT_LONG_FLOOR or not (alone or longest > MISSPLIT_LONG_FACTOR * median):
        return None
    head = f"loads as 1 document of {longest:,} tokens" if n == 1 else \
        f"loads as {n:,} documents, the longest of {longest:,} tokens"
    if own:
        return head if alone else f"{head} while its median document has {median:,.0f} tokens"
    return f"{head} while the training documents' median is {median:,.0f} tokens"


def guess_text_format(path: str) -> str:
    """The text format a file's layout suggests: ``tinystories`` when a line holds only
    ``<|endoftext|>``, else ``paragraphs`` when blank lines separate text, else ``lines``."""
    text = _read_text(path)
    if re.search(r"^[ \t]*" + re.escape(TINYSTORIES_SEPARATOR) + r"[ \t\r]*$", text, re.MULTILINE):
        return "tinystories"
    return "paragraphs" if _PARAGRAPH_BREAK.search(text.strip()) else "lines"


def load_corpus(path: str, format: str = "lines", tokenizer: str = "whitespace", lowercase: bool = False,
                vocab: Optional[Vocab] = None, grow: bool = True, field: str = "text",
                keep_text: bool = False) -> Corpus:
    """Load a corpus from a text file (or, for ``arrow``, a directory).

    format: ``lines`` (one sequence per line), ``paragraphs`` (documents separated by blank
    lines), ``tinystories`` (stories separated by ``<|endoftext|>`` lines), ``jsonl``,
    ``parquet`` or ``arrow`` (the ``field`` column; arrow: a .arrow file or a Hugging Face
    ``save_to_disk`` directory).
    tokenizer: ``whitespace`` (as lmplz) or ``word`` (punctuation split off).
    With a ``vocab`` and ``grow=False``, words outside it become ``<unk>``.
    keep_text: also keep each document's text as the format yields it (``source_text``:
    a line without its newline, a paragraph or story stripped at its ends with its inner
    line breaks, a jsonl / parquet / arrow field as stored; never lowercased).
    """
    if tokenizer not in TOKENIZERS:
        raise CollapseError(f"unknown tokenizer {tokenizer!r} (choose from {', '.join(TOKENIZERS)})")
    if format == "lines" and tokenizer == "whitespace" and not lowercase:
        # Straight from the file's bytes: the core splits lines and checks UTF-8 itself.
        data = _read_bytes(path)
        try:
            corpus = corpus_from_lines(data, vocab, grow)
        except CollapseError:
            raise
        except ValueError as e:  # bad UTF-8: the core names the byte and line
            raise CollapseError(f"{path}: {e}") from None
        if keep_text:
            corpus = corpus.with_source_text(_line_texts(data))
    else:
        docs = iter_documents(path, format, field)
        corpus = Corpus.from_texts(docs, tokenizer=tokenizer, lowercase=lowercase, vocab=vocab, grow=grow,
                                   keep_text=keep_text)
    if corpus.num_documents == 0:
        raise CollapseError(f"{path}: the corpus is empty")
    return corpus
