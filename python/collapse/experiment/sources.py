"""The real data of an experiment: training corpus R, held-out text, fresh real documents (embedded source or files).

grammar, code: R, the held-out set and each generation's fresh documents are independent
samples of the embedded source, the story grammar or the code grammar (seeds derived
from data.seed); the exact probability of every held-out document is known.

file: the documents of data.path are shuffled once (data.seed); held-out text is
data.heldout_path read in data.heldout_format (with data.heldout_documents = N, a seeded
draw of N of its documents, kept in file order), or else the first heldout_documents (or
heldout_fraction) of the shuffled documents; R is the next data.num_documents documents
(all the rest when not given); whatever is left is the pool of fresh real documents. A
file that loads almost surely mis-split (collapse.data.corpus.split_problem) is refused,
naming the file and the fix, unless data.accept_split. Fresh generation t (t >= 1) takes pool documents
[(t-1) k, t k) where k is its real share; when the pool is too small for the configured
generations the run stops before it starts, with an error naming data.num_documents.

Source text: when some configured model's family reads text rather than words (its
registration sets ``uses_source_text = True``: wants_source_text), R, the held-out set and the fresh
documents of a file source keep each document's text as loaded (Corpus.source_text);
otherwise they hold words only, as before (no memory for text the n-gram family never reads).
An embedded source has no text but its words (Corpus.document_texts joins them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

import numpy as np

from .. import _core
from ..data.corpus import Corpus, guess_text_format, iter_documents, split_problem
from ..data.embedded import embedded_source
from ..data.exactsource import ExactSource
from ..errors import CollapseError
from .config import EMBEDDED_SOURCES, DataTable, ExperimentConfig
from .metrics import Reference
from .paradigms import synthetic_part
from .registry import registration

TAG_REAL, TAG_HELDOUT, TAG_FRESH, TAG_SHUFFLE = 1, 2, 3, 4
TEXT_FORMATS = ("lines", "paragraphs", "tinystories")  # formats whose documents a file's layout splits


def wants_source_text(cfg: ExperimentConfig, family_of: Optional[Callable[[str], Any]] = None) -> bool:
    """Whether some configured model's family reads documents' source text (its
    registration's ``uses_source_text``, False when absent): then the real data keeps it."""
    family_of = family_of or registration
    return any(getattr(family_of(m.family), "uses_source_text", False) for m in cfg.models)


def read_texts(path: str, fmt: str, field_name: str) -> List[str]:
    return list(iter_documents(path, fmt, field_name))


@dataclass
class RealData:
    real: Corpus
    heldout: Corpus
    reference: Reference
    fresh: Callable[[int, int], Corpus]
    describe: Dict[str, object] = field(default_factory=dict)
    grammar: Optional[ExactSource] = None


def load_real_data(cfg: ExperimentConfig, keep_text: Optional[bool] = None) -> RealData:
    """keep_text: keep the documents' source text (file sources); None: wants_source_text(cfg)."""
    d = cfg.data
    if d.source in EMBEDDED_SOURCES:
        g = embedded_source(d)
        real, _ = g.sample(d.num_documents, _core.derive_seed(d.seed, TAG_REAL))
        heldout, heldout_lp = g.sample(d.heldout_documents, _core.derive_seed(d.seed, TAG_HELDOUT))
        fresh_seed = _core.derive_seed(d.seed, TAG_FRESH)

        def fresh(t: int, k: int) -> Corpus:
            return g.sample(k, _core.derive_seed(fresh_seed, t))[0]

        ref = Reference.build(real, heldout, grammar=g, heldout_logprobs=heldout_lp)
        desc = {"source": d.source, d.source: g.describe()}
        data = RealData(real, heldout, ref, fresh, desc, g)
    else:
        data = _file_data(cfg, wants_source_text(cfg) if keep_text is None else keep_text)
    data.describe.update({"train_documents": data.real.num_documents, "train_tokens": data.real.num_tokens,
                          "heldout_documents": data.heldout.num_documents,
                          "heldout_tokens": data.heldout.num_tokens})
    return data


def _file_data(cfg: ExperimentConfig, keep_text: bool) -> RealData:
    d = cfg.data

    def corpus_of(ts: List[str], keep: bool = keep_text) -> Corpus:
        return Corpus.from_texts(ts, tokenizer=d.tokenizer, lowercase=d.lowercase, keep_text=keep)

    texts = read_texts(d.path, d.format, d.field)
    if not texts:
        raise CollapseError(f"data.path: {d.path} holds no documents")
    # Every document's length, for the mis-split check and the pool's size. R, the held-out
    # set and each fresh generation are tokenized on their own below, so that each has its
    # own vocabulary, numbered by first appearance, as before this check existed.
    lengths = corpus_of(texts, False).lengths()
    typical = float(np.median(lengths))
    _check_split(d, "data.path", d.path, "data.format", d.format, lengths, None)
    order = np.random.Generator(np.random.Philox(_core.derive_seed(d.seed, TAG_SHUFFLE))).permutation(len(texts))
    if d.heldout_path is not None:
        heldout = _heldout_file(d, corpus_of, typical)
        rest = order
    else:
        h = d.heldout_documents if d.heldout_documents is not None else max(1, round(d.heldout_fraction * len(texts)))
        if d.heldout_documents is not None and h >= len(texts):
            raise CollapseError(f"data.heldout_documents: {d.path} has {len(texts):,} documents, so at most "
                                f"{len(texts) - 1:,} can be held out, asked for {h:,}")
        heldout = corpus_of([texts[i] for i in order[:h]])
        rest = order[h:]
    n = len(rest) if d.num_documents is None else d.num_documents
    if n > len(rest) or n < 1:
        raise CollapseError(f"data.num_documents: {d.path} has only {len(rest)} documents for training, "
                            f"asked for {n}")
    train_idx, pool_idx = rest[:n], rest[n:]
    real = corpus_of([texts[i] for i in train_idx])
    if "fresh" in cfg.experiment.paradigms:
        k_max = n - synthetic_part(min(cfg.experiment.alphas), n)
        needed = k_max * cfg.experiment.generations
        if needed > len(pool_idx):
            raise CollapseError(f"data.num_documents: fresh needs {needed} unused documents for "
                                f"{cfg.experiment.generations} generations, {d.path} has {len(pool_idx)} left "
                                f"after {n} training documents; lower data.num_documents or generations")
    pool = [texts[i] for i in pool_idx]

    def fresh(t: int, k: int) -> Corpus:
        part = pool[(t - 1) * k:t * k]
        if len(part) < k:
            raise CollapseError("data.num_documents: the pool of fresh real documents ran out")
        return corpus_of(part)

    desc = {"source": "file", "path": d.path, "format": d.format, "tokenizer": d.tokenizer,
            "heldout": d.heldout_path if d.heldout_path is not None else "carved from data.path",
            "pool_documents": len(pool), "pool_tokens": int(lengths[pool_idx].sum())}
    if d.heldout_path is not None:
        desc["heldout_format"] = d.heldout_text_format
    return RealData(real, heldout, Reference.build(real, heldout), fresh, desc)


def _heldout_file(d: DataTable, corpus_of: Callable[[List[str]], Corpus], typical: float) -> Corpus:
    """data.heldout_path read in its format and checked; with data.heldout_documents = N, a
    draw of N of its documents without replacement (seeded by data.seed, kept in file order)."""
    texts = read_texts(d.heldout_path, d.heldout_text_format, d.field)
    if not texts:
        raise CollapseError(f"data.heldout_path: {d.heldout_path} holds no documents")
    heldout = corpus_of(texts)
    _check_split(d, "data.heldout_path", d.heldout_path, "data.heldout_format", d.heldout_text_format,
                 heldout.lengths(), typical)
    n = d.heldout_documents
    if n is None or n == len(texts):
        return heldout
    if n > len(texts):
        raise CollapseError(f"data.heldout_documents: {d.heldout_path} has only {len(texts):,} documents, "
                            f"asked for {n:,}")
    rng = np.random.Generator(np.random.Philox(_core.derive_seed(d.seed, TAG_HELDOUT)))
    chosen = np.sort(rng.choice(len(texts), size=n, replace=False))
    return corpus_of([texts[i] for i in chosen])


def _check_split(d: DataTable, field_name: str, path: str, format_field: str, fmt: str, lengths: np.ndarray,
                 typical: Optional[float]) -> None:
    """Refuse a corpus that is almost surely mis-split (collapse.data.corpus.split_problem;
    typical: the training documents' median, None for the training file itself), naming
    the file and the fix, unless data.accept_split."""
    problem = split_problem(lengths, typical)
    if problem is None or d.accept_split:
        return
    guess = guess_text_format(path) if fmt in TEXT_FORMATS else fmt
    fix = f'set {format_field} = "{guess}"' if guess != fmt else f"check {format_field} (now {fmt!r})"
    raise CollapseError(f"{field_name}: {path} {problem}; it looks mis-split: {fix} "
                        f"(or data.accept_split = true to keep it)")


def summary_line(data: RealData) -> str:
    """One line saying how many documents and tokens each set has (printed before generation 0)."""
    desc = data.describe

    def size(documents: Any, tokens: Any) -> str:
        return f"{documents:,} document{'' if documents == 1 else 's'} / {tokens:,} tokens"

    fresh = (f"fresh real: drawn from the {'code ' if desc['source'] == 'code' else ''}grammar each generation"
             if desc.get("source") in EMBEDDED_SOURCES else
             f"fresh pool {size(desc['pool_documents'], desc['pool_tokens'])}")
    return (f"data: train R {size(desc['train_documents'], desc['train_tokens'])}; "
            f"held-out {size(desc['heldout_documents'], desc['heldout_tokens'])}; {fresh}")
