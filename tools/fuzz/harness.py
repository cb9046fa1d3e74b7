"""Shared parts of the atheris fuzz targets: the one rule (only ValueError-family
exceptions may escape the package), a scratch folder, and the libFuzzer entry point."""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from typing import Callable

# Coverage guides the mutations through the instrumented Python code only: the extension
# is a plain (or, with --sanitized, an ASan + UBSan) build, not one with coverage hooks.
import atheris  # noqa: E402

with atheris.instrument_imports():
    import collapse  # noqa: F401  (instrumented: coverage guides the mutations)
    from collapse import NGramModel  # noqa: F401

# tools/fuzz.sh names one under build/fuzz/TARGET (libFuzzer ends the process without
# running atexit handlers); otherwise a temporary folder, removed at a normal exit.
SCRATCH = os.environ.get("COLLAPSE_FUZZ_SCRATCH") or tempfile.mkdtemp(prefix="collapse-fuzz-")
os.makedirs(SCRATCH, exist_ok=True)
if not os.environ.get("COLLAPSE_FUZZ_SCRATCH"):
    atexit.register(shutil.rmtree, SCRATCH, True)


def scratch(name: str) -> str:
    return os.path.join(SCRATCH, name)


def write(name: str, data: bytes) -> str:
    path = scratch(name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def check_model(model, corpus) -> None:
    """Score, sample and write a model, read it back: the copy must score the same."""
    scores = model.score(corpus)
    ppl = model.perplexity(corpus)
    # Not NaN; 0 and inf are the values of models with huge positive backoffs or tiny probs.
    assert ppl == ppl and ppl >= 0, f"perplexity {ppl}"
    try:
        model.sample(4, seed=1, max_length=32, threads=2)
    except ValueError:
        pass  # e.g. "model gives every word probability 0 after some context"
    out = scratch("out.arpa")
    model.to_arpa(out)
    again = type(model).from_arpa(out)
    rescored = again.score(corpus)
    assert list(rescored) == list(scores), (list(scores), list(rescored))


def run(test_one_input: Callable[[bytes], None]) -> None:
    """atheris.Fuzz with test_one_input; a ValueError (CollapseError, UnicodeError, ...)
    is an accepted answer to bad input, anything else escapes and is a finding."""

    def one(data: bytes) -> None:
        try:
            test_one_input(data)
        except ValueError:
            pass

    atheris.Setup(sys.argv, one)
    atheris.Fuzz()
