"""KenLM's lmplz as an independent reference for the tests and benchmarks.

find_lmplz() looks in $LMPLZ, PATH and the build prefix ($COLLAPSE_LMPLZ_PREFIX, else
build/lmplz), and otherwise builds it with tools/build_lmplz.sh (from the PyPI kenlm sdist,
with Debian's Boost, which the script installs where it may). A test session that needs
lmplz and cannot get it ends with one line saying how to fix it (require_references);
only COLLAPSE_SKIP_REFERENCES=1 turns that into skips.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys
from typing import Dict, Optional, Sequence, Tuple

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
SKIP_ENV = "COLLAPSE_SKIP_REFERENCES"

_build_error: Optional[str] = None


def build_prefix() -> pathlib.Path:
    return pathlib.Path(os.environ.get("COLLAPSE_LMPLZ_PREFIX") or ROOT / "build" / "lmplz")


def find_lmplz(build: bool = True) -> Optional[str]:
    global _build_error
    env = os.environ.get("LMPLZ")
    if env and os.access(env, os.X_OK):
        return env
    on_path = shutil.which("lmplz")
    if on_path:
        return on_path
    built = build_prefix() / "bin" / "lmplz"
    if os.access(built, os.X_OK):
        return str(built)
    if not build or _build_error is not None:
        return None
    script = ROOT / "tools" / "build_lmplz.sh"
    if not script.exists():
        _build_error = f"{script} is missing"
        return None
    proc = subprocess.run(["bash", str(script), str(build_prefix())], capture_output=True, text=True,
                          env={**os.environ, "PYTHON": sys.executable})
    if proc.returncode != 0:
        _build_error = "tools/build_lmplz.sh failed: " + (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return None
    path = proc.stdout.strip().splitlines()[-1]
    return path if os.access(path, os.X_OK) else None


def references_skipped() -> bool:
    return os.environ.get(SKIP_ENV, "") not in ("", "0")


def missing_reference_message() -> str:
    """One line: why lmplz is missing and the three ways on."""
    why = _build_error or "not found"
    return (f"KenLM's lmplz (the tests' reference) is missing: {why}. Fix: rerun as root or with passwordless "
            f"sudo on Debian/Ubuntu (tools/build_lmplz.sh installs Boost), or set LMPLZ=/path/to/lmplz, "
            f"or {SKIP_ENV}=1 to skip the reference tests")


def require_references(items: Sequence[pytest.Item]) -> None:
    """Before any test runs: find or build lmplz when a selected test needs it; without it,
    end the session (exit 1) with one line, unless COLLAPSE_SKIP_REFERENCES=1."""
    if references_skipped() or not any("lmplz" in getattr(item, "fixturenames", ()) for item in items):
        return
    if find_lmplz() is None:
        pytest.exit(missing_reference_message(), returncode=1)


@pytest.fixture(scope="session")
def lmplz() -> str:
    path = find_lmplz()
    if path is None:
        if references_skipped():
            pytest.skip(f"{SKIP_ENV} is set: lmplz reference tests skipped")
        pytest.fail(missing_reference_message(), pytrace=False)
    return path


def run_lmplz(lmplz_path: str, text_path: str, arpa_path: str, order: int, extra=(), memory: str = "64M") -> str:
    """Run lmplz on a one-sentence-per-line file; returns its stderr."""
    with open(text_path, "rb") as f:
        proc = subprocess.run([lmplz_path, "-o", str(order), "-S", memory, "-T", "/tmp", "--arpa", str(arpa_path),
                               *extra], stdin=f, capture_output=True)
    if proc.returncode != 0:
        raise RuntimeError(f"lmplz failed: {proc.stderr.decode(errors='replace')[-2000:]}")
    return proc.stderr.decode(errors="replace")


def read_arpa_dict(path) -> Dict[Tuple[int, str], Tuple[float, float]]:
    """{(order, 'w1 w2 ..'): (log10 prob, log10 backoff)} parsed independently of the core."""
    out: Dict[Tuple[int, str], Tuple[float, float]] = {}
    section = 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("\\") and line.endswith("-grams:"):
                section = int(line[1:-len("-grams:")])
                continue
            if line == "\\end\\":
                break
            if section and line:
                fields = line.split("\t")
                key = (section, fields[1])
                assert key not in out, f"duplicate n-gram {key}"
                out[key] = (float(fields[0]), float(fields[2]) if len(fields) > 2 else 0.0)
    return out
