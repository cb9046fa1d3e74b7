import os
import pathlib
import shutil
import subprocess
import sys

import pytest
from conftest import run_cli

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_unknown_command_is_one_line_exit_2():
    rc, out, err = run_cli("no-such-command")
    assert rc == 2
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def pyproject_version(root=ROOT):
    with open(root / "pyproject.toml", "rb") as f:
        return tomllib.load(f)["project"]["version"]


def test_version_is_pyprojects():
    import collapse

    rc, out, err = run_cli("--version")
    assert rc == 0, err
    assert out.strip() == f"collapse {pyproject_version()}"
    assert collapse.__version__ == pyproject_version()


def test_version_is_written_only_in_pyproject():
    import collapse

    package = pathlib.Path(collapse.__file__).resolve().parent
    literal = f'"{pyproject_version()}"'
    assert not [p for p in package.rglob("*.py") if literal in p.read_text(encoding="utf-8")]


def test_a_checkout_reports_its_own_pyproject_version(tmp_path):
    """The package run from a checkout (PYTHONPATH) says the checkout's version, not an
    installed copy's."""
    import collapse

    package = pathlib.Path(collapse.__file__).resolve().parent
    copy = tmp_path / "python" / "collapse"
    shutil.copytree(package, copy, ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    for so in package.glob("_core*.so"):
        (copy / so.name).symlink_to(so)
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "collapse"\nversion = "9.8.7"\n')
    proc = subprocess.run([sys.executable, "-m", "collapse", "--version"], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(tmp_path / "python")})
    assert (proc.returncode, proc.stdout.strip()) == (0, "collapse 9.8.7"), proc.stderr


def test_no_version_anywhere_is_an_import_error(tmp_path, monkeypatch):
    import importlib.metadata

    from collapse.experiment.rundir import package_version

    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "other"\nversion = "1.0"\n')
    with pytest.raises(ImportError, match="not installed"):
        package_version(tmp_path)
