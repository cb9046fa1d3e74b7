"""Counting at scale: the spilling path, the 64-bit count path, and the accumulating pool
all give exactly the model of the plain in-memory fit (and lmplz's).

- Spilling: a memory budget of a few KB to 1 MB forces many chunks, sorted runs written to
  a temporary directory and merged; the counts and the modified Kneser-Ney ARPA equal the
  in-memory ones and lmplz's, and the temporary directory is gone afterwards.
- 64-bit counts: the test hook lowers the limit of the 32-bit count cells to 3, so most
  counts take the 64-bit path on a small corpus; everything is unchanged.
- The pool: counts of R, S_0, S_1 merged equal a fit on their concatenation (ARPA
  byte-identical) for every smoothing; the loop's Accumulate through the pool gives the
  same metrics and model files as refitting the concatenation, and a fresh family (a
  resumed cell) rebuilds the same pool.
- Accumulate-Subsample's draw from the pool part by part equals the draw from the
  concatenated pool; samplers are cached for the last two temperatures only.
"""

from __future__ import annotations

import contextlib
import os

import numpy as np
import pytest

from collapse import CollapseError, _core, concatenate
from collapse.data.storygrammar import sample_stories
from collapse.ngram import NGramModel, NGramPool
from collapse.ngram.model import memory_bytes

from lmplz import read_arpa_dict, run_lmplz


@pytest.fixture(scope="module")
def stories():
    return sample_stories(3000, seed=7)  # ~190k tokens, 1.2k words


def counts(corpus, order, **kw):
    return _core.count_ngrams(corpus.tokens, corpus.offsets, len(corpus.vocab), order, 2, **kw)


def assert_same_counts(a, b):
    assert len(a) == len(b)
    for n, ((ia, ra, aa), (ib, rb, ab)) in enumerate(zip(a, b), 1):
        assert np.array_equal(ia, ib), f"order {n} rows"
        assert np.array_equal(ra, rb), f"order {n} raw"
        assert np.array_equal(aa, ab), f"order {n} adjusted"


def arpa_text(model, tmp_path, name):
    path = tmp_path / name
    model.to_arpa(str(path))
    return path.read_bytes()


@contextlib.contextmanager
def narrow_count_limit(limit):
    previous = _core._set_narrow_count_limit(limit)
    try:
        yield
    finally:
        _core._set_narrow_count_limit(previous)


@pytest.mark.parametrize("order", [3, 5])
def test_spilled_counts_equal_in_memory(stories, tmp_path, order):
    spill = tmp_path / "spill"
    spill.mkdir()
    want = counts(stories, order)
    # 1 MB: chunks of 64k windows (the bucket-sort path); 20 KB: ~1.3k windows (direct sort).
    for budget in (1 << 20, 20_000):
        got = counts(stories, order, memory=budget, temp_dir=str(spill))
        assert_same_counts(got, want)
        assert os.listdir(spill) == [], "the spill directory must be removed"


def test_spilling_really_writes_runs(stories, tmp_path):
    # Where the spill directory cannot be created, a budget that fits the corpus works and a
    # tiny one fails: so the tiny budget does go to disk.
    missing = str(tmp_path / "gone")
    counts(stories, 3, memory=1 << 30, temp_dir=missing)
    with pytest.raises(ValueError, match="temporary directory"):
        counts(stories, 3, memory=20_000, temp_dir=missing)


@pytest.mark.parametrize("order", [3, 4])
def test_spilled_mkn_equals_in_memory_and_lmplz(stories, tmp_path, lmplz, order):  # noqa: F811
    spill = tmp_path / "spill"
    spill.mkdir()
    plain = NGramModel.fit(stories, order=order, threads=2)
    spilled = NGramModel.fit(stories, order=order, threads=2, memory=64_000, temp_dir=spill)
    assert arpa_text(spilled, tmp_path, "s.arpa") == arpa_text(plain, tmp_path, "p.arpa")
    assert os.listdir(spill) == []
    text = tmp_path / "train.txt"
    text.write_text("\n".join(" ".join(stories.vocab.words[i] for i in stories.document(d))
                              for d in range(stories.num_documents)) + "\n")
    run_lmplz(lmplz, str(text), str(tmp_path / "lmplz.arpa"), order)
    ours, theirs = read_arpa_dict(tmp_path / "s.arpa"), read_arpa_dict(tmp_path / "lmplz.arpa")
    assert ours.keys() == theirs.keys()
    # <s> is never predicted: lmplz writes its probability as 0, we write -99.
    assert theirs.pop((1, "<s>"))[1] == pytest.approx(ours.pop((1, "<s>"))[1], abs=1e-4)
    worst = max(max(abs(a - c), abs(b - d)) for k, (a, b) in ours.items() for (c, d) in [theirs[k]])
    assert worst < 1e-4


def test_memory_option_parsing():
    assert memory_bytes("512M") == 512 << 20
    assert memory_bytes("2G") == 2 << 30
    assert memory_bytes(12345) == 12345
    assert memory_bytes(None) == 0
    assert memory_bytes("50%") > 0
    for bad in ("lots", "-1G", "0%", "150%", True, -3):
        with pytest.raises(CollapseError):
            memory_bytes(bad)


@pytest.mark.parametrize("order", [2, 3])
def test_64bit_count_path_equals_32bit(stories, tmp_path, order):
    want = counts(stories, order)
    plain = {s: arpa_text(NGramModel.fit(stories, order=order, smoothing=s, threads=2), tmp_path, f"{s}.arpa")
             for s in ("mkn", "mle", "addk")}
    before = _core._escaped_count_total()
    with narrow_count_limit(3):
        got = counts(stories, order)
        wide = {s: arpa_text(NGramModel.fit(stories, order=order, smoothing=s, threads=2), tmp_path, f"w{s}.arpa")
                for s in ("mkn", "mle", "addk")}
        # Merged runs and the pool go through the same columns.
        spilled = counts(stories, order, memory=20_000)
        pool = NGramPool(order, threads=2)
        pool.add(stories.select(np.arange(1000)))
        pool.add(stories.select(np.arange(1000, stories.num_documents)))
        pooled = arpa_text(pool.fit(), tmp_path, "pool.arpa")
    escaped = _core._escaped_count_total() - before
    assert escaped > 10_000, f"the 64-bit path was taken for only {escaped} counts"
    assert_same_counts(got, want)
    assert_same_counts(spilled, want)
    assert wide == plain
    assert pooled == plain["mkn"]
    assert got[0][1].dtype == np.uint64
    # Sums past 2^32 survive (a count column holds 64-bit values).
    assert int(got[0][1].sum()) == int(want[0][1].sum())


@pytest.mark.parametrize("smoothing", ["mkn", "kn", "mle", "addk"])
def test_pool_equals_fit_on_concatenation(tmp_path, smoothing):
    real = sample_stories(800, seed=1)
    # Synthetic corpora with their own vocabularies (as a model's samples have), and new words.
    s0 = NGramModel.fit(real, order=3).sample(600, seed=2, threads=1)
    s1 = sample_stories(500, seed=3, num_names=1500)
    pool = NGramPool(4, threads=2, memory=30_000)  # small budget: each add spills too
    for c in (real, s0, s1):
        pool.add(c)
    whole = concatenate([real, s0, s1])
    assert pool.num_documents == whole.num_documents and pool.num_tokens == whole.num_tokens
    want = NGramModel.fit(whole, order=4, smoothing=smoothing, threads=2)
    got = pool.fit(smoothing=smoothing)
    assert arpa_text(got, tmp_path, "pool.arpa") == arpa_text(want, tmp_path, "whole.arpa")
    assert got.vocab.words == want.vocab.words


def test_pool_is_reusable_between_generations(tmp_path):
    parts = [sample_stories(300, seed=s) for s in range(4)]
    pool = NGramPool(3, threads=1)
    for t, part in enumerate(parts):
        pool.add(part)
        want = NGramModel.fit(concatenate(parts[:t + 1]), order=3, threads=1)
        assert arpa_text(pool.fit(), tmp_path, "a.arpa") == arpa_text(want, tmp_path, "b.arpa"), f"after {t + 1}"


def test_pool_errors(stories):
    with pytest.raises(CollapseError):
        NGramPool(0)
    pool = NGramPool(3)
    with pytest.raises(CollapseError, match="empty"):
        pool.fit()
    with pytest.raises(CollapseError):
        pool.add(stories.select(np.arange(0)))
    pool.add(stories)
    with pytest.raises(CollapseError):
        pool.fit(smoothing="nope")


def test_cli_memory_budget(stories, tmp_path):
    from conftest import run_cli

    text = tmp_path / "train.txt"
    text.write_text("\n".join(" ".join(stories.vocab.words[i] for i in stories.document(d))
                              for d in range(500)) + "\n")
    spill = tmp_path / "spill"
    spill.mkdir()
    rc, _, err = run_cli("ngram", "estimate", text, "--order", "3", "-o", tmp_path / "a.arpa")
    assert rc == 0, err
    rc, _, err = run_cli("ngram", "estimate", text, "--order", "3", "--memory", "20K", "--temp-dir", spill,
                         "-o", tmp_path / "b.arpa")
    assert rc == 0, err
    assert (tmp_path / "a.arpa").read_bytes() == (tmp_path / "b.arpa").read_bytes()
    assert os.listdir(spill) == []
    for bad in (["--memory", "lots"], ["--temp-dir", str(tmp_path / "missing")]):
        rc, _, err = run_cli("ngram", "estimate", text, "--order", "3", *bad, "-o", tmp_path / "c.arpa")
        assert rc == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err


ACCUMULATE = {
    "experiment": {"name": "pool", "generations": 4, "seeds": [5], "paradigms": ["accumulate"], "workers": 1,
                   "progress": False, "threads": 2},
    "data": {"source": "grammar", "num_documents": 1500, "heldout_documents": 100, "seed": 2},
    "model": {"family": "ngram", "order": 3},
    "output": {"model_every": 1},  # every generation's model, to compare them all
}


def _run_files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name.endswith(".arpa.gz")}


def test_loop_accumulate_through_the_pool_equals_refitting(tmp_path, monkeypatch):
    from collapse import run_experiment
    from collapse.experiment.rundir import TIMING_COLUMNS
    from collapse.ngram.family import NGramFamily

    pooled = run_experiment(ACCUMULATE, out=str(tmp_path / "pooled"))
    monkeypatch.setattr(NGramFamily, "pools_accumulate", False)  # the loop then concatenates and refits
    refit = run_experiment(ACCUMULATE, out=str(tmp_path / "refit"))
    drop = [c for c in TIMING_COLUMNS if c in pooled.columns]
    assert pooled.drop(columns=drop).equals(refit.drop(columns=drop))
    assert list(pooled["train_tokens"])[-1] > 4 * list(pooled["train_tokens"])[0]  # it did accumulate
    models_pooled, models_refit = _run_files(tmp_path / "pooled"), _run_files(tmp_path / "refit")
    assert len(models_pooled) == 5 and models_pooled == models_refit


def test_family_pool_rebuilds_after_resume(tmp_path):
    from collapse.ngram.family import NGramFamily

    parts = [sample_stories(300, seed=s) for s in range(4)]
    steady, fresh = NGramFamily(3, threads=1), NGramFamily(3, threads=1)
    for t in range(1, 5):
        model, summary = steady.fit_accumulated(t, parts.__getitem__, seed=0)
    taken = []
    resumed, summary2 = fresh.fit_accumulated(4, lambda k: taken.append(k) or parts[k], seed=0)
    assert taken == [0, 1, 2, 3]
    assert summary == summary2
    whole = concatenate(parts)
    assert summary.num_tokens == whole.num_tokens and summary.num_documents == whole.num_documents
    assert summary.words_used == int(np.count_nonzero(np.bincount(whole.tokens)[3:]))
    model.model.to_arpa(str(tmp_path / "a.arpa"))
    resumed.model.to_arpa(str(tmp_path / "b.arpa"))
    assert (tmp_path / "a.arpa").read_bytes() == (tmp_path / "b.arpa").read_bytes()


def test_draw_from_pool_equals_drawing_from_the_concatenation():
    from collapse.experiment.paradigms import draw_from_pool, draw_without_replacement

    real = sample_stories(400, seed=1)
    parts = [real, NGramModel.fit(real, order=2).sample(300, seed=4, threads=1), sample_stories(5, seed=9),
             sample_stories(350, seed=2, num_names=1400)]
    for k, seed in ((400, 3), (1, 8), (1055, 5)):
        want = draw_without_replacement(concatenate(parts), k, seed)
        got = draw_from_pool(parts, k, seed)
        assert np.array_equal(got.tokens, want.tokens) and np.array_equal(got.offsets, want.offsets)
        assert got.vocab.words == want.vocab.words
    with pytest.raises(CollapseError):
        draw_from_pool(parts, 1056, 0)


def test_sampler_cache_keeps_the_last_two_temperatures(stories):
    from collapse.ngram.sampler import SAMPLER_CACHE_SIZE, sampler_for

    model = NGramModel.fit(stories.select(np.arange(200)), order=2, threads=1)
    first = sampler_for(model, 1.0)
    for t in (0.5, 2.0, 0.7, 1.5):
        sampler_for(model, t)
        assert len(model._samplers) <= SAMPLER_CACHE_SIZE == 2
    assert list(model._samplers) == [0.7, 1.5]
    assert sampler_for(model, 1.5) is sampler_for(model, 1.5)
    assert sampler_for(model, 1.0) is not first  # rebuilt once dropped, same draws
    a = model.sample(20, seed=3, temperature=1.0, threads=1)
    assert np.array_equal(a.tokens, first.sample(20, seed=3, max_length=4096, top_k=0, top_p=1.0, threads=1)[0])


def test_loop_frees_the_sampler_before_scoring(tmp_path, monkeypatch):
    """The loop calls end_sampling once S_t is drawn: when the metrics build the scoring
    index, the model holds no sampler (the two are never held together; without the call
    every generation's model would hold one here)."""
    from collapse import run_experiment

    held = []
    build = NGramModel._scorer

    def scorer(self, threads=1):  # noqa: ANN001
        if self._index is None:
            held.append(bool(self.__dict__.get("_samplers")))
        return build(self, threads)

    monkeypatch.setattr(NGramModel, "_scorer", scorer)
    config = {**ACCUMULATE, "experiment": {**ACCUMULATE["experiment"], "paradigms": ["replace"], "generations": 2}}
    run_experiment(config, out=str(tmp_path / "run"))
    assert len(held) == 3 and not any(held)


def test_release_samplers_frees_the_cache_and_sampling_still_works(stories):
    model = NGramModel.fit(stories.select(np.arange(200)), order=3, threads=1)
    a = model.sample(30, seed=4, threads=1)
    model.release_samplers()
    assert not model.__dict__.get("_samplers")
    b = model.sample(30, seed=4, threads=1)  # rebuilt: the same draws
    assert np.array_equal(a.tokens, b.tokens) and np.array_equal(a.offsets, b.offsets)


INDEX_MAX_LOAD = 0.5  # NGramIndex::kMaxLoad (cpp/include/collapse/score.hpp)


@pytest.mark.parametrize("order", [3, 5])
def test_scoring_index_size_and_threads(stories, order):
    """The index holds rows / 0.5 + 1 16-byte slots per order >= 2 (32 bytes an n-gram, not
    up to 64 as with a power-of-two size), and building it on several threads
    gives the same index: the same scores, bit for bit."""
    model = NGramModel.fit(stories, order=order, threads=1)
    counts = model.num_ngrams()
    one = _core.NGramIndex(model._core, 1)
    unigram_bytes = 2 * 4 * len(model._core.vocab)
    slots = sum(max(16, int(rows / INDEX_MAX_LOAD) + 1) for rows in counts[1:])
    assert one.nbytes == unigram_bytes + 16 * slots
    assert one.nbytes <= unigram_bytes + 16 * (sum(counts[1:]) / INDEX_MAX_LOAD + 17 * (order - 1))
    heldout = sample_stories(300, seed=9)
    ids = heldout.vocab.map_to(model.vocab)[heldout.tokens]
    want = one.score(ids, heldout.offsets, 1)
    for threads in (2, 3):
        got = _core.NGramIndex(model._core, threads).score(ids, heldout.offsets, 2)
        assert np.array_equal(got[0], want[0]) and got[1:] == want[1:]
    assert np.array_equal(model.score(heldout, threads=2), want[0])


def test_arpa_written_on_threads_is_the_same_file(tmp_path):
    """Lines are formatted in chunks of 65,536 rows on the threads, a batch at a time, and
    written in row order: one thread and three give the same bytes (9 chunks of 5-grams
    here: batches of 4 chunks with one thread, of 12 with three), and the file reads back
    to the same model."""
    model = NGramModel.fit(sample_stories(60000, seed=3), order=5, threads=2)
    assert model.num_ngrams()[-1] > 8 * 65536
    one, three = tmp_path / "one.arpa", tmp_path / "three.arpa"
    model.to_arpa(str(one), threads=1)
    model.to_arpa(str(three), threads=3)
    assert one.read_bytes() == three.read_bytes()
    back = NGramModel.from_arpa(str(three))
    assert back.num_ngrams() == model.num_ngrams()
    for n in (1, 5):
        assert np.array_equal(back.table(n)[1], model.table(n)[1])
    assert sorted(os.listdir(tmp_path)) == ["one.arpa", "three.arpa"]  # no temporary left
