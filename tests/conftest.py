import os
import pathlib

import pytest

from lmplz import lmplz, require_references  # noqa: F401  (lmplz: the fixture, for every test module)

ROOT = pathlib.Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data" / "tinystories"


def pytest_collection_finish(session):
    """The independent references (lmplz) are built before the first test, or the session
    ends with one line saying how to get them (tests/lmplz.py)."""
    if not session.config.option.collectonly:
        require_references(session.items)


@pytest.fixture(scope="session")
def tinystories_dir() -> pathlib.Path:
    """../shared/data/tinystories, or a skip saying why (the samples are never shipped)."""
    if not (SHARED_DATA / "train-head.txt").exists():
        pytest.skip(f"TinyStories samples not found at {SHARED_DATA} (they live in ../shared, never in the project)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def train_head_lines(tinystories_dir, tmp_path_factory):
    """train-head.txt as a Corpus (tinystories format, whitespace tokens) and written one
    story per line: the text lmplz and our estimators are compared on."""
    import collapse

    corpus = collapse.load_corpus(str(tinystories_dir / "train-head.txt"), format="tinystories")
    path = tmp_path_factory.mktemp("train-head") / "train-lines.txt"
    corpus.write_text(str(path))
    return corpus, path


@pytest.fixture
def tmp_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run_cli(*args, check=None):
    """Run the collapse CLI in a subprocess: (returncode, stdout, stderr)."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "collapse", *map(str, args)], capture_output=True, text=True,
                          env={**os.environ})
    if check is not None:
        assert proc.returncode == check, proc.stderr
    return proc.returncode, proc.stdout, proc.stderr


def kill_when_done(child, state_path, generations_done, timeout=300.0):
    """SIGKILL the run ``child`` (a Popen) as soon as its cell's state.json says
    ``generations_done`` generations are committed (the next one is then in progress);
    fails if the run ended first. Returns the count the state file holds after the kill."""
    import json
    import signal
    import time

    deadline = time.time() + timeout
    while time.time() < deadline and child.poll() is None:
        try:
            if json.loads(pathlib.Path(state_path).read_text())["generations_done"] >= generations_done:
                break
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.01)
    assert child.poll() is None, "the run ended before it could be killed"
    child.send_signal(signal.SIGKILL)
    child.wait()
    return json.loads(pathlib.Path(state_path).read_text())["generations_done"]
