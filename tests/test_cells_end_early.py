"""A cell that cannot go on (its filter starves, its data degenerates) ends with a status and a
reason, in its state, in the metrics table and in the log, and the rest of the study goes on;
the run's exit status (3) and summary say how many cells ended early (issue 14)."""

import json
import pathlib
import subprocess
import sys
import tomllib

import numpy as np
import pandas as pd
import tomli_w

import collapse
from collapse.experiment.config import parse_config

CONFIGS = pathlib.Path(__file__).resolve().parent.parent / "configs"


def _collapse(*args):
    return [sys.executable, "-m", "collapse", *map(str, args)]


def test_filter_sweep_goes_on_past_starving_cells(tmp_path):
    # the shipped filter sweep at reduced size, with keep_fraction 0.25 and 8 rounds as it
    # was shipped before issue 26: Replace and Mix(0.9) with keep_fraction 0.25 and dedup
    # starve once collapsed (generations 3 and 4); before, the first failure ended the whole
    # study with exit status 2
    raw = tomllib.loads((CONFIGS / "filter-sweep.toml").read_text())
    raw["experiment"].update(generations=4, seeds=[0], progress=False)
    raw["data"].update(num_documents=200, heldout_documents=100)
    raw["filter"].update(keep_fractions=[1.0, 0.5, 0.25], max_rounds=8)
    cfg = tmp_path / "filter-sweep.toml"
    cfg.write_text(tomli_w.dumps(raw))
    out = tmp_path / "run"
    proc = subprocess.run(_collapse("run", cfg, "--out", out), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 3, proc.stderr
    assert "2 cell(s) ended early" in proc.stdout
    assert proc.stderr.count("ended early at generation") == 2

    m = pd.read_csv(out / "metrics.csv")
    ended = m[m.status == "ended"]
    assert len(ended) == 2 and ended.reason.str.startswith("filter: only").all()
    assert ended[["heldout_ppl", "train_documents"]].isna().all().all()
    ok = m[m.status == "ok"]
    assert ok.reason.isna().all()
    # every other cell reached the last generation
    last = ok.groupby(["paradigm", "alpha", "filter_keep"], dropna=False).generation.max()
    assert (last == 4).sum() == 9 - 2
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] and manifest["cells_ended_early"] == 2
    states = [json.loads((out / c["id"] / "state.json").read_text()) for c in manifest["cells"]]
    assert sorted(s["status"] for s in states) == ["ended"] * 2 + ["ok"] * 7
    for s in states:
        if s["status"] == "ended":
            assert s["reason"].startswith("filter: only") and s["ended_at"] == s["generations_done"]

    # resuming does not retry an ended cell (its seeds would end it again) and changes nothing
    before = (out / "metrics.csv").read_text()
    proc = subprocess.run(_collapse("run", cfg, "--out", out, "--resume"), capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 3, proc.stderr
    assert "ended early at generation" not in proc.stderr
    timing = ["seconds", "fit_seconds", "sample_seconds", "metrics_seconds", "write_seconds"]
    a = pd.read_csv(pd.io.common.StringIO(before)).drop(columns=timing)
    b = pd.read_csv(out / "metrics.csv").drop(columns=timing)
    pd.testing.assert_frame_equal(a, b)


def test_a_cell_that_cannot_make_generation_zero(tmp_path, capsys):
    # keep 1/4 of 2x oversampled candidates in one round: half of what is needed
    raw = {"experiment": {"generations": 2, "paradigms": ["replace"], "workers": 1, "progress": False},
           "data": {"source": "grammar", "num_documents": 120, "heldout_documents": 30},
           "model": {"order": 2},
           "filter": {"method": "perplexity", "keep_fractions": [1.0, 0.25], "max_rounds": 1}}
    df = collapse.run_experiment(parse_config(raw), out=str(tmp_path / "run"))
    assert "[replace_o2_k0.25_s0] ended early at generation 0: filter: only 60 of 120" in capsys.readouterr().err
    ended = df[df.status == "ended"]
    assert ended[["generation", "filter_keep"]].values.tolist() == [[0, 0.25]]
    assert list(df[df.status == "ok"].generation) == [0, 1, 2]
    assert df["train_documents"].dtype == "Int64" and df["seed"].dtype == np.int64
