"""The linter runs with the tests: `ruff check` over the package, tests, benchmarks and
tools with the rules in pyproject.toml ([tool.ruff]), the ones the `# noqa` comments assume."""

import pathlib
import shutil
import subprocess

ROOT = pathlib.Path(__file__).resolve().parent.parent


def ruff_command():
    """ruff from the test extra: the module where its package is importable, else the binary."""
    try:
        from ruff.__main__ import find_ruff_bin
    except ImportError:
        found = shutil.which("ruff")
        assert found, "ruff is not installed (pip install .[test])"
        return [found]
    return [find_ruff_bin()]


def test_ruff_finds_nothing():
    proc = subprocess.run([*ruff_command(), "check", "--no-cache", "python", "tests", "bench", "tools"],
                          capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
