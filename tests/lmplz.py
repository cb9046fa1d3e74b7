"""KenLM's lmplz as an independent reference for the tests and benchmarks.

find_lmplz() looks in $LMPLZ, PATH, /work/lmplz/bin and build/lmplz/bin, and otherwise
builds it with tools/build_lmplz.sh (from the PyPI kenlm sdist, with Debian Boost).
The `lmplz` fixture skips, saying why, only where it cannot be found or built.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
from typing import Dict, Optional, Tuple

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
CANDIDATES = (pathlib.Path("/work/lmplz/bin/lmplz"), ROOT / "build" / "lmplz" / "bin" / "lmplz")

_build_error: Optional[str] = None


def find_lmplz(build: bool = True) -> Optional[str]:
    global _build_error
    env = os.environ.get("LMPLZ")
    if env and os.access(env, os.X_OK):
        return env
    on_path = shutil.which("lmplz")
    if on_path:
        return on_path
    for c in CANDIDATES:
        if os.access(c, os.X_OK):
            return str(c)
    if not build or _build_error is not None:
        return None
    script = ROOT / "tools" / "build_lmplz.sh"
    if not script.exists():
        _build_error = f"lmplz not found and {script} is missing"
        return None
    proc = subprocess.run(["bash", str(script)], capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        _build_error = f"lmplz not found and tools/build_lmplz.sh failed: {tail}"
        return None
    path = proc.stdout.strip().splitlines()[-1]
    return path if os.access(path, os.X_OK) else None


@pytest.fixture(scope="session")
def lmplz() -> str:
    path = find_lmplz()
    if path is None:
        pytest.skip(_build_error or "lmplz not found ($LMPLZ, PATH, /work/lmplz/bin, build/lmplz/bin)")
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
