"""The tail of the real vocabulary, generation by generation (docs/experiment.md, "The tail").

The real corpus R's word types are bucketed by their count in R on a log2 scale (1, 2-3,
4-7, 8-15, ...). Per generation t, for each bucket: how many of its types S_t still holds
(``survival``) and the share of S_t's tokens that fall on them (``share``, beside R's own
``real_share``); per type: its extinction generation (the first t at which S_t lacks it)
and whether a later S_t holds it again.

Everything derives from files committed with each generation: gen_<t>/tails.parquet (the
bucket rows) and gen_<t>/present.npy (which real types S_t holds, bit-packed), so --resume
rebuilds exactly what an unbroken run writes. Run-level files: RUN_DIR/tails.parquet (every
cell's bucket rows, with the cell's keys), <cell>/extinction.parquet, tails.png / .svg.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np

from ..data.corpus import Corpus
from ..files import atomic_path
from .metrics import counts_by_reference

TAILS_FILE = "tails.parquet"            # in each gen_<t> folder (the bucket rows) and in the run directory
PRESENT_FILE = "present.npy"            # in each gen_<t> folder: bit-packed presence over R's vocabulary
EXTINCTION_FILE = "extinction.parquet"  # in each cell folder
FIGURE_FILE = "tails.png"
BUCKET_COLUMNS = ("bucket_low", "bucket_high", "types", "present", "survival", "share", "real_share", "real_tokens")
KEY_COLUMNS = ("model", "paradigm", "alpha", "seed", "order", "filter_keep")


def count_bucket(counts: np.ndarray) -> np.ndarray:
    """The log2 bucket of each count >= 1: floor(log2(count)) (1 -> 0, 2-3 -> 1, 4-7 -> 2, ...);
    the one bucketing of the loop's tail and the categorical simulator's
    (collapse.theory.tails)."""
    return np.floor(np.log2(np.asarray(counts, dtype=np.float64))).astype(np.int64)


def bucket_bounds(buckets: np.ndarray) -> "tuple[np.ndarray, np.ndarray]":
    """(bucket_low, bucket_high): the counts bucket b holds, 2^b .. 2^(b+1) - 1."""
    buckets = np.asarray(buckets, dtype=np.int64)
    return 2 ** buckets, 2 ** (buckets + 1) - 1


@dataclass(frozen=True)
class TailReference:
    """What every generation's tail is measured against: R's word types (ids of R's vocab,
    specials excluded), their counts in R and their log2 bucket."""

    counts: np.ndarray   # float64 over R's vocab ids
    types: np.ndarray    # int64: ids of the real word types (count >= 1, not <unk>/<s>/</s>)
    bucket: np.ndarray   # int64 over ``types``: floor(log2(count))
    real_tokens: float

    @classmethod
    def build(cls, real: Corpus) -> "TailReference":
        counts = np.bincount(real.tokens, minlength=len(real.vocab)).astype(np.float64)
        types = np.flatnonzero(counts > 0)
        types = types[types >= 3]
        return cls(counts, types, count_bucket(counts[types]), float(real.num_tokens))

    @property
    def buckets(self) -> np.ndarray:
        """Every bucket from 0 to the largest one R has (an empty one keeps its row: types 0)."""
        return np.arange(int(self.bucket.max()) + 1 if self.bucket.size else 0)


def generation_tails(synthetic: Corpus, real_vocab: Any, ref: TailReference) -> "tuple[Dict[str, np.ndarray], np.ndarray]":
    """S_t's bucket columns (one entry per bucket, BUCKET_COLUMNS) and its presence over
    ``ref.types`` (bool)."""
    counts, _ = counts_by_reference(synthetic, real_vocab)
    on_types = counts[ref.types]
    present = on_types > 0
    nb = ref.buckets.size
    types = np.bincount(ref.bucket, minlength=nb)
    alive = np.bincount(ref.bucket, weights=present, minlength=nb)
    tokens = np.bincount(ref.bucket, weights=on_types, minlength=nb)
    real = np.bincount(ref.bucket, weights=ref.counts[ref.types], minlength=nb)
    total = float(synthetic.num_tokens)
    with np.errstate(invalid="ignore", divide="ignore"):
        columns = {
            "bucket_low": bucket_bounds(ref.buckets)[0], "bucket_high": bucket_bounds(ref.buckets)[1],
            "types": types, "present": alive.astype(np.int64),
            "survival": np.where(types > 0, alive / np.maximum(types, 1), np.nan),
            "share": tokens / total if total else np.full(nb, np.nan),
            "real_share": real / ref.real_tokens if ref.real_tokens else np.full(nb, np.nan),
            "real_tokens": np.full(nb, int(ref.real_tokens), dtype=np.int64),  # N of the law drawn over the figure
        }
    return columns, present


def write_generation(gdir: str, columns: Dict[str, np.ndarray], present: np.ndarray) -> None:
    """Generation t's tail files, in its gen_<t> folder (committed with it)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    with atomic_path(os.path.join(gdir, TAILS_FILE)) as tmp:
        pq.write_table(pa.table({c: np.asarray(v) for c, v in columns.items()}), tmp)
    with atomic_path(os.path.join(gdir, PRESENT_FILE), suffix=".npy") as tmp:
        np.save(tmp, np.packbits(present))


def backfill(gdirs: Sequence[str], ref: TailReference, real_vocab: Any, load: Callable[[str], Corpus]) -> None:
    """Write the tail files of committed generations that lack them (a run from before the
    tail, resumed), from their samples (``load``: a gen_<t> folder's S_t)."""
    for gdir in gdirs:
        if not os.path.exists(os.path.join(gdir, PRESENT_FILE)):
            write_generation(gdir, *generation_tails(load(gdir), real_vocab, ref))


def read_presence(gdirs: Sequence[str], n_types: int) -> np.ndarray:
    """bool [generations, types]: which real types each committed S_t holds."""
    out = np.zeros((len(gdirs), n_types), dtype=bool)
    for t, gdir in enumerate(gdirs):
        out[t] = np.unpackbits(np.load(os.path.join(gdir, PRESENT_FILE)), count=n_types).astype(bool)
    return out


def extinction(presence: np.ndarray) -> "tuple[np.ndarray, np.ndarray]":
    """(extinct_at, returned) per type from its presence over generations: the first t with
    S_t lacking it (-1: never), and whether some later S_t holds it again."""
    absent = ~presence
    ever = absent.any(axis=0)
    extinct_at = np.where(ever, absent.argmax(axis=0), -1)
    later = np.arange(presence.shape[0])[:, None] > extinct_at[None, :]
    returned = np.asarray(ever & (presence & later).any(axis=0))
    return extinct_at, returned


def write_extinction(cell_dir: str, gdirs: Sequence[str], ref: TailReference, words: Sequence[str]) -> None:
    """<cell>/extinction.parquet from the committed generations' presence files: one row per
    real type (word, count in R, extinct_at or null, returned)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    extinct_at, returned = extinction(read_presence(gdirs, ref.types.size))
    table = pa.table({
        "word_id": ref.types, "word": pa.array([words[i] for i in ref.types], type="string"),
        "real_count": ref.counts[ref.types].astype(np.int64),
        "extinct_at": pa.array(extinct_at, type="int64", mask=extinct_at < 0),  # null: alive in every S_t
        "returned": returned,
    })
    with atomic_path(os.path.join(cell_dir, EXTINCTION_FILE)) as tmp:
        pq.write_table(table, tmp)


_CACHE: Dict[str, "tuple[tuple, Any]"] = {}  # path: ((inode, mtime, size), bucket rows): the driver rebuilds after every commit


def _read_cached(path: str) -> Any:
    """A committed generation's bucket rows (a pyarrow Table); read once per file version
    (a redone generation is a new file: a new inode)."""
    import pyarrow.parquet as pq

    st = os.stat(path)
    stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
    hit = _CACHE.get(path)
    if hit is None or hit[0] != stamp:
        _CACHE[path] = hit = (stamp, pq.read_table(path))
    return hit[1]


KEY_TYPES = {"model": "string", "paradigm": "string", "alpha": "float64", "seed": "int64", "order": "float64",
             "filter_keep": "float64", "generation": "int64"}


def run_tails(cell_rows: Sequence["tuple[Dict[str, Any], List[str]]"]) -> Any:
    """The run's tail table (a pyarrow Table): for each cell (its key row, its committed
    gen_<t> folders) the bucket rows of every generation, with the cell's keys and the
    generation in front. pyarrow, not pandas: the driver rebuilds it after every commit."""
    import pyarrow as pa

    parts = []
    for keys, gdirs in cell_rows:
        paths = [os.path.join(g, TAILS_FILE) for g in gdirs]
        # a run from before the tail files has none
        done = [(t, _read_cached(p)) for t, p in enumerate(paths) if os.path.exists(p)]
        if not done:
            continue
        rows = pa.concat_tables([part for _, part in done])
        n = rows.num_rows
        front = [pa.array([keys.get(c)] * n, type=KEY_TYPES[c]) for c in KEY_COLUMNS]
        front.append(pa.array(np.repeat([t for t, _ in done], [part.num_rows for _, part in done]), type="int64"))
        parts.append(pa.table(front + rows.columns, names=list(KEY_TYPES) + rows.column_names))
    if not parts:
        return pa.table({c: pa.array([], type=KEY_TYPES[c]) for c in KEY_TYPES})
    return pa.concat_tables(parts)


def write_run_tails(run_dir: str, table: Any) -> None:
    import pyarrow.parquet as pq

    with atomic_path(os.path.join(run_dir, TAILS_FILE)) as tmp:
        pq.write_table(table, tmp)


# -------------------------------------------------------------------------------------- figure

def replace_extinction_law(N: int, k: Any) -> np.ndarray:
    """Replace's expected generations until an outcome seen k times among N is lost (given
    that it is): Kimura & Ohta's -2 N p ln p / (1 - p), p = k / N, about 2 k ln(N / k)
    (docs/theory.md). Defined here, the lower layer, once: collapse.theory's
    time_to_forget_diffusion checks its arguments and calls it."""
    p = np.asarray(k, dtype=np.float64) / N
    return -2.0 * N * p * np.log(p) / (1.0 - p)


def galton_watson_extinction(steps: int) -> np.ndarray:
    """q_j = P(a critical Poisson(1) Galton-Watson line dies within j generations), j =
    0..steps: q_0 = 0, q_j = exp(q_{j-1} - 1); 1 - q_j ~ 2 / (j + ln j). Replace's count of
    an outcome seen k << N times is such a process from k lines: P(lost within j refits) ~
    q_j^k (docs/theory.md, "The tail"; collapse.theory re-exports it)."""
    q = np.zeros(int(steps) + 1)
    for j in range(1, q.size):
        q[j] = np.exp(q[j - 1] - 1.0)
    return q


def galton_watson_death_time(k: Any, steps: int) -> np.ndarray:
    """E[T | T <= steps] for T the refits until k Galton-Watson lines are all gone
    (P(T <= j) = q_j^k): the mean a run of `steps` refits can see, however large N is."""
    ks = np.atleast_1d(np.asarray(k, dtype=np.float64))
    died = galton_watson_extinction(steps)[:, None] ** ks[None, :]
    return (np.arange(1, int(steps) + 1)[:, None] * np.diff(died, axis=0)).sum(axis=0) / died[-1]


def replace_extinction_law_within(k: Any, last_generation: int) -> np.ndarray:
    """Replace's law for what a loop run measures: the mean extinction generation of the
    real types seen k times (k << N) that die by the run's last generation G. S_t is the
    (t + 1)-th refit's sample after M_0, so extinct_at = T - 1 with T <= G + 1."""
    return galton_watson_death_time(k, int(last_generation) + 1) - 1.0


def _cell_extinctions(run_dir: str) -> List["tuple[str, Any]"]:
    """(paradigm, extinction table) of every cell that has one (manifest order)."""
    import pandas as pd

    from ..files import read_json

    out = []
    manifest = os.path.join(run_dir, "manifest.json")
    cells = read_json(manifest)["cells"] if os.path.exists(manifest) else []
    for cell in cells:
        path = os.path.join(run_dir, cell["id"], EXTINCTION_FILE)
        if os.path.exists(path):
            out.append((cell["paradigm"], pd.read_parquet(path)))
    return out


def draw_tails(run_dir: str) -> Any:
    """The tail figure: per paradigm, survival of each count bucket against generation (mean
    over the paradigm's cells); last panel, extinction generation against count in R (mean
    over the types that died, per count) with Replace's law (replace_extinction_law; N: R's
    tokens) and, what a run of G generations can measure, its mean over the types that die
    by G (replace_extinction_law_within)."""
    import pandas as pd
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    from .plot import PANEL_INCHES, PARADIGM_NAMES, PARADIGM_ORDER, _grid, _palette

    df = pd.read_parquet(os.path.join(run_dir, TAILS_FILE))
    paradigms = sorted(df["paradigm"].unique(), key=lambda p: (PARADIGM_ORDER.index(p) if p in PARADIGM_ORDER
                                                               else len(PARADIGM_ORDER), p))
    rows, cols = _grid(len(paradigms) + 1)
    fig = Figure(figsize=(PANEL_INCHES[0] * cols, PANEL_INCHES[1] * rows))
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    buckets = df[df["types"] > 0][["bucket_low", "bucket_high"]].drop_duplicates().sort_values("bucket_low")
    shades = colormaps["viridis"](np.linspace(0.0, 0.9, max(len(buckets), 1)))
    for ax, paradigm in zip(axes, paradigms):
        part = df[(df["paradigm"] == paradigm) & (df["types"] > 0)]
        mean = part.groupby(["bucket_low", "generation"])["survival"].mean()
        for shade, (low, high) in zip(shades, buckets.itertuples(index=False)):
            if low in mean.index.get_level_values(0):
                s = mean.loc[low]
                ax.plot(s.index, s.values, color=shade, lw=1.2, label=f"{low}" if low == high else f"{low}–{high}")
        ax.set_title(f"{PARADIGM_NAMES.get(paradigm, paradigm)}: surviving real types", fontsize=9)
        ax.set_xlabel("generation")
        ax.set_ylabel("fraction of the bucket's types")
        ax.set_ylim(-0.02, 1.02)
    axes[0].legend(title="count in R", fontsize=6, title_fontsize=7, ncol=2, loc="lower left")
    ax = axes[len(paradigms)]
    colours = dict(zip(paradigms, _palette(len(paradigms))))
    k_max = 16.0  # the x range: the counts of the types that died, and a little beyond
    for paradigm, table in _cell_extinctions(run_dir):
        died = table.dropna(subset=["extinct_at"])
        k_max = max(k_max, 4.0 * float(died["real_count"].max()) if len(died) else 0.0)
        if died.empty:
            continue
        mean = died.groupby("real_count")["extinct_at"].mean()
        label = PARADIGM_NAMES.get(paradigm, paradigm)
        ax.plot(mean.index, mean.values.astype(float), "o", ms=3, color=colours.get(paradigm), alpha=0.7,
                label=label if label not in ax.get_legend_handles_labels()[1] else None)
    n_real = int(df["real_tokens"].max()) if len(df) else None
    ax.set_xscale("log")
    ax.set_xlabel("count in R (k)")
    ax.set_ylabel("extinction generation")
    ax.set_title("extinction generation (mean over the types that died)", fontsize=9)
    if n_real:
        k = np.unique(np.geomspace(1, min(k_max, float(df["bucket_high"].max())), 50).astype(int))
        k = k[k < n_real]
        law = replace_extinction_law(int(n_real), k)
        ax.plot(k, law, "k--", lw=1, label=rf"Replace's law: $2k\ln(N/k)$, N = {int(n_real)}")
        last = float(df["generation"].max())
        ax.plot(k, replace_extinction_law_within(k, int(last)), "k-", lw=1,
                label="the same law, types that die by the last generation")
        # the run ends at its last generation: a type alive then has no extinction generation
        ax.axhline(last, color="0.6", lw=0.8, ls=":", label="last generation (types alive then: not shown)")
        # symlog: the law runs to hundreds of generations where a run has tens (and 0 is a value)
        ax.set_yscale("symlog", linthresh=1.0)
        ax.set_ylim(0, 1.5 * max(last, float(law.max()), 1.0))
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=6, loc="lower right")
    for extra in axes[len(paradigms) + 1:]:
        extra.set_visible(False)
    fig.tight_layout()
    return fig


def write_tail_figure(run_dir: str, dpi: int = 300) -> Optional[List[str]]:
    """tails.png (dpi) and tails.svg from the run's tails.parquet; None when it has none."""
    from .plot import _save

    if not os.path.exists(os.path.join(run_dir, TAILS_FILE)):
        return None
    return _save(draw_tails(run_dir), os.path.join(run_dir, FIGURE_FILE), dpi)
