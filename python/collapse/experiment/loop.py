"""The recursive-training loop: cells, generations, executors, one loop for every model family and paradigm.

For each cell (paradigm, alpha, order, filter keep fraction, seed) and generation t:

    D_t = paradigm(R, S_0 .. S_{t-1})        (D_0 = R, the real corpus)
    M_t = family.fit(D_t)
    S_t = M_t.sample(...)                    (filtered when [filter] says so)
    metrics(M_t, D_t, S_t)                   one row of the metrics table

Randomness comes only from seeds derived from (seed, cell, generation, purpose) with
collapse._core.derive_seed, never from process state, so a run killed at any point and
resumed ends with exactly the results of an uninterrupted run. Generation 0 does not
depend on the paradigm: its seeds come from (seed, order) only, so every paradigm starts
from the same M_0 and S_0.

Run directory (see collapse.experiment.rundir): RUN_DIR/<cell id>/gen_NNNN/ holds S_t (token ids or
gzip text, and its vocabulary) and M_t (output.save_models: the first, every model_every-th and
the last generation), RUN_DIR/<cell id>/state.json the
cell's finished generations and their metric rows; it is replaced (atomically) only after
the generation's files are written, and is the commit point that --resume reads.
RUN_DIR/metrics.csv, metrics.parquet and manifest.json are rebuilt from the cells.
"""

from __future__ import annotations

import gzip
import math
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, ThreadPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence, Union

import numpy as np

from .. import _core
from ..data.corpus import Corpus, Vocab, corpus_from_lines
from ..data.texts import DocumentTexts
from ..errors import CollapseError
from ..files import TEMP_MARK, atomic_path, read_json, write_bytes, write_json, write_text
from ..ngram.family import deterministic_gzip
from .config import (GROWABLE, RESUME_FREE, Cell, ExperimentConfig, ModelTable, load_config, parse_config,
                     resume_conflict, to_toml)
from .family import DeviceUse, FamilyOptions, ModelFamily, RunContext
from .filters import filtered_sample
from .metrics import METRIC_COLUMNS, generation_metrics
from .paradigms import needed_synthetic, synthetic_needed, training_corpus
from .provenance import Session
from .ranks import check_torchrun, claim_device, device_slots, is_main, main_only, plan_workers, torchrun
from .registry import registration
from .report import write_report
from .rundir import TIMING_COLUMNS, RunLock, write_metrics
from . import downstream, tails as tail_stats
from .sources import RealData, load_real_data, summary_line, wants_source_text
from .synthetic_store import STORE_DIR, SyntheticStore
from .trackers import Trackers, check_installed
from .workers import end_with, end_with_owner, owner_token, start_local_ray

if TYPE_CHECKING:  # the metrics table's type only; pandas is imported where a table is built
    import pandas as pd

# Seed purposes (tags for derive_seed).
PURPOSE_SAMPLE, PURPOSE_FIT, PURPOSE_PARADIGM, PURPOSE_CELL = 101, 102, 103, 104
PURPOSE_METRICS = 105  # the self-BLEU subset of S_t

KEY_COLUMNS = ("model", "paradigm", "alpha", "seed", "generation", "family", "order", "filter_keep")
SIZE_COLUMNS = ("train_documents", "train_tokens", "synthetic_documents", "synthetic_tokens")
ROW_TIMING = ("seconds", "fit_seconds", "sample_seconds", "metrics_seconds", "write_seconds")
STATUS_COLUMNS = ("status", "reason")  # "ok", or "ended" on the row of the generation a cell could not make
COLUMNS = KEY_COLUMNS + METRIC_COLUMNS + SIZE_COLUMNS + ("filter_pass_rate",) + ROW_TIMING + STATUS_COLUMNS
STATUS_OK, STATUS_ENDED = "ok", "ended"

SYNTHETIC_ARROW = "synthetic.arrow"  # [output] corpus_format = "arrow" (the default)
ARROW_COLUMN = "tokens"
SYNTHETIC_TEXT = "synthetic.txt.gz"  # corpus_format = "text", and every run written before "arrow" existed
SYNTHETIC_VOCAB = "synthetic.vocab.gz"
# S_t's documents as text (collapse.data.texts.DocumentTexts, Arrow, zstd): only for a
# corpus that keeps its source text (a family that reads text, e.g. the hf family's sample)
SYNTHETIC_SOURCE_TEXT = "synthetic.text.arrow"
STATE_FILE = "state.json"

_DATA_CACHE: Dict[str, RealData] = {}


def real_data(cfg: ExperimentConfig) -> RealData:
    """The run's real data, loaded once per process (the serial driver and every cell share it).
    Keyed by what it depends on: the parsed [data] table, and for file sources the fresh-pool
    check's inputs (paradigms, alphas, generations), and whether a family wants the source text."""
    ex = cfg.experiment
    keep_text = wants_source_text(cfg)
    key = repr((sorted(vars(cfg.data).items()), sorted(ex.paradigms), sorted(ex.alphas), ex.generations, keep_text))
    data = _DATA_CACHE.get(key)
    if data is None:
        _DATA_CACHE.clear()
        data = _DATA_CACHE[key] = load_real_data(cfg, keep_text)
    return data


def model_of(cfg: ExperimentConfig, cell: Cell) -> ModelTable:
    return cfg.model_table(cell.model) if cell.model else cfg.model


def make_family(cfg: ExperimentConfig, cell: Cell) -> ModelFamily:
    """The cell's family, from its model's registration (collapse.experiment.registry)."""
    m = model_of(cfg, cell)
    options = FamilyOptions(order=cell.order, threads=cfg.experiment.threads, compression=cfg.output.compression,
                            progress=cfg.experiment.progress)
    try:
        family = registration(m.family).factory(m.settings, options)
    except CollapseError as e:
        raise CollapseError(f"{m.field_name}: {e}") from None
    if not isinstance(family, ModelFamily):
        raise CollapseError(f"{m.field_name}.family: the {m.family!r} family's factory gave "
                            f"{type(family).__name__}, not a collapse.experiment.family.ModelFamily")
    return family


def cheap_fit(cfg: ExperimentConfig, cell: Cell) -> bool:
    """Whether the cell's family fits M_0 cheaply (Resources.cheap_fit)."""
    return registration(model_of(cfg, cell).family).resources.cheap_fit


def loop_context(cfg: ExperimentConfig, work: Optional[str]) -> RunContext:
    """The context of one fit or sample of the loop: the generation's work folder, the
    experiment's threads, this process's torchrun rank."""
    dist = torchrun()
    rank, world = (dist.ranks().rank, dist.ranks().world_size) if dist is not None else (0, 1)
    return RunContext(work_dir=work, threads=cfg.experiment.threads, rank=rank, world_size=world)


class Generation0:
    """Generation 0 of one (model, order, seed), shared by that model's cells.

    Generation 0 depends only on the model, the real data and the seed (its seeds come from
    Cell.generation0_key, never from the paradigm), so M_0 is trained once and every cell
    of the group reuses it, and so is its sample S_0 for cells that draw the same number
    of documents with the same filter. Resume needs nothing from here: a cell whose
    generation 0 is committed never asks, and one that is not copies a committed one
    (_adopt_generation0) or gets exactly what an uninterrupted run computes, because all
    of it is a function of the key."""

    def __init__(self) -> None:
        self.key: Optional[tuple] = None
        self.model: Any = None
        self.samples: Dict[tuple, Any] = {}

    def _select(self, cell: Cell) -> None:
        if self.key != cell.generation0_key:  # a new group: forget the previous one's model
            self.key, self.model, self.samples = cell.generation0_key, None, {}

    def model_for(self, cell: Cell, fit: Callable[[], Any]) -> Any:
        self._select(cell)
        if self.model is None:
            self.model = fit()
        return self.model

    def sample_for(self, cell: Cell, key: tuple, draw: Callable[[], Any]) -> Any:
        self._select(cell)
        if key not in self.samples:
            self.samples[key] = draw()
        return self.samples[key]


def cell_groups(cfg: ExperimentConfig, cells: Sequence[Cell]) -> List[List[Cell]]:
    """Cells grouped by generation 0 (one group per model, order and seed), the groups of
    families whose fit is not cheap first (Resources.cheap_fit: the transformer's; the
    longest tasks start first when workers run in parallel)."""
    groups: Dict[tuple, List[Cell]] = {}
    for cell in cells:
        groups.setdefault(cell.generation0_key, []).append(cell)
    return sorted(groups.values(), key=lambda g: cheap_fit(cfg, g[0]))


# --------------------------------------------------------------------------------------
# Corpus files: the token ids (Arrow, zstd) or documents one per line (tokens joined by
# spaces, gzip), plus the vocabulary in id order (gzip); deterministic bytes, and reading
# them back gives the very same Corpus.

def corpus_text_bytes(corpus: Corpus, chunk: int = 1 << 20) -> bytes:
    """The corpus as UTF-8 text, one document per line, tokens joined by single spaces.

    Vectorised: every token id is replaced by the bytes of "word " (or "word\\n" for the
    last token of a document; a bare "\\n" for an empty document) gathered from one pool,
    a chunk of tokens at a time, which is many times faster than joining Python strings."""
    words = [w.encode("utf-8") for w in corpus.vocab.words]
    v = len(words)
    pieces = [w + b" " for w in words] + [w + b"\n" for w in words] + [b"\n"]
    lens = np.fromiter((len(p) for p in pieces), dtype=np.int64, count=len(pieces))
    starts = np.zeros(len(pieces), dtype=np.int64)
    np.cumsum(lens[:-1], out=starts[1:])
    pool = np.frombuffer(b"".join(pieces), dtype=np.uint8)
    ids = corpus.tokens.astype(np.int64)
    doc_lens = corpus.lengths()
    ends = corpus.offsets[1:][doc_lens > 0] - 1
    ids[ends] += v
    empty = np.flatnonzero(doc_lens == 0)
    if empty.size:
        ids = np.insert(ids, corpus.offsets[:-1][empty], 2 * v)
    out = []
    for lo in range(0, ids.size, chunk):
        part = ids[lo:lo + chunk]
        plens = lens[part]
        total = int(plens.sum())
        first = np.zeros(part.size, dtype=np.int64)
        np.cumsum(plens[:-1], out=first[1:])
        src = np.repeat(starts[part] - first, plens) + np.arange(total, dtype=np.int64)
        out.append(pool[src].tobytes())
    return b"".join(out)


def save_corpus(directory: str, corpus: Corpus, level: int, corpus_format: str = "arrow") -> None:
    """S_t into ``directory``: its vocabulary (gzip text, one word a line in id order) and
    its documents, as "arrow" (SYNTHETIC_ARROW: the token ids, zstd) or "text"
    (SYNTHETIC_TEXT: gzip, one document a line); level: gzip's or zstd's (0: none). Arrow
    is the default because it costs almost nothing to write or read: no text to build or
    tokenize back, zstd instead of gzip (bench/bench_write.py); text is for other tools.
    A corpus that keeps its source text also gets SYNTHETIC_SOURCE_TEXT (either format);
    one without it is saved as before (and a stale text file is removed)."""
    source_text = os.path.join(directory, SYNTHETIC_SOURCE_TEXT)
    if corpus.source_text is not None:
        corpus.source_text.write(source_text, level)
    elif os.path.exists(source_text):
        os.remove(source_text)
    if corpus_format == "text":
        write_bytes(os.path.join(directory, SYNTHETIC_TEXT), deterministic_gzip(corpus_text_bytes(corpus), level))
    else:
        _write_arrow(os.path.join(directory, SYNTHETIC_ARROW), corpus, level)
    vocab = "".join(w + "\n" for w in corpus.vocab.words[3:])
    write_bytes(os.path.join(directory, SYNTHETIC_VOCAB), deterministic_gzip(vocab.encode("utf-8"), level))


def _write_arrow(path: str, corpus: Corpus, level: int) -> None:
    """One column, one row per document: large_list<uint32> over the corpus's own arrays (no
    copy), in an Arrow IPC file whose buffers are zstd-compressed at ``level`` (deterministic
    bytes). zstd 6 beats gzip 6 on the text in size, at a fifth of the time with the render."""
    import pyarrow as pa

    docs = pa.LargeListArray.from_arrays(pa.array(corpus.offsets, pa.int64()), pa.array(corpus.tokens, pa.uint32()))
    table = pa.table({ARROW_COLUMN: docs})
    codec = pa.Codec("zstd", compression_level=level) if level else None
    options = pa.ipc.IpcWriteOptions(compression=codec, use_threads=False)  # threads: experiment.threads' business
    with atomic_path(path) as tmp:
        with pa.ipc.new_file(tmp, table.schema, options=options) as writer:
            writer.write_table(table)


def _read_arrow(path: str, vocab: Vocab) -> Corpus:
    import pyarrow as pa

    with pa.OSFile(path, "rb") as f:
        table = pa.ipc.open_file(f).read_all()
    if table.schema.names != [ARROW_COLUMN] or table.schema.types[0] != pa.large_list(pa.uint32()):
        raise ValueError(f"not a corpus file (schema {table.schema.types})")
    docs = table.column(ARROW_COLUMN).combine_chunks()
    if docs.null_count:
        raise ValueError("a document is null")
    offsets = np.array(docs.offsets, dtype=np.int64) if len(docs) else np.zeros(1, dtype=np.int64)
    tokens = np.array(docs.flatten(), dtype=np.uint32)
    return Corpus(tokens, offsets - offsets[0], vocab)


def load_corpus_files(directory: str) -> Corpus:
    """The Corpus save_corpus wrote, ids included, from either format (a run written before
    the arrow format has only the text: resuming it reads that). The text is tokenized in the
    C++ core against the saved vocabulary: a 1M-story generation in seconds, where a Python
    loop over its words took minutes; resuming Accumulate-Subsample reads every S_k."""
    with gzip.open(os.path.join(directory, SYNTHETIC_VOCAB), "rt", encoding="utf-8") as f:
        words = f.read().split("\n")[:-1]
    vocab = Vocab(words)
    if len(vocab) != len(words) + 3:
        raise CollapseError(f"{directory}: corrupt vocabulary file")
    arrow = os.path.join(directory, SYNTHETIC_ARROW)
    source_text = os.path.join(directory, SYNTHETIC_SOURCE_TEXT)
    try:
        if os.path.exists(arrow):
            corpus = _read_arrow(arrow, vocab)
        else:
            with gzip.open(os.path.join(directory, SYNTHETIC_TEXT), "rb") as f:
                data = f.read()
            corpus = corpus_from_lines(data, vocab, grow=False)
        if os.path.exists(source_text):
            corpus = corpus.with_source_text(DocumentTexts.read(source_text))
        return corpus
    except ValueError as e:  # bad UTF-8 (the core names byte and line), a damaged Arrow file, ids out of vocabulary
        raise CollapseError(f"{directory}: {e}") from None


def gen_dir(run_dir: str, cell: Cell, t: int) -> str:
    return os.path.join(run_dir, cell.id, f"gen_{t:04d}")


def work_dir(run_dir: str, cell: Cell, t: int) -> str:
    """Generation t's checkpoints while it is in progress (a family's training state and
    finished sample shards); removed once the generation is committed."""
    return os.path.join(run_dir, cell.id, f"work_{t:04d}")



def spread_groups(cfg: ExperimentConfig, groups: List[List[Cell]], workers: int) -> List[List[Cell]]:
    """Groups split so that ``workers`` processes have work: while there are fewer groups
    than workers, the largest group of a family with Resources.cheap_fit (the n-gram's) is
    halved (each half trains generation 0 again, which costs less than an idle core: it is
    deterministic, so the result is the same). Any other group (a transformer's) is never
    split here: its generation 0 is the expensive part (plan_tasks splits it after generation 0)."""
    out = [list(g) for g in groups]
    while len(out) < workers:
        splittable = [g for g in out if len(g) > 1 and cheap_fit(cfg, g[0])]
        if not splittable:
            break
        g = max(splittable, key=len)
        i = out.index(g)
        half = (len(g) + 1) // 2
        out[i:i + 1] = [g[:half], g[half:]]
    return out


@dataclass
class Task:
    """One worker's job: cells run in order sharing generation 0, through a generation (None:
    all); ``then``: the tasks that may start once it has finished, continuing its cells."""
    cells: List[Cell]
    through: Optional[int] = None
    then: List["Task"] = field(default_factory=list)
    resume: bool = False  # continues cells an earlier task of this run started


def plan_tasks(cfg: ExperimentConfig, groups: List[List[Cell]]) -> List[Task]:
    """One task per group, except a group of several cells whose family's fit is not cheap
    (Resources.cheap_fit; a transformer's): one task trains M_0
    once and commits generation 0 of every cell of the group, then each cell's later
    generations are a task of their own, for any idle worker (a cell continues from its
    committed generation 0 exactly as --resume would, so the results are the same)."""
    out = []
    for g in groups:
        if len(g) > 1 and not cheap_fit(cfg, g[0]):
            out.append(Task(list(g), through=0, then=[Task([c], resume=True) for c in g]))
        else:
            out.append(Task(list(g)))
    return out


def task_width(tasks: Sequence[Task]) -> int:
    """The most tasks that can run at once."""
    return sum(max(1, len(t.then)) for t in tasks)


def run_tasks(tasks: Sequence[Task], limit: Optional[int], submit: Callable[[Task], Any],
              wait_any: Callable[[List[Any]], Any], finished: Callable[[Any], None]) -> None:
    """Run tasks and their follow-ups, at most ``limit`` at once (None: every ready one; the
    executor's resources decide), a finished task's follow-ups before tasks not yet started
    (they are a transformer's cells: the long ones). submit starts a task and gives a handle,
    wait_any gives a finished handle, finished(handle) raises the task's error if it failed."""
    ready = list(tasks)
    running: Dict[Any, Task] = {}
    while ready or running:
        while ready and (limit is None or len(running) < limit):
            task = ready.pop(0)
            running[submit(task)] = task
        handle = wait_any(list(running))
        task = running.pop(handle)
        finished(handle)
        ready[:0] = task.then

# --------------------------------------------------------------------------------------

def _nan(x: Optional[float]) -> float:
    return math.nan if x is None else float(x)


def run_cell(cfg: ExperimentConfig, cell: Cell, run_dir: str, resume: bool = False,
             on_generation: Optional[Callable[[], None]] = None,
             generation0: Optional[Generation0] = None, through: Optional[int] = None) -> List[Dict[str, Any]]:
    """Run (or continue) one cell; returns its metric rows, one per generation.
    on_generation is called after each generation's commit (the serial driver rebuilds
    the run's metrics table and manifest there). generation0: shared with the other cells
    of the same model and seed (run_group); without it the cell trains its own. through:
    the last generation to run now (None: experiment.generations)."""
    generation0 = generation0 if generation0 is not None else Generation0()
    data = real_data(cfg)
    state_path = os.path.join(run_dir, cell.id, STATE_FILE)
    rows, ended = main_only(lambda: _open_cell(run_dir, cell, resume))  # rank 0 reads and cleans, all get it
    last = cfg.experiment.generations if through is None else min(through, cfg.experiment.generations)
    if ended or len(rows) > last:
        return rows  # ended (for a reason its seeds would reproduce) or done: no family is built
    if not rows:
        # another cell of the group committed the generation 0 this cell would compute: take it
        rows = main_only(lambda: _adopt_generation0(cfg, run_dir, cell, data, state_path))
        if rows and on_generation is not None and is_main():
            on_generation()
        if len(rows) > last:
            return rows
    family = make_family(cfg, cell)
    # fixes what the family derives from the real corpus (the transformer's BPE) before
    # generation 0, so a resumed run rebuilds the very same thing
    family.prepare(data.real)
    # recursive generations after generation 0: t = 0 .. G; synthetic[k] = S_k when loaded
    # (Accumulate-Subsample: a SyntheticStore's StoredPart, memory-mapped when drawn from)
    synthetic: List[Any] = [None] * (cfg.experiment.generations + 1)
    writer = ThreadPoolExecutor(max_workers=1)
    try:
        _generations(cfg, cell, run_dir, data, family, rows, synthetic, writer, state_path, on_generation,
                     generation0, through)
    finally:
        writer.shutdown(wait=True)
    return rows


def _open_cell(run_dir: str, cell: Cell, resume: bool) -> "tuple[List[Dict[str, Any]], bool]":
    """The cell's committed rows and whether it has ended; removes what a killed run left
    behind the last commit."""
    cell_dir = os.path.join(run_dir, cell.id)
    state_path = os.path.join(cell_dir, STATE_FILE)
    rows: List[Dict[str, Any]] = []
    if os.path.exists(state_path):
        if not resume:
            raise CollapseError(f"{cell_dir} already holds results; pass --resume to continue")
        state = read_json(state_path)
        rows = state["rows"]
        if state.get("status") == STATUS_ENDED and not state.get("retry"):
            return rows, True  # a cell that ended for a reason its seeds reproduce stays ended
    os.makedirs(cell_dir, exist_ok=True)
    # A killed run may have left a half-written generation (and temporary files) behind
    # the last committed one: remove it, it is redone from its seeds. The work folders of
    # generations not yet committed stay: they hold checkpoints that the redo continues from.
    for name in sorted(os.listdir(cell_dir)):
        path = os.path.join(cell_dir, name)
        if name.startswith("gen_") and name[4:].isdigit() and int(name[4:]) >= len(rows):
            shutil.rmtree(path)
        elif name.startswith("work_") and name[5:].isdigit() and int(name[5:]) < len(rows):
            shutil.rmtree(path)
        elif TEMP_MARK in name:
            os.remove(path)
    return rows, False


def _committed_generation0(cfg: ExperimentConfig, run_dir: str, cell: Cell) -> "List[tuple[Cell, Dict[str, Any]]]":
    """The cells of ``cell``'s generation-0 group (itself first) whose generation 0 is
    committed, with that generation's row: their gen_0000 holds M_0 (when models are saved)
    and an S_0 that any cell drawing the same number of documents with the same filter
    would draw (Cell.generation0_key)."""
    out = []
    for other in [cell] + [c for c in cfg.cells() if c != cell and c.generation0_key == cell.generation0_key]:
        path = os.path.join(run_dir, other.id, STATE_FILE)
        if os.path.exists(path):
            rows = read_json(path)["rows"]
            if rows:
                out.append((other, rows[0]))
    return out


def _adopt_generation0(cfg: ExperimentConfig, run_dir: str, cell: Cell, data: RealData,
                       state_path: str) -> List[Dict[str, Any]]:
    """Commit as this cell's generation 0 a copy of another cell's committed one when it is
    what this cell would compute (same M_0, same number of documents, same filter): its
    files byte for byte and its row with this cell's keys. Returns the cell's rows ([] when
    no such cell). A study grown on --resume so reuses its generation 0, and the cells of a
    group run after it (in any process) reuse the first one's."""
    start = time.perf_counter()
    n_synth = synthetic_needed(cell.paradigm, cell.alpha, data.real.num_documents, cfg.experiment.synthetic_factor)
    for other, row0 in _committed_generation0(cfg, run_dir, cell):
        if other == cell or other.keep != cell.keep or n_synth != synthetic_needed(
                other.paradigm, other.alpha, data.real.num_documents, cfg.experiment.synthetic_factor):
            continue
        source, target = gen_dir(run_dir, other, 0), gen_dir(run_dir, cell, 0)
        for folder, _, names in os.walk(source):
            into = os.path.join(target, os.path.relpath(folder, source))
            os.makedirs(into, exist_ok=True)
            for name in sorted(n for n in names if TEMP_MARK not in n):
                with atomic_path(os.path.join(into, name)) as tmp:
                    shutil.copyfile(os.path.join(folder, name), tmp)
        if os.path.exists(os.path.join(target, tail_stats.PRESENT_FILE)):
            tail_stats.write_extinction(os.path.join(run_dir, cell.id), [target],
                                        tail_stats.TailReference.build(data.real), data.real.vocab.words)
        row = dict(row0)
        row.update({"model": model_of(cfg, cell).name, "paradigm": cell.paradigm, "alpha": _nan(cell.alpha),
                    "seed": cell.seed, "generation": 0, "order": _nan(cell.order), "filter_keep": _nan(cell.keep)})
        seconds = time.perf_counter() - start  # this run's work for it: a copy
        row.update({"seconds": seconds, "fit_seconds": 0.0, "sample_seconds": 0.0, "metrics_seconds": 0.0,
                    "write_seconds": seconds})
        write_json(state_path, {"cell": cell.id, "generations_done": 1, "rows": [row], "status": STATUS_OK})
        if cfg.experiment.progress:
            sys.stderr.write(f"[{cell.id}] gen   0/{cfg.experiment.generations}  the same as {other.id}'s (copied)\n")
            sys.stderr.flush()
        return [row]
    return []


def _commit_generation(cfg: ExperimentConfig, run_dir: str, cell: Cell, t: int, synth: Corpus, model: Any,
                       rows: List[Dict[str, Any]], state_path: str, on_generation: Optional[Callable[[], None]],
                       progress: bool, tail: Any = None, continues_previous: bool = False) -> None:
    """Write generation t's artifacts, then commit it (state.json), then the run files.
    tail: (TailReference, R's vocabulary, S_t's bucket columns, S_t's presence): collapse.experiment.tails."""
    w0 = time.perf_counter()
    gdir = gen_dir(run_dir, cell, t)
    os.makedirs(gdir, exist_ok=True)
    save_corpus(gdir, synth, cfg.output.compression, cfg.output.corpus_format)
    if tail is not None:  # the bucket rows and presence go with the generation; the cell's table follows them
        tail_ref, real_vocab, columns, present = tail
        tail_stats.write_generation(gdir, columns, present)
        gdirs = [gen_dir(run_dir, cell, k) for k in range(t + 1)]
        tail_stats.write_extinction(os.path.join(run_dir, cell.id), gdirs, tail_ref, real_vocab.words)
    # the first, every k-th, the last; every one for a family whose next generation continues
    # this model (a resumed cell loads it from here)
    if cfg.output.keeps_model(t, cfg.experiment.generations) or continues_previous:
        model.save(gdir)
    row = rows[-1]
    row["write_seconds"] = time.perf_counter() - w0
    write_json(state_path, {"cell": cell.id, "generations_done": len(rows), "rows": rows, "status": STATUS_OK})
    shutil.rmtree(work_dir(run_dir, cell, t), ignore_errors=True)  # its checkpoints are no longer needed
    if on_generation is not None:
        on_generation()
    if progress:
        sys.stderr.write(progress_line(cell, t, cfg.experiment.generations, row))
        sys.stderr.flush()


# (label, column, format) of the progress line; a NaN value (kl_truth for file data) is left out
PROGRESS_FIELDS = (("bits/word", "heldout_bits_per_word", ".4f"), ("kl_truth", "kl_truth", ".3f"),
                   ("heldout_ppl", "heldout_ppl", ".3f"), ("ref_ppl", "ref_ppl", ".3f"),
                   ("self_bleu4", "self_bleu4", ".3f"), ("vocab", "vocab_size", "d"),
                   ("mean_length", "mean_length", ".1f"), ("truncated", "truncated_fraction", ".1%"))


def progress_line(cell: Cell, t: int, generations: int, row: Dict[str, Any]) -> str:
    """One generation's line on stderr: its headline metrics (those with a value) and timing."""
    parts = [f"{label}={row[col]:{fmt}}" for label, col, fmt in PROGRESS_FIELDS
             if row.get(col) is not None and row[col] == row[col]]
    return (f"[{cell.id}] gen {t:3d}/{generations}  " + "  ".join(parts)
            + f"  ({row['seconds']:.2f}s + {row['write_seconds']:.2f}s writing)\n")


def run_group(cfg: ExperimentConfig, cells: Sequence[Cell], run_dir: str, resume: bool = False,
              on_generation: Optional[Callable[[], None]] = None,
              through: Optional[int] = None) -> Dict[str, List[Dict[str, Any]]]:
    """Run the cells of one generation-0 group (cell_groups) in order, sharing generation 0
    (through: the last generation each runs now; None: all)."""
    generation0 = Generation0()
    return {cell.id: run_cell(cfg, cell, run_dir, resume, on_generation, generation0, through) for cell in cells}


def _generations(cfg: ExperimentConfig, cell: Cell, run_dir: str, data: RealData, family: Any,
                 rows: List[Dict[str, Any]], synthetic: List[Any], writer: ThreadPoolExecutor,
                 state_path: str, on_generation: Optional[Callable[[], None]], generation0: Generation0,
                 through: Optional[int] = None) -> List[Dict[str, Any]]:
    G = cfg.experiment.generations
    real = data.real
    n_synth = synthetic_needed(cell.paradigm, cell.alpha, real.num_documents, cfg.experiment.synthetic_factor)
    gen0_key = _core.derive_seed(cell.seed, cell.order or 0)
    cell_key = _core.derive_seed(_core.derive_seed(cell.seed, PURPOSE_CELL), cell.tag)
    filtering = cfg.filter.method != "none" or cfg.filter.dedup
    reference_model = None
    tail_ref = tail_stats.TailReference.build(real)
    if rows and is_main():  # a run from before the tail files, resumed: its committed generations get them once
        tail_stats.backfill([gen_dir(run_dir, cell, k) for k in range(len(rows))], tail_ref, real.vocab,
                            load_corpus_files)
    progress = cfg.experiment.progress
    pending = None
    # Accumulate with a family that keeps the pool (ModelFamily.pools_accumulate: the n-gram
    # family's merged counts): it takes in each S_k once, so the loop holds only the newest
    # S_k, and a resumed cell hands it every part again from disk.
    pooled = cell.paradigm == "accumulate" and family.pools_accumulate

    # Accumulate-Subsample's pool R + S_0 + ... grows a generation at a time: its S_k wait
    # on disk, memory-mapped only while drawn from (synthetic_store), so memory stays bounded.
    store = (SyntheticStore(os.path.join(run_dir, cell.id, STORE_DIR))
             if cell.paradigm == "accumulate-subsample" else None)

    def load_synthetic(k: int) -> Any:
        def saved() -> Corpus:
            return load_corpus_files(gen_dir(run_dir, cell, k))
        return store.part(k, saved) if store is not None else saved()

    def needed(u: int) -> List[int]:
        return ([u - 1] if u else []) if pooled else needed_synthetic(cell.paradigm, u)

    def pool_part(k: int) -> Corpus:  # R, then S_0, S_1, ...
        if k == 0:
            return real
        return synthetic[k - 1] if synthetic[k - 1] is not None else load_corpus_files(gen_dir(run_dir, cell, k - 1))

    previous_model = None  # M_{t-1}, for a family that continues_previous
    for t in range(len(rows), (G if through is None else min(G, through)) + 1):
        try:
            start = time.perf_counter()
            for k in needed(t):
                if synthetic[k] is None:
                    synthetic[k] = load_synthetic(k)
            key_t = gen0_key if t == 0 else _core.derive_seed(cell_key, t)
            para_key = _core.derive_seed(key_t, PURPOSE_PARADIGM)
            fit_seed = _core.derive_seed(key_t, PURPOSE_FIT)

            # checkpoints inside the generation (the transformer's) go to this cell's work
            # folder for t: part of the context of each fit and sample, never family state,
            # because M_0 is fitted in one cell and sampled by every cell of its group
            work = work_dir(run_dir, cell, t)
            context = loop_context(cfg, work)

            def fit_generation0() -> Any:
                if family.loads_exactly:  # M_0 saved by a committed generation 0
                    folders = main_only(lambda: [gen_dir(run_dir, c, 0) for c, _ in
                                                 _committed_generation0(cfg, run_dir, cell)])
                    for folder in folders:
                        try:
                            return family.load(folder)
                        except CollapseError:  # that generation kept no model (output.save_models)
                            pass
                return family.fit(real, seed=_core.derive_seed(gen0_key, PURPOSE_FIT), context=context)

            if t == 0:
                # M_0 is trained on R once per (model, order, seed) and shared by the group's
                # cells (a pooled family adds R to its pool at generation 1: fit_accumulated)
                train = real
                t0 = time.perf_counter()
                model = generation0.model_for(cell, fit_generation0)
            elif pooled:
                t0 = time.perf_counter()
                model, train = family.fit_accumulated(t + 1, pool_part, seed=fit_seed, context=context)
            else:
                train = training_corpus(cell.paradigm, cell.alpha, t, real, synthetic,
                                        lambda purpose: _core.derive_seed(para_key, purpose), data.fresh)
                t0 = time.perf_counter()
                if family.continues_previous:  # M_{t-1} goes on training (kept saved for a resume)
                    if previous_model is None:
                        previous_model = family.load(gen_dir(run_dir, cell, t - 1))
                    model = family.fit(train, seed=fit_seed, context=context, previous=previous_model)
                else:
                    model = family.fit(train, seed=fit_seed, context=context)
            t1 = time.perf_counter()
            sample_seed = _core.derive_seed(key_t, PURPOSE_SAMPLE)
            extra: Dict[str, float] = {"filter_pass_rate": math.nan}
            if reference_model is None:
                # M_0 (the filter's reference and ref_ppl's scorer): deterministic, so the
                # same on resume (loaded or refitted) as in an unbroken run
                reference_model = generation0.model_for(cell, fit_generation0)
            if filtering:
                def draw() -> Any:
                    return filtered_sample(model, reference_model, n_synth, sample_seed, cfg.filter, cell.keep,
                                           context=context)
            else:
                def draw() -> Any:
                    return model.sample(n_synth, seed=sample_seed, context=context), None
            synth, info = (generation0.sample_for(cell, (n_synth, cell.keep), draw) if t == 0 else draw())
            model.end_sampling()
            if info is not None:
                extra["filter_pass_rate"] = info["filter_pass_rate"]
            t2 = time.perf_counter()
            metrics = generation_metrics(model, train, synth, data.reference, cfg.experiment.threads,
                                         reference_model=reference_model,
                                         seed=_core.derive_seed(key_t, PURPOSE_METRICS))
            tail = (tail_ref, real.vocab, *tail_stats.generation_tails(synth, real.vocab, tail_ref))
            t3 = time.perf_counter()
            table = model_of(cfg, cell)
            ds_seconds = downstream.run_stage(cfg, table, cell, t, model, train, work, gen_dir(run_dir, cell, t),
                                              registration(table.family).downstream) if is_main() else math.nan
            if is_main():
                _warn_truncated(cell, t, model, metrics.get("truncated_fraction", math.nan))
            synthetic[t] = store.put(t, synth) if store is not None and t < G else synth
            # free what later generations do not read
            for k in range(t):
                if synthetic[k] is not None and k not in needed(t + 1):
                    synthetic[k] = None
            row: Dict[str, Any] = {
                "model": model_of(cfg, cell).name, "paradigm": cell.paradigm, "alpha": _nan(cell.alpha),
                "seed": cell.seed, "generation": t,
                "family": family.name, "order": _nan(cell.order), "filter_keep": _nan(cell.keep),
            }
            row.update(metrics)
            row.update({"train_documents": train.num_documents, "train_tokens": train.num_tokens,
                        "synthetic_documents": synth.num_documents, "synthetic_tokens": synth.num_tokens})
            row.update(extra)
            row.update({"seconds": time.perf_counter() - start, "fit_seconds": t1 - t0, "sample_seconds": t2 - t1,
                        "metrics_seconds": t3 - t2})
            if not math.isnan(ds_seconds):
                row["downstream_seconds"] = ds_seconds
        except Exception as e:
            # A ValueError (CollapseError or the core's): the data cannot go on (filter starved,
            # ...), a function of the seeds. Anything else (OSError, RuntimeError, MemoryError,
            # CUDA out of memory) ends this cell too, and --resume retries it. KeyboardInterrupt
            # and SystemExit are not Exceptions: they stop the run. Under torchrun an unexpected
            # error on one rank cannot end the cell on the others: it stops the run.
            if not isinstance(e, ValueError) and torchrun() is not None:
                raise
            if pending is not None:
                pending.result()
            if is_main():
                _end_cell(cell, t, rows, state_path, e, on_generation)
                if store is not None and isinstance(e, ValueError):  # ended for good: no generation reads it
                    shutil.rmtree(store.directory, ignore_errors=True)
            return rows
        rows.append(row)
        if family.continues_previous:
            previous_model = model
        # Generation t's files are written (and then committed) by a background thread while
        # generation t+1 computes; it runs one commit at a time, in generation order.
        if pending is not None:
            pending.result()
        if is_main():  # under torchrun rank 0 alone writes the run directory
            pending = writer.submit(_commit_generation, cfg, run_dir, cell, t, synth, model, list(rows), state_path,
                                    on_generation, progress, tail, family.continues_previous)
    if pending is not None:
        pending.result()
    if store is not None and len(rows) > G and is_main():  # the cell is done: nothing reads its pool again
        shutil.rmtree(store.directory, ignore_errors=True)
    return rows


TRUNCATED_WARN = 0.05  # warn when more of a sample's documents than this hit the length limit


def _warn_truncated(cell: Cell, t: int, model: Any, fraction: float) -> None:
    """One stderr line when S_t has many documents cut at the sampler's length limit: their
    lengths (and every length metric) then measure the limit, not the model."""
    if fraction > TRUNCATED_WARN:
        limit = model.length_limit()
        sys.stderr.write(f"[{cell.id}] warning: gen {t}: {fraction:.1%} of the sample's documents hit {limit}; "
                         "raise it\n")
        sys.stderr.flush()


def _end_cell(cell: Cell, t: int, rows: List[Dict[str, Any]], state_path: str, error: Exception,
              on_generation: Optional[Callable[[], None]]) -> None:
    """Commit that the cell ended before generation t, and why; the rest of the study goes on.
    An error outside the ValueError family is not a function of the seeds: its reason names
    its type, state.json keeps its traceback, and --resume retries the cell (``retry``)."""
    lines = str(error).strip().splitlines()
    reason = lines[0] if lines else type(error).__name__
    state = {"cell": cell.id, "generations_done": len(rows), "rows": rows, "status": STATUS_ENDED,
             "ended_at": t, "reason": reason}
    if not isinstance(error, ValueError):
        state["reason"] = reason = f"{type(error).__name__}: {reason}" if lines else reason
        state.update(retry=True, traceback=traceback.format_exception(error))
    write_json(state_path, state)
    sys.stderr.write(f"[{cell.id}] ended early at generation {t}: {reason}\n")
    sys.stderr.flush()
    if on_generation is not None:
        on_generation()


def _run_group_task(cfg_raw: Dict[str, Any], base_dir: str, cells: List[Cell], run_dir: str, resume: bool,
                    owner: Optional[str] = None, through: Optional[int] = None) -> Dict[str, List[Dict[str, Any]]]:
    """Process-pool / Ray entry point: one Task (cells of a generation-0 group, through a
    generation; the config travels as its raw mapping). owner: the driver this worker must
    not outlive (workers.owner_token; local workers: the pool's initializer does it)."""
    if owner is not None:
        end_with_owner(owner)
    cfg = parse_config(cfg_raw, base_dir=base_dir)
    return run_group(cfg, cells, run_dir, resume, through=through)


# --------------------------------------------------------------------------------------

def metrics_frame(rows: Sequence[Dict[str, Any]]) -> "pd.DataFrame":
    import pandas as pd

    df = pd.DataFrame(list(rows))
    for c in COLUMNS:
        if c not in df.columns:
            df[c] = math.nan
    extra = [c for c in df.columns if c not in COLUMNS]
    df = df[list(COLUMNS) + extra]
    for c in ("seed", "generation", "vocab_size", "types_lost", "train_vocab_size") + SIZE_COLUMNS:
        if len(df):
            # nullable only where a cell's "ended" row has no value
            df[c] = df[c].astype("int64" if df[c].notna().all() else "Int64")
    if len(df):
        df["status"] = df["status"].where(df["status"].notna(), STATUS_OK).astype(object)
        df["reason"] = df["reason"].astype(object).where(df["reason"].notna(), None)
    return df


def ended_row(cell: Cell, model: ModelTable, t: int, reason: str) -> Dict[str, Any]:
    """The metrics-table row of the generation a cell could not make: keys, status, reason."""
    return {"model": model.name, "paradigm": cell.paradigm, "alpha": _nan(cell.alpha), "seed": cell.seed,
            "generation": t, "family": model.family, "order": _nan(cell.order), "filter_keep": _nan(cell.keep),
            "status": STATUS_ENDED, "reason": reason}


def _write_run(cfg: ExperimentConfig, run_dir: str, cells: List[Cell], data: RealData,
               family_desc: List[Dict[str, Any]], session: Optional[Session] = None) -> Any:
    rows: List[Dict[str, Any]] = []
    cell_info = []
    tail_cells = []  # (the cell's keys, its committed generation folders): tails.parquet
    for cell in cells:
        path = os.path.join(run_dir, cell.id, STATE_FILE)
        done, st = 0, {}
        if os.path.exists(path):
            st = read_json(path)
            rows.extend(st["rows"])
            done = st["generations_done"]
            if st["rows"]:
                tail_cells.append((st["rows"][0], [gen_dir(run_dir, cell, t) for t in range(done)]))
        info = {"id": cell.id, "model": model_of(cfg, cell).name, "paradigm": cell.paradigm, "alpha": cell.alpha, "order": cell.order,
                "filter_keep": cell.keep, "seed": cell.seed, "generations_done": done,
                "status": st.get("status", STATUS_OK)}
        if info["status"] == STATUS_ENDED:
            info.update(ended_at=st["ended_at"], reason=st["reason"])
            rows.append(ended_row(cell, model_of(cfg, cell), st["ended_at"], st["reason"]))
        cell_info.append(info)
    df = metrics_frame(rows)
    write_metrics(run_dir, df)
    tail_stats.write_run_tails(run_dir, tail_stats.run_tails(tail_cells))
    downstream.write_run_table(run_dir, tail_cells)
    manifest = {
        "kind": "experiment", "name": cfg.experiment.name, "generations": cfg.experiment.generations,
        "complete": all(c["generations_done"] == cfg.experiment.generations + 1 or c["status"] == STATUS_ENDED
                        for c in cell_info),
        "cells_ended_early": sum(c["status"] == STATUS_ENDED for c in cell_info),
        "cells": cell_info, "data": data.describe, "family": family_desc[0], "models": family_desc,
        "timing_columns": list(TIMING_COLUMNS), "columns": list(df.columns),
    }
    if session is not None:
        manifest["provenance"] = session.snapshot()
    write_json(os.path.join(run_dir, "manifest.json"), manifest)
    return df


def run_experiment(config: Union[str, os.PathLike, Dict[str, Any], ExperimentConfig], out: Optional[str] = None,
                   resume: bool = False) -> "pd.DataFrame":
    """Run the experiment a config describes; returns the metrics as a pandas DataFrame.

    config: a TOML path, a dict (as TOML would give) or an ExperimentConfig. out: the run
    directory (default: [output] dir; without either, a temporary directory that is
    removed afterwards). resume: continue the run already in ``out``; its config may differ
    only in experiment.threads / workers / executor / address / progress and in a larger
    generations (which extends the run: the result equals a run that had them from the start).
    """
    cfg = load_config(config)
    run_dir = out or cfg.output.dir
    if run_dir is None:
        with tempfile.TemporaryDirectory(prefix="collapse-run-") as tmp:
            return _run(cfg, tmp, resume)
    return _run(cfg, os.fspath(run_dir), resume)


def _run(cfg: ExperimentConfig, run_dir: str, resume: bool) -> "pd.DataFrame":
    cells = cfg.cells()
    check_installed(cfg.output.trackers)  # before anything is written
    ex = cfg.experiment
    # raises for what cannot run there: the first model whose family's ranks cannot train together
    refused = [m.family for m in cfg.models if not registration(m.family).resources.torchrun]
    note = check_torchrun(refused[0] if refused else cfg.model.family, ex.executor, ex.workers)
    if note and is_main():
        sys.stderr.write(note + "\n")
    config_text = to_toml(cfg)
    config_path = os.path.join(run_dir, "config.toml")
    main_only(lambda: _check_run_dir(cfg, run_dir, resume, config_path))
    # before anything is written: a data error leaves no run directory. Under torchrun rank 0
    # loads first (an error stops every rank), then the others load the same files (the
    # RealData holds functions and cannot travel; every rank needs the corpora anyway)
    main_only(lambda: real_data(cfg) is None or downstream.check_tasks(cfg))
    data = real_data(cfg)
    if ex.progress and is_main():  # the sizes of train R, held-out and fresh sets, before generation 0
        sys.stderr.write(summary_line(data) + "\n")
    lock = RunLock(run_dir)  # no other live process works here (a killed run's lock is stale)

    def take_lock() -> None:
        os.makedirs(run_dir, exist_ok=True)
        lock.acquire()

    main_only(take_lock)  # under torchrun rank 0 holds it for all ranks
    try:
        return _run_locked(cfg, cells, run_dir, resume, data, config_path, config_text)
    finally:
        lock.release()  # a no-op where it was not taken


def _check_run_dir(cfg: ExperimentConfig, run_dir: str, resume: bool, config_path: str) -> None:
    if resume and not os.path.exists(config_path):  # a run writes config.toml before anything else
        raise CollapseError(f"--resume: {run_dir} holds no run to resume; run without --resume to start one")
    if os.path.exists(os.path.join(run_dir, "manifest.json")) or os.path.exists(config_path):
        if not resume:
            raise CollapseError(f"{run_dir} already holds a run; pass --resume to continue it or choose another --out")
        with open(config_path, encoding="utf-8") as f:
            conflict = resume_conflict(f.read(), cfg)
        if conflict is not None:
            raise CollapseError(f"--resume: the config differs from {config_path} in what determines results "
                                f"({conflict}); only experiment.{', '.join(RESUME_FREE)} may change, and "
                                f"generations, {', '.join(k.split('.')[1] for k in GROWABLE)}, models and "
                                "orders may grow")


def _run_locked(cfg: ExperimentConfig, cells: List[Cell], run_dir: str, resume: bool, data: RealData,
                config_path: str, config_text: str) -> "pd.DataFrame":
    family_desc = model_descriptions(cfg)
    manifest_path = os.path.join(run_dir, "manifest.json")
    # the versions, machine and times of this session; a resumed run keeps the earlier ones
    session = Session.resuming(read_json(manifest_path) if resume and os.path.exists(manifest_path) else None)

    def open_run_dir() -> None:
        # a killed run can leave temporary files of its run-level writes (metrics, manifest)
        for name in os.listdir(run_dir):
            if TEMP_MARK in name and os.path.isfile(os.path.join(run_dir, name)):
                os.remove(os.path.join(run_dir, name))
        write_text(config_path, config_text)
        _write_run(cfg, run_dir, cells, data, family_desc, session)

    main_only(open_run_dir)
    ex = cfg.experiment
    groups = cell_groups(cfg, cells)
    if torchrun() is None:
        groups = spread_groups(cfg, groups, min(ex.workers, len(cells)))
    tasks = plan_tasks(cfg, groups)
    workers, slots = _local_workers(cfg, task_width(tasks))
    trackers = Trackers(cfg, run_dir, cells, STATE_FILE, KEY_COLUMNS, enabled=is_main())

    def rebuild() -> None:  # after every commit: the run files, then the trackers (the driver alone logs)
        _write_run(cfg, run_dir, cells, data, family_desc, session)
        trackers.log()

    watch = CommitWatch(run_dir, cells, rebuild)
    try:
        if ex.executor == "ray" and torchrun() is None:
            _run_ray(cfg, tasks, run_dir, resume, watch)
        elif workers == 1:
            for group in groups:
                run_group(cfg, group, run_dir, resume, on_generation=rebuild)
        else:
            _run_pool(cfg, tasks, run_dir, resume, workers, slots, watch)
    except BaseException:
        # interrupted (Ctrl-C, SIGTERM) or failed: the workers are gone, so the run files can
        # say exactly what the cells committed
        if is_main():
            try:
                _write_run(cfg, run_dir, cells, data, family_desc, session)
            except Exception:  # noqa: BLE001 - the original error is the one to report
                pass
            try:
                trackers.close(interrupted=True)
            except Exception:  # noqa: BLE001 - as above
                pass
        raise

    def finish() -> Any:
        session.finish()
        df = _write_run(cfg, run_dir, cells, data, family_desc, session)
        write_run_figure(run_dir)
        write_report(run_dir)
        return df

    result = main_only(finish)
    trackers.close(figure=os.path.join(run_dir, "metrics.png"))
    return result


WATCH_SECONDS = 0.5  # how often the driver looks for commits of its workers


class CommitWatch:
    """The driver's view of its workers' commits: ``poll()`` rebuilds the run's metrics
    table and manifest when a cell's state.json has been replaced since the last look.

    Workers only commit (state.json, atomically); the driver alone writes the run-level
    files, so there is one writer and nothing to lock, and it works alike for the process
    pool and for Ray (whose workers share the run directory)."""

    def __init__(self, run_dir: str, cells: Sequence[Cell], rebuild: Callable[[], Any]) -> None:
        self.paths = [os.path.join(run_dir, cell.id, STATE_FILE) for cell in cells]
        self.rebuild = rebuild
        self.seen = self._signature()

    def _signature(self) -> List[Optional[tuple]]:
        out: List[Optional[tuple]] = []
        for path in self.paths:
            try:
                st = os.stat(path)
            except FileNotFoundError:
                out.append(None)
            else:  # each commit is a rename: a new inode
                out.append((st.st_ino, st.st_mtime_ns, st.st_size))
        return out

    def poll(self) -> None:
        now = self._signature()  # taken before the rebuild: a commit during it is seen next time
        if now != self.seen:
            self.seen = now
            self.rebuild()


def _run_pool(cfg: ExperimentConfig, tasks: List[Task], run_dir: str, resume: bool, workers: int,
              slots: List[Optional[str]], watch: CommitWatch) -> None:
    """The tasks on a local process pool; the run files follow every commit (watch). On an
    interrupt or error the workers are ended at once (they ignore SIGINT: the driver decides),
    so nothing writes in the run directory after this returns."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    for slot in slots:
        queue.put(slot)
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker,
                               initargs=(os.getpid(), queue))
    try:
        def wait_any(futs: List[Any]) -> Any:
            while True:  # the run files follow every commit while the tasks run
                done, _ = wait(futs, timeout=WATCH_SECONDS, return_when=FIRST_COMPLETED)
                watch.poll()
                if done:
                    return next(iter(done))

        # at most one task per worker: a follow-up then starts on the next free worker,
        # ahead of tasks queued before it (and on CUDA each worker holds one GPU)
        run_tasks(tasks, workers,
                  lambda task: pool.submit(_run_group_task, cfg.raw, cfg.base_dir, task.cells, run_dir,
                                           resume or task.resume, None, task.through),
                  wait_any, lambda fut: fut.result())
    except BrokenProcessPool as e:
        _stop_pool(pool)
        raise CollapseError(
            "a worker process died (killed, out of memory, or it could not start): a script that calls "
            "run_experiment with experiment.workers > 1 must keep its top-level code under "
            "`if __name__ == \"__main__\":` (each worker starts by importing it), or set experiment.workers = 1; "
            "--resume continues from the last committed generation") from e
    except BaseException:
        _stop_pool(pool)
        raise
    finally:
        pool.shutdown(wait=True)
        queue.close()
        queue.join_thread()


def _stop_pool(pool: ProcessPoolExecutor) -> None:
    """End the pool's workers now (SIGTERM) and wait for them: a killed worker leaves at
    most a half-written generation, which --resume removes and redoes."""
    procs = list((getattr(pool, "_processes", None) or {}).values())  # no public handle before 3.14
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in procs:
        proc.terminate()
    for proc in procs:
        proc.join()


def _init_worker(parent: int, slots: Any) -> None:
    """A local worker ends with its run and, for transformer cells on CUDA, owns one GPU.
    It ignores SIGINT (a terminal's Ctrl-C reaches the whole process group): the driver
    ends its workers itself, without a traceback from each."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    end_with(parent)
    claim_device(slots)


def device_use(cfg: ExperimentConfig) -> Optional[DeviceUse]:
    """Where the first model whose family runs on devices (Resources.device: the
    transformer's) runs, or None: every family of the study runs on the CPU alone."""
    for m in cfg.models:
        device = registration(m.family).resources.device
        if device is not None:
            return device(m.settings)
    return None


def _local_workers(cfg: ExperimentConfig, n_tasks: int) -> "tuple[int, List[Optional[str]]]":
    """Worker processes for the local executor (each runs Tasks, one at a time) and each
    one's CUDA_VISIBLE_DEVICES: under torchrun one (the ranks run the cells together); with
    transformer models on CUDA at most one per GPU unless [model] share_device = true
    (collapse.experiment.ranks)."""
    workers = min(cfg.experiment.workers, n_tasks)
    if torchrun() is not None or workers <= 1:
        return 1, [None]
    use = device_use(cfg)
    if use is None or cfg.experiment.executor == "ray":
        return workers, [None] * workers
    uses_cuda, gpus, device, share = use
    workers, warning = plan_workers(workers, n_tasks, uses_cuda, gpus, device, share)
    if warning:
        sys.stderr.write(warning + "\n")
    return workers, device_slots(workers, gpus, device) if uses_cuda else [None] * workers


def model_descriptions(cfg: ExperimentConfig) -> List[Dict[str, Any]]:
    """Each model's settings for the manifest (name first)."""
    return [{"name": m.name, "family": m.family, **registration(m.family).describe(m.settings)} for m in cfg.models]


def write_run_figure(run_dir: str) -> None:
    """The run's figures, PNG and SVG: metrics.png (collapse.plot: one panel per headline metric) and
    tails.png (collapse.experiment.tails)."""
    from .plot import plot_runs

    plot_runs([run_dir], os.path.join(run_dir, "metrics.png"))
    tail_stats.write_tail_figure(run_dir)  # tails.png / .svg beside it
    downstream.write_figure(run_dir)  # downstream.png / .svg when [downstream] is set


def _run_ray(cfg: ExperimentConfig, tasks: List[Task], run_dir: str, resume: bool, watch: CommitWatch) -> None:
    try:
        import ray
    except ImportError:
        raise CollapseError("experiment.executor: 'ray' needs Ray (pip install collapse[ray])") from None
    if not ray.is_initialized():
        on_sigterm = signal.getsignal(signal.SIGTERM)
        if cfg.experiment.address:
            ray.init(address=cfg.experiment.address)
        else:
            start_local_ray(cfg.experiment.workers)
        if on_sigterm is not None and threading.current_thread() is threading.main_thread():
            # Ray's core installs a SIGTERM handler that aborts the driver: keep ours (the
            # CLI's ends the run as Ctrl-C does)
            signal.signal(signal.SIGTERM, on_sigterm)
    gpus = 0.0
    use = device_use(cfg)
    if use is not None:
        uses_cuda, _, _, share = use
        # Ray gives each task its own GPU (CUDA_VISIBLE_DEVICES) when it asks for a whole one
        gpus = (0.5 if share else 1.0) if uses_cuda else 0.0
    task = ray.remote(num_cpus=1, num_gpus=gpus)(_run_group_task)
    owner = owner_token()
    run_dir = os.path.abspath(run_dir)
    submitted: List[Any] = []

    def submit(t: Task) -> Any:
        submitted.append(task.remote(cfg.raw, cfg.base_dir, t.cells, run_dir, resume or t.resume, owner, t.through))
        return submitted[-1]

    def wait_any(refs: List[Any]) -> Any:
        while True:  # the run files follow every commit while the tasks run
            done, _ = ray.wait(refs, num_returns=1, timeout=WATCH_SECONDS)
            watch.poll()
            if done:
                return done[0]

    try:
        run_tasks(tasks, None, submit, wait_any, ray.get)
    except BaseException:
        for ref in submitted:  # a cancelled task may still commit the generation it is writing
            ray.cancel(ref, force=True)
        # until their workers are gone: the final rebuild must see every commit
        ray.wait(submitted, num_returns=len(submitted), timeout=30)
        raise
