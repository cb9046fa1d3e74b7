"""Bad configs: one line on stderr naming the field, exit status 2 (via the CLI), and a
ValueError-family exception naming the field (via the Python API)."""

import pathlib
import subprocess
import sys

import pytest

from collapse.experiment.config import ConfigError, load_config, parse_config, to_toml
from collapse.errors import CollapseError

ROOT = pathlib.Path(__file__).resolve().parent.parent

BASE = """
[experiment]
generations = 2
paradigms = ["replace"]

[data]
source = "grammar"
num_documents = 50
"""

CASES = [
    ("unknown paradigm", BASE.replace('["replace"]', '["replace", "recycle"]'), "experiment.paradigms[1]",
     "unknown paradigm 'recycle'"),
    ("alpha above 1", BASE + "", None, None),  # filled below
    ("generations < 1", BASE.replace("generations = 2", "generations = 0"), "experiment.generations", ">= 1"),
    ("missing corpus", BASE.replace('source = "grammar"\nnum_documents = 50',
                                    'source = "file"\npath = "no/such/corpus.txt"'), "data.path", "no such file"),
    ("unknown key", BASE.replace("generations = 2", "generations = 2\ngenerashuns = 3"),
     "experiment.generashuns", "unknown key"),
    ("unknown table", BASE + "\n[modle]\norder = 3\n", "modle", "unknown table"),
    ("unknown model key", BASE + "\n[model]\norder = 3\nsmothing = \"mkn\"\n", "model.smothing", "unknown key"),
    ("bad order", BASE + "\n[model]\norders = [3, 0]\n", "model.orders[1]", ">= 1"),
    ("bad smoothing", BASE + "\n[model]\nsmoothing = \"wb\"\n", "model.smoothing", "unknown value 'wb'"),
    ("negative seed", BASE.replace("generations = 2", "generations = 2\nseeds = [0, -1]"), "experiment.seeds[1]",
     "non-negative"),
    ("bad executor", BASE.replace("generations = 2", "generations = 2\nexecutor = \"slurm\""),
     "experiment.executor", "unknown value 'slurm'"),
    ("keep fraction 0", BASE + "\n[filter]\nmethod = \"perplexity\"\nkeep_fraction = 0.0\n", "filter.keep_fraction",
     "(0, 1]"),
    ("bad format", BASE.replace('source = "grammar"\nnum_documents = 50',
                                'source = "file"\npath = "CORPUS"\nformat = "xml"'), "data.format", "unknown value"),
]
CASES[1] = ("alpha above 1", BASE.replace('["replace"]', '["mix"]\nalpha = 1.5'), "experiment.alpha",
            "must be in [0, 1], got 1.5")


@pytest.mark.parametrize("name,text,field,message", CASES, ids=[c[0] for c in CASES])
def test_python_api_names_the_field(tmp_path, name, text, field, message):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("a b c\n")
    path = tmp_path / "bad.toml"
    path.write_text(text.replace("CORPUS", str(corpus)))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert isinstance(err.value, (CollapseError, ValueError))
    assert str(err.value).startswith(f"{field}:"), str(err.value)
    assert message in str(err.value)


@pytest.mark.parametrize("case", [0, 1, 2, 3, 4], ids=[CASES[i][0] for i in range(5)])
def test_cli_one_line_exit_2(tmp_path, case):
    name, text, field, message = CASES[case]
    path = tmp_path / "bad.toml"
    path.write_text(text)
    proc = subprocess.run([sys.executable, "-m", "collapse", "run", str(path), "--out", str(tmp_path / "out")],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert field in lines[0] and message in lines[0]
    assert not (tmp_path / "out").exists()  # nothing written for a bad config


def test_missing_config_file_and_bad_toml(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "collapse", "run", str(tmp_path / "nope.toml")],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "no such file" in proc.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text("[experiment\n")
    proc = subprocess.run([sys.executable, "-m", "collapse", "run", str(bad)], capture_output=True, text=True)
    assert proc.returncode == 2 and "not valid TOML" in proc.stderr


def missing_model_folders(path):
    """The hf model folders a config names (path, relative to the config) that do not exist."""
    tables = __import__("tomllib").loads(path.read_text()).get("model", [])
    tables = tables if isinstance(tables, list) else [tables]
    return [t["path"] for t in tables if t.get("family") == "hf" and "path" in t
            and not (path.parent / t["path"]).exists()]


def test_shipped_configs_are_valid_and_round_trip(tmp_path):
    for path in sorted((ROOT / "configs").glob("*.toml")):
        data = __import__("tomllib").loads(path.read_text()).get("data", {})
        if "path" in data and not (path.parent / data["path"]).exists():  # a user's files (the paper's TinyStories)
            continue
        if "tinystories" in path.name and not (ROOT.parent / "shared" / "data" / "tinystories").exists():
            continue
        if missing_model_folders(path):  # hf configs whose folders a command in their header makes
            continue
        cfg = load_config(path)
        assert cfg.cells()
        again = parse_config(__import__("tomllib").loads(to_toml(cfg)), base_dir=str(tmp_path))
        assert to_toml(again) == to_toml(cfg), path.name


def test_cells_are_the_sweep_product():
    cfg = parse_config({"experiment": {"paradigms": ["replace", "mix", "fresh"], "alphas": [0.1, 0.5],
                                       "seeds": [0, 1]},
                        "model": {"orders": [2, 3]},
                        "filter": {"method": "perplexity", "keep_fractions": [1.0, 0.5]}})
    cells = cfg.cells()
    # replace: 1 alpha; mix and fresh: 2 alphas -> (1 + 2 + 2) x 2 orders x 2 keeps x 2 seeds
    assert len(cells) == 5 * 2 * 2 * 2
    assert len({c.id for c in cells}) == len(cells)
    assert {c.alpha for c in cells if c.paradigm == "replace"} == {None}
