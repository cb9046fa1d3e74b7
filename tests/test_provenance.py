"""manifest.json's provenance: versions, commit, machine, command line, start and end times, peak
memory; a resumed run keeps its earlier sessions (issue 23)."""

import datetime
import importlib.metadata
import json
import os
import pathlib
import subprocess
import sys

import tomli_w

import collapse
from collapse.experiment import provenance

ROOT = pathlib.Path(__file__).resolve().parent.parent
CONFIG = {"experiment": {"name": "prov", "generations": 1, "seeds": [0], "paradigms": ["replace"], "workers": 1,
                         "progress": False},
          "data": {"source": "grammar", "num_documents": 100, "heldout_documents": 50},
          "model": {"family": "ngram", "order": 2}}


def _run(*args):
    proc = subprocess.run([sys.executable, "-m", "collapse", *map(str, args)], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc


def _time(text):
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ")


def _version(name):
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def test_manifest_records_provenance_and_resume_keeps_sessions(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text(tomli_w.dumps(CONFIG))
    out = tmp_path / "run"
    _run("run", cfg, "--out", out)
    first = json.loads((out / "manifest.json").read_text())["provenance"]
    assert first["collapse"] == collapse.__version__
    if (ROOT / ".git").exists() and pathlib.Path(collapse.__file__).resolve().is_relative_to(ROOT):
        # the package runs from this checkout (PYTHONPATH=python): its commit is recorded
        head = subprocess.run(["git", "-C", ROOT, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
        assert first["git_commit"] == head and isinstance(first["git_dirty"], bool)
    else:  # an installed copy (pip install ., as CI runs it) has no checkout to ask
        assert first["git_commit"] is None and first["git_dirty"] is None
    for name in ("numpy", "torch", "transformers", "kenlm"):
        assert first[name] == _version(name)
    assert first["python"] == ".".join(map(str, sys.version_info[:3]))
    assert first["cpu_count"] == os.cpu_count() and first["cpu"]
    assert first["gpus"] == [] and first["gpu_driver"] is None  # n-gram models: torch is never imported
    assert first["command"][1:] == ["run", str(cfg), "--out", str(out)]
    assert _time(first["started"]) <= _time(first["ended"]) <= _time(first["updated"])
    assert first["peak_rss_bytes"] >= first["peak_rss_self_bytes"] > 10 * 2**20
    assert first["earlier_sessions"] == []

    _run("run", cfg, "--out", out, "--resume", "--generations", "2")
    second = json.loads((out / "manifest.json").read_text())["provenance"]
    assert second["earlier_sessions"] == [{k: v for k, v in first.items() if k != "earlier_sessions"}]
    assert _time(second["started"]) >= _time(first["ended"]) and second["ended"] is not None
    assert second["command"][-2:] == ["--generations", "2"]
    page = (out / "report.html").read_text()  # collapse report shows it
    assert "Provenance" in page and "Earlier sessions" in page and first["started"] in page
    assert f">{second['numpy']}<" in page


def test_a_killed_session_has_no_end_and_absent_packages_are_none(monkeypatch):
    session = provenance.Session()
    snap = session.snapshot()
    assert snap["ended"] is None and snap["updated"] >= snap["started"]
    session.finish()
    assert session.snapshot()["ended"] is not None
    assert provenance.package_version("surely-no-such-distribution-xyz") is None
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    assert provenance.gpus() == []  # not imported here: nothing to ask, and nothing imports it
    assert "torch" not in sys.modules
    monkeypatch.setattr(provenance, "CHECKOUT", pathlib.Path("/"))  # an installed copy: no checkout
    assert provenance.git_commit() == (None, None)
