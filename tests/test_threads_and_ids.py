"""Thread counts are checked and capped; a thread that cannot start is an exception, not
std::terminate. Token ids, offsets and indices are integers or refused, never truncated."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import collapse
from collapse import _core
from conftest import run_cli

TEXT = "the cat sat on the mat\nthe dog sat on the log\na cat and a dog\n"


@pytest.fixture(scope="module")
def corpus():
    return collapse.Corpus.from_texts(TEXT.splitlines())


@pytest.fixture(scope="module")
def model(corpus):
    return collapse.NGramModel.fit(corpus, order=3)


def test_resolve_threads_caps_and_limits():
    hw = _core.resolve_threads(0)
    assert hw >= 1
    assert _core.resolve_threads(1) == 1
    assert _core.resolve_threads(_core.MAX_THREADS) == min(_core.MAX_THREADS, 4 * hw)
    for bad in (-1, _core.MAX_THREADS + 1, 100_000):
        with pytest.raises(ValueError, match="threads"):
            _core.resolve_threads(bad)


@pytest.mark.parametrize("threads", [100_000, -1, 2**40, 1.5, True])
def test_python_api_refuses_bad_thread_counts(corpus, model, threads):
    calls = [
        lambda: collapse.NGramModel.fit(corpus, order=3, threads=threads),
        lambda: model.score(corpus, threads=threads),
        lambda: model.sample(3, seed=1, threads=threads),
        lambda: collapse.resample.shuffle(corpus, seed=1, threads=threads),
        lambda: collapse.simulate(p0="zipf", K=10, N=10, generations=2, trials=2, paradigm="replace",
                                  threads=threads),
    ]
    for call in calls:
        with pytest.raises(collapse.CollapseError, match="threads"):
            call()


def test_many_threads_are_capped_and_change_nothing(corpus, model):
    """64 threads on a small machine run as at most 4 per core, with the same results."""
    a = collapse.NGramModel.fit(corpus, order=3, threads=1)
    b = collapse.NGramModel.fit(corpus, order=3, threads=64)
    for n in (1, 2, 3):
        for x, y in zip(a.table(n), b.table(n)):
            np.testing.assert_array_equal(x, y)
    s1, s64 = model.sample(50, seed=3, threads=1), model.sample(50, seed=3, threads=64)
    np.testing.assert_array_equal(s1.tokens, s64.tokens)


def test_cli_refuses_100000_threads(tmp_path):
    """It used to be killed by the kernel (exit 137): 100000 per-thread histograms."""
    text = tmp_path / "train.txt"
    text.write_text(TEXT)
    rc, _, err = run_cli("ngram", "estimate", text, "--order", "3", "--threads", "100000", "-o", tmp_path / "m.arpa")
    assert rc == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1 and "threads" in err


# Start threads with almost no address space left: each needs a stack mapping, so starting
# the second or a later one fails. That used to be std::terminate (SIGABRT).
NO_ROOM_FOR_THREADS = textwrap.dedent("""
    import resource, numpy as np
    from collapse import _core
    def vm_size():
        for line in open("/proc/self/status"):
            if line.startswith("VmSize"):
                return int(line.split()[1]) * 1024
    tokens = (np.arange(20000, dtype=np.uint32) % 50) + 3
    offsets = np.arange(0, 20001, 10, dtype=np.int64)
    resource.setrlimit(resource.RLIMIT_AS, (vm_size() + (16 << 20), resource.RLIM_INFINITY))
    try:
        _core.count_ngrams(tokens, offsets, 60, 3, 8)
        print("started")
    except ValueError as e:
        print("ValueError", e)
""")


@pytest.mark.skipif(bool(os.environ.get("COLLAPSE_SANITIZED")), reason="AddressSanitizer cannot run under RLIMIT_AS")
def test_thread_start_failure_is_an_exception():
    if _core.resolve_threads(8) < 2:
        pytest.skip("one hardware thread: the core starts no thread")
    env = {**os.environ}  # the child imports collapse as this process does (installed, or PYTHONPATH)
    proc = subprocess.run([sys.executable, "-c", NO_ROOM_FOR_THREADS], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("ValueError could not start thread"), proc.stdout + proc.stderr


FLOAT_IDS = [np.array([3.0, 4.7, 5.0]), np.array([3, 4, 5], dtype=np.float32), [3.0, 4.0, 5.0],
             np.array([True, False, True])]


@pytest.mark.parametrize("ids", FLOAT_IDS, ids=lambda a: str(np.asarray(a).dtype))
def test_core_refuses_non_integer_ids(model, ids):
    """Float ids were truncated (pybind11's forcecast): 4.7 became 4."""
    offsets = np.array([0, 3], dtype=np.int64)
    index = _core.NGramIndex(model._core)
    dtype = str(np.asarray(ids).dtype)
    with pytest.raises(ValueError, match=dtype):
        _core.ngram_diversity(ids, offsets)
    with pytest.raises(ValueError, match=dtype):
        _core.gather_documents(np.array([3, 4, 5], dtype=np.uint32), offsets, ids, 1)
    with pytest.raises(ValueError, match="float64"):
        _core.ngram_diversity(np.array([3, 4, 5], dtype=np.uint32), np.array([0.0, 3.0]))
    with pytest.raises(ValueError, match=dtype):
        index.score(ids, offsets, 1)


def test_core_converts_integers_that_fit_and_refuses_the_rest():
    offsets = np.array([0, 3], dtype=np.int64)
    for ids in (np.array([3, 4, 5]), [3, 4, 5], np.array([3, 4, 5], dtype=np.uint16)):
        assert _core.ngram_diversity(ids, offsets)["total"][0] == 3
    for ids in (np.array([-1, 4, 5]), np.array([2**32, 4, 5])):
        with pytest.raises(ValueError, match="out of range"):
            _core.ngram_diversity(ids, offsets)


@pytest.mark.parametrize("ids", FLOAT_IDS, ids=lambda a: str(np.asarray(a).dtype))
def test_corpus_refuses_non_integer_ids(ids):
    vocab = collapse.Vocab(["a", "b", "c", "d", "e", "f"])
    with pytest.raises(collapse.CollapseError, match=str(np.asarray(ids).dtype)):
        collapse.Corpus(ids, np.array([0, 3]), vocab)
    with pytest.raises(collapse.CollapseError, match="float64"):
        collapse.Corpus(np.array([3, 4, 5]), np.array([0.0, 3.0]), vocab)
    with pytest.raises(collapse.CollapseError, match="must hold values in"):
        collapse.Corpus(np.array([3, -4, 5]), np.array([0, 3]), vocab)
