"""Durability (issue 14): every file a run writes is renamed into place only after the
temporary file was fsynced, and the rename is followed by an fsync of the directory, so a
commit point (state.json) never names data that has not reached the disk. One helper does
it (collapse.files); no other module renames files."""

import os
import pathlib
import re

import collapse
from collapse.experiment.config import parse_config
from collapse.experiment.plot import plot_runs
from collapse.theory.result import write_run

PACKAGE = pathlib.Path(collapse.__file__).resolve().parent


def _record(monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.path.realpath(os.readlink(f"/proc/self/fd/{fd}"))))
        return real_fsync(fd)

    def replace(src, dst, *a, **k):
        events.append(("replace", os.path.realpath(src), os.path.realpath(dst)))
        return real_replace(src, dst, *a, **k)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    return events


def _check(events):
    replaces = [i for i, e in enumerate(events) if e[0] == "replace"]
    assert replaces
    for i in replaces:
        _, src, dst = events[i]
        assert ("fsync", src) in events[:i], f"{dst}: renamed before its data was fsynced"
        assert ("fsync", os.path.dirname(dst)) in events[i + 1:], f"{dst}: directory not fsynced after the rename"
    return {os.path.basename(events[i][2]) for i in replaces}


def test_every_file_of_a_run_is_written_durably(tmp_path, monkeypatch):
    events = _record(monkeypatch)
    raw = {"experiment": {"generations": 1, "paradigms": ["replace"], "workers": 1, "progress": False},
           "data": {"source": "grammar", "num_documents": 80, "heldout_documents": 20}, "model": {"order": 2}}
    run = tmp_path / "run"
    collapse.run_experiment(parse_config(raw), out=str(run))
    collapse.run_experiment(parse_config({**raw, "output": {"corpus_format": "text"}}), out=str(tmp_path / "text"))
    plot_runs([str(run)], str(run / "plot.png"))
    model = collapse.NGramModel.fit(collapse.Corpus.from_texts(["a b", "b c a"]), order=2)
    model.to_arpa(str(tmp_path / "m.arpa"))
    model.sample(3, seed=1).write_text(str(tmp_path / "sample.txt"))
    write_run(collapse.simulate(p0=[0.5, 0.5], N=5, generations=2, trials=2), str(tmp_path / "sim"),
              save_final_p=True)
    names = _check(events)
    assert {"state.json", "config.toml", "manifest.json", "metrics.csv", "metrics.parquet", "synthetic.arrow",
            "synthetic.txt.gz", "synthetic.vocab.gz", "model.arpa.gz", "plot.png", "m.arpa", "sample.txt", "events.csv",
            "final_p.npy"} <= names, names


def test_only_the_one_helper_renames_files():
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "files.py":
            continue
        if re.search(r"\bos\.(replace|rename)\(|\bshutil\.move\(", path.read_text(encoding="utf-8")):
            offenders.append(str(path.relative_to(PACKAGE)))
    assert not offenders, offenders
