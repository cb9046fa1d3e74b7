"""The tail tables (collapse.experiment.tails): bucket survival, token shares and extinction
generations against a direct computation over the corpora's words (dicts and sets), the
run-level tails.parquet's columns, and --resume giving the same tables as an unbroken run."""

import json
import math
import shutil
from collections import Counter

import numpy as np
import pandas as pd
import pytest

from collapse.experiment.loop import load_corpus_files, real_data, run_experiment
from collapse.experiment.config import load_config
from collapse.experiment.tails import extinction, replace_extinction_law, replace_extinction_law_within
from collapse.theory import time_to_forget_diffusion

GENERATIONS = 4
CONFIG = {
    "experiment": {"name": "tails", "generations": GENERATIONS, "seeds": [5],
                   "paradigms": ["replace", "accumulate", "mix"], "alphas": [0.5], "workers": 1, "progress": False},
    "data": {"source": "grammar", "num_documents": 150, "heldout_documents": 40, "seed": 2},
    "model": {"family": "ngram", "order": 2},
}
CELLS = ("replace_o2_s5", "accumulate_o2_s5", "mix_a0.5_o2_s5")
KEYS = ["model", "paradigm", "alpha", "seed", "order", "filter_keep", "generation"]


def _config(generations=GENERATIONS):
    raw = json.loads(json.dumps(CONFIG))
    raw["experiment"]["generations"] = generations
    return raw


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("tails") / "run"
    run_experiment(_config(), out=str(out))
    return out


def _words(corpus):
    """The corpus's word tokens, as strings."""
    words = corpus.vocab.words
    return [words[i] for i in corpus.tokens.tolist()]


def _direct(run_dir, cell):
    """Per generation: {bucket_low: (types, survival, share, real_share)}, and per word its
    (count in R, extinct_at or None, returned), from plain Counters and sets."""
    real = _words(real_data(load_config(_config())).real)
    counts = Counter(w for w in real if w not in ("<unk>", "<s>", "</s>"))
    bucket = {w: 1 << (c.bit_length() - 1) for w, c in counts.items()}  # 1, 2-3 -> 2, 4-7 -> 4, ...
    samples = [_words(load_corpus_files(str(run_dir / cell / f"gen_{t:04d}"))) for t in range(GENERATIONS + 1)]
    per_gen = []
    for s in samples:
        present, rows = set(s), {}
        for low in sorted(set(bucket.values())):
            types = [w for w in counts if bucket[w] == low]
            alive = sum(w in present for w in types)
            share = sum(1 for w in s if bucket.get(w) == low) / len(s)
            real_share = sum(counts[w] for w in types) / len(real)
            rows[low] = (len(types), alive / len(types), share, real_share)
        per_gen.append(rows)
    ext = {}
    for w in counts:
        gone = [t for t, s in enumerate(samples) if w not in set(s)]
        first = gone[0] if gone else None
        returned = first is not None and any(w in set(samples[t]) for t in range(first + 1, len(samples)))
        ext[w] = (counts[w], first, returned)
    return per_gen, ext


@pytest.mark.parametrize("cell", CELLS)
def test_buckets_and_extinction_match_a_direct_count(run, cell):
    tails = pd.read_parquet(run / "tails.parquet")
    paradigm = cell.split("_")[0]
    mine = tails[tails["paradigm"] == paradigm]
    per_gen, ext = _direct(run, cell)
    for t, rows in enumerate(per_gen):
        got = mine[(mine["generation"] == t) & (mine["types"] > 0)].set_index("bucket_low")
        assert sorted(got.index) == sorted(rows)
        for low, (types, survival, share, real_share) in rows.items():
            r = got.loc[low]
            assert r["bucket_high"] == 2 * low - 1 and r["types"] == types
            assert r["survival"] == pytest.approx(survival, abs=1e-12)
            assert r["share"] == pytest.approx(share, abs=1e-12)
            assert r["real_share"] == pytest.approx(real_share, abs=1e-12)
    table = pd.read_parquet(run / cell / "extinction.parquet")
    assert len(table) == len(ext)
    for word, count, at, returned in table[["word", "real_count", "extinct_at", "returned"]].itertuples(index=False):
        assert (count, None if pd.isna(at) else int(at), bool(returned)) == ext[word], word
    # the small run has words that die (else the test would check little)
    assert table["extinct_at"].notna().any()
    if paradigm != "replace":  # and words that come back (their S_t is drawn from R as well)
        assert table["returned"].any()


def test_the_run_table_has_one_row_per_cell_generation_and_bucket(run):
    tails = pd.read_parquet(run / "tails.parquet")
    for c in KEYS + ["bucket_low", "bucket_high", "types", "survival", "share", "real_share"]:
        assert c in tails.columns, c
    n_buckets = tails["bucket_low"].nunique()
    assert len(tails) == len(CELLS) * (GENERATIONS + 1) * n_buckets
    assert not tails.duplicated(["paradigm", "generation", "bucket_low"]).any()
    assert (run / "tails.png").exists() and (run / "tails.svg").exists()
    # shares of real words never exceed the whole sample; the real shares are the same in every row of a bucket
    assert (tails.groupby(KEYS)["share"].sum() <= 1 + 1e-12).all()
    assert (tails.groupby("bucket_low")["real_share"].nunique() == 1).all()


def test_extinction_of_a_presence_matrix():
    present = np.array([[1, 1, 0, 1], [0, 1, 0, 1], [1, 1, 1, 0], [0, 1, 1, 0]], dtype=bool)
    at, returned = extinction(present)
    assert at.tolist() == [1, -1, 0, 2] and returned.tolist() == [True, False, True, False]


def test_the_drawn_law_is_the_theory_modules():
    k = np.array([1, 2, 5, 40])
    assert np.allclose(replace_extinction_law(10_000, k), time_to_forget_diffusion(10_000, k))
    assert replace_extinction_law(10_000, np.array([1]))[0] == pytest.approx(2 * math.log(10_000), rel=1e-3)


def test_the_law_within_a_run_is_the_simulators_in_loop_numbering():
    """The loop's S_t is the simulator's generation t + 2: a run to generation G measures
    theory.replace_extinction_generation_poisson(k, G + 2) - 2, and, checked against the
    Wright-Fisher chain at N = 3000, that is what Replace gives for k << N."""
    from collapse import theory

    k = np.array([1, 2, 3, 8])
    within = replace_extinction_law_within(k, 20)
    assert np.allclose(within, theory.replace_extinction_generation_poisson(k, 22) - 2)
    assert np.allclose(within, theory.replace_extinction_generation(3000, k, 22) - 2, rtol=0.01)
    assert np.all(within < replace_extinction_law(124_687, k) / 3)   # far below the law without a horizon


def _tables(run_dir):
    return (pd.read_parquet(run_dir / "tails.parquet"),
            {c: pd.read_parquet(run_dir / c / "extinction.parquet") for c in CELLS})


def test_resume_gives_the_tables_of_an_unbroken_run(run, tmp_path):
    # grown: 2 generations, then --resume to 4 (the extinction table is rebuilt from the
    # committed generations' presence files)
    grown = tmp_path / "grown"
    run_experiment(_config(2), out=str(grown))
    run_experiment(_config(), out=str(grown), resume=True)
    # killed after generation 3's files (tail files and the cell's extinction table
    # included) were written but before its state.json commit: the redo must agree
    killed = tmp_path / "killed"
    shutil.copytree(run, killed)
    for cell in CELLS:
        state_path = killed / cell / "state.json"
        state = json.loads(state_path.read_text())
        state["rows"], state["generations_done"] = state["rows"][:3], 3
        state_path.write_text(json.dumps(state))
    (killed / "tails.parquet").unlink()
    run_experiment(_config(), out=str(killed), resume=True)
    # a run from before the tail files, resumed: the committed generations' tail files are
    # written from their samples
    old = tmp_path / "old"
    run_experiment(_config(2), out=str(old))
    for path in list(old.rglob("tails.parquet")) + list(old.rglob("present.npy")) + list(old.rglob("extinction.parquet")):
        path.unlink()
    run_experiment(_config(), out=str(old), resume=True)
    want_tails, want_ext = _tables(run)
    for other in (grown, killed, old):
        got_tails, got_ext = _tables(other)
        pd.testing.assert_frame_equal(got_tails, want_tails, check_exact=True)
        for c in CELLS:
            pd.testing.assert_frame_equal(got_ext[c], want_ext[c], check_exact=True)
        assert (other / "tails.parquet").read_bytes() == (run / "tails.parquet").read_bytes()
