"""Data you can trust (issue 26): the paragraphs format, data.heldout_format, heldout_documents
for file sources, the refusal of a corpus that is almost surely mis-split, and the sizes of
every set in the manifest and the run's first line; the shipped TinyStories config against
the shared sample."""

import json
import pathlib
import subprocess
import sys
import tomllib

import numpy as np
import pytest

import collapse
from collapse.data.storygrammar import get_grammar
from collapse.errors import CollapseError
from collapse.experiment.config import parse_config, to_toml
from collapse.experiment.sources import load_real_data
from collapse.files import toml_text

CONFIGS = pathlib.Path(__file__).resolve().parent.parent / "configs"
STORIES = get_grammar().texts(1200, seed=7)  # about 47 tokens a story: 900 of them pass the 10,000-token floor


def _stories(path, texts):
    """Raw TinyStories layout: stories separated by <|endoftext|> lines."""
    path.write_text("".join(t + "\n<|endoftext|>\n" for t in texts))
    return path


def _paragraphs(path, texts):
    """TinyStories' validation layout: each text followed by a blank line, no markers."""
    path.write_text("".join(t + "\n\n" for t in texts))
    return path


def _config(train, **data):
    return {"experiment": {"generations": 1, "paradigms": ["replace"], "workers": 1, "progress": False},
            "data": {"source": "file", "path": str(train), "format": "tinystories", **data},
            "model": {"order": 2}}


def _run_cli(config_path, out):
    return subprocess.run([sys.executable, "-m", "collapse", "run", str(config_path), "--out", str(out)],
                          capture_output=True, text=True)


def _write_toml(path, raw):
    path.write_text(toml_text(raw))
    return path


# -- the paragraphs format ------------------------------------------------------------------

def test_paragraphs_format_splits_on_blank_lines(tmp_path):
    path = tmp_path / "p.txt"
    path.write_text("\n  \nOne two.\nthree\n\n\n \t \nfour five\n\nsix\n\n\n")
    corpus = collapse.load_corpus(str(path), format="paragraphs")
    assert [t for t in corpus.texts()] == ["One two. three", "four five", "six"]
    # the same through the CLI that takes a --format
    from conftest import run_cli

    rc, _, err = run_cli("ngram", "estimate", path, "--format", "paragraphs", "--order", "2", "-o",
                         tmp_path / "m.arpa")
    assert rc == 0, err
    assert "\\1-grams:" in (tmp_path / "m.arpa").read_text()


# -- the rule -----------------------------------------------------------------------------

def test_split_rule_floor_ratio_and_empty_share():
    from collapse.data.corpus import MISSPLIT_LONG_FLOOR, split_problem

    short = np.full(200, 10)
    assert split_problem(short) is None
    # a long outlier below the absolute floor is kept (short-line corpora vary widely)
    assert split_problem(np.append(short, MISSPLIT_LONG_FLOOR)) is None
    assert "the longest of 10,001 tokens" in split_problem(np.append(short, MISSPLIT_LONG_FLOOR + 1))
    # a training corpus of one huge document; a held-out one against short training documents
    assert split_problem(np.array([181_421])) == "loads as 1 document of 181,421 tokens"
    assert "median is 178 tokens" in split_problem(np.array([181_421]), typical=178)
    # ... but one book held out against training books is fine
    assert split_problem(np.array([120_000]), typical=100_000) is None
    # more than 20% empty documents ("lines" on blank-line separated text)
    assert split_problem(np.append(short[:160], np.zeros(40, int))) is None  # exactly 20%
    assert "200 documents of which 41 (20%) are empty" in split_problem(np.append(short[:159], np.zeros(41, int)))


# -- heldout_format and the shipped config -------------------------------------------------

def test_heldout_format_reads_the_heldout_file_its_own_way(tmp_path):
    train = _stories(tmp_path / "train.txt", STORIES[:300])
    held = _paragraphs(tmp_path / "valid.txt", STORIES[300:])
    data = load_real_data(parse_config(_config(train, heldout_path=str(held), heldout_format="paragraphs")))
    assert data.heldout.num_documents == 900 and data.real.num_documents == 300
    assert list(data.heldout.texts())[:3] == [" ".join(t.split()) for t in STORIES[300:303]]
    # the default is the training format, and config.toml spells out only a different one
    cfg = parse_config(_config(train, heldout_path=str(held), heldout_format="tinystories"))
    assert cfg.data.heldout_format is None and "\nheldout_format =" not in to_toml(cfg)
    assert 'heldout_format = "paragraphs"' in to_toml(parse_config(_config(train, heldout_path=str(held),
                                                                           heldout_format="paragraphs")))


def test_shipped_tinystories_config_holds_out_thousands_of_documents(tinystories_dir):
    raw = tomllib.loads((CONFIGS / "ngram-tinystories.toml").read_text())
    data = raw["data"]
    # the config's paths are the shared sample's files (relative to configs/); read them where they are here
    assert pathlib.Path(data["path"]).name == "train-head.txt"
    assert pathlib.Path(data["heldout_path"]).name == "valid-head.txt"
    data.update(path=str(tinystories_dir / "train-head.txt"), heldout_path=str(tinystories_dir / "valid-head.txt"))
    real = load_real_data(parse_config(raw, base_dir=str(CONFIGS)))
    held = real.heldout
    assert 3000 < held.num_documents < 6000, held.num_documents  # was 1 document of 181,421 tokens
    assert held.lengths().min() > 0 and held.lengths().max() < 2000
    assert real.describe["heldout_documents"] == held.num_documents
    assert real.real.num_documents == 2316  # the training stories


# -- mis-split corpora are refused, one line, nothing written ----------------------------------

def test_heldout_read_as_one_document_is_refused(tmp_path):
    train = _stories(tmp_path / "train.txt", STORIES[:300])
    held = _paragraphs(tmp_path / "valid.txt", STORIES[300:])
    cfg = _write_toml(tmp_path / "c.toml", _config(train, heldout_path=str(held)))
    proc = _run_cli(cfg, tmp_path / "out")
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"collapse: error: data.heldout_path: {held} loads as 1 document of "), lines[0]
    assert 'set data.heldout_format = "paragraphs"' in lines[0] and "data.accept_split = true" in lines[0]
    assert not (tmp_path / "out").exists()
    # the explicit setting keeps it
    raw = _config(train, heldout_path=str(held), accept_split=True)
    assert load_real_data(parse_config(raw)).heldout.num_documents == 1
    assert "accept_split = true" in to_toml(parse_config(raw))


def test_lines_with_many_empty_documents_are_refused(tmp_path):
    held = _paragraphs(tmp_path / "valid.txt", STORIES[300:500])
    train = _paragraphs(tmp_path / "train.txt", STORIES[:300])
    # the training file read as lines: every other document is empty
    raw = _config(train, format="lines")
    with pytest.raises(CollapseError, match=r"^data\.path: .*train\.txt loads as 600 documents of which 300 \(50%\) "
                                            r"are empty; it looks mis-split: set data\.format = \"paragraphs\""):
        load_real_data(parse_config(raw))
    # the held-out file read as lines (the training file right): the CLI says so in one line
    raw = _config(train, format="paragraphs", heldout_path=str(held), heldout_format="lines")
    proc = _run_cli(_write_toml(tmp_path / "c.toml", raw), tmp_path / "out")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "data.heldout_path:" in proc.stderr and "200 (50%) are empty" in proc.stderr
    assert not (tmp_path / "out").exists()
    raw["data"]["heldout_format"] = "paragraphs"
    assert load_real_data(parse_config(raw)).heldout.num_documents == 200


# -- heldout_documents for file sources ---------------------------------------------------

def test_heldout_documents_draws_from_the_heldout_file(tmp_path):
    train = _stories(tmp_path / "train.txt", STORIES[:300])
    held = _stories(tmp_path / "valid.txt", STORIES[300:700])
    file_docs = list(collapse.load_corpus(str(held), format="tinystories").texts())

    def heldout(**data):
        return list(load_real_data(parse_config(_config(train, heldout_path=str(held), **data))).heldout.texts())

    assert heldout() == file_docs  # not given: every document
    drawn = heldout(heldout_documents=50)
    assert len(drawn) == 50 and len(set(drawn)) == 50
    # a seeded draw without replacement, kept in file order: not simply the file's head
    positions = [file_docs.index(t) for t in drawn]
    assert positions == sorted(positions) and positions != list(range(50))
    assert heldout(heldout_documents=50) == drawn
    assert heldout(heldout_documents=50, seed=1) != drawn
    with pytest.raises(CollapseError, match=r"^data\.heldout_documents: .* has only 400 documents, asked for 401"):
        heldout(heldout_documents=401)


def test_heldout_documents_carved_from_the_training_file(tmp_path):
    train = _stories(tmp_path / "train.txt", STORIES[:300])
    data = load_real_data(parse_config(_config(train, heldout_documents=7)))
    assert data.heldout.num_documents == 7 and data.real.num_documents == 293
    with pytest.raises(CollapseError, match="give either heldout_documents or heldout_fraction"):
        parse_config(_config(train, heldout_documents=7, heldout_fraction=0.2))
    # round trip: config.toml keeps heldout_documents, not the unused default fraction
    cfg = parse_config(_config(train, heldout_documents=7))
    assert parse_config(tomllib.loads(to_toml(cfg))).data.heldout_documents == 7


# -- the sizes of every set ---------------------------------------------------------------

def test_manifest_and_first_line_give_every_set_size(tmp_path):
    train = _stories(tmp_path / "train.txt", STORIES[:300])
    raw = _config(train, heldout_documents=20, num_documents=200)
    raw["experiment"]["progress"] = True
    proc = _run_cli(_write_toml(tmp_path / "c.toml", raw), tmp_path / "out")
    assert proc.returncode == 0, proc.stderr
    desc = json.loads((tmp_path / "out" / "manifest.json").read_text())["data"]
    assert (desc["train_documents"], desc["heldout_documents"], desc["pool_documents"]) == (200, 20, 80)
    total = collapse.load_corpus(str(train), format="tinystories").num_tokens
    assert desc["train_tokens"] + desc["heldout_tokens"] + desc["pool_tokens"] == total
    first = proc.stderr.splitlines()[0]
    assert first == (f"data: train R 200 documents / {desc['train_tokens']:,} tokens; held-out 20 documents / "
                     f"{desc['heldout_tokens']:,} tokens; fresh pool 80 documents / {desc['pool_tokens']:,} tokens")
