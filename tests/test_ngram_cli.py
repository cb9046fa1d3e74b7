"""collapse ngram estimate / score, run as a user runs them (subprocess)."""

from __future__ import annotations

import json

import pytest

import collapse
from conftest import run_cli

TEXT = "the cat sat on the mat\nthe dog sat on the log\na cat and a dog\n"


@pytest.fixture
def small(tmp_path):
    path = tmp_path / "train.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


def one_line_error(rc, err):
    assert rc == 2, err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("smoothing", ["mkn", "kn", "addk", "mle"])
def test_estimate_then_score_json(small, tmp_path, smoothing):
    arpa = tmp_path / "m.arpa"
    rc, out, err = run_cli("ngram", "estimate", small, "--order", "3", "--smoothing", smoothing, "--add-k", "0.5",
                           "--threads", "2", "-o", arpa)
    assert rc == 0, err
    assert arpa.exists()
    test = tmp_path / "test.txt"
    test.write_text("the cat sat on the log\nunseen words here\n", encoding="utf-8")
    rc, out, err = run_cli("ngram", "score", arpa, test, "--json", "--threads", "1")
    assert rc == 0, err
    res = json.loads(out)
    model = collapse.NGramModel.from_arpa(str(arpa))
    corpus = collapse.load_corpus(str(test))
    want = model.evaluate(corpus)
    assert res["perplexity"] == pytest.approx(want["perplexity"], rel=1e-9)
    assert res["log10_prob"] == pytest.approx(want["log10_prob"], rel=1e-9)
    assert (res["tokens"], res["sequences"], res["oov"]) == (9, 2, 3)
    # Same model as the Python API.
    direct = collapse.NGramModel.fit(collapse.load_corpus(str(small)), order=3, smoothing=smoothing, add_k=0.5)
    assert direct.perplexity(corpus) == pytest.approx(res["perplexity"], rel=1e-5)


def test_score_human_summary(small, tmp_path):
    arpa = tmp_path / "m.arpa"
    run_cli("ngram", "estimate", small, "--order", "2", "-o", arpa, check=0)
    rc, out, err = run_cli("ngram", "score", arpa, small)
    assert rc == 0, err
    assert "perplexity" in out and "OOV" in out


def test_estimate_tinystories_format(tinystories_dir, tmp_path):
    arpa = tmp_path / "m.arpa"
    rc, _, err = run_cli("ngram", "estimate", tinystories_dir / "train-head.txt", "--format", "tinystories",
                         "--order", "2", "--tokenizer", "word", "-o", arpa)
    assert rc == 0, err
    assert collapse.NGramModel.from_arpa(str(arpa)).order == 2


def test_missing_input(tmp_path):
    rc, _, err = run_cli("ngram", "estimate", tmp_path / "nope.txt", "--order", "3", "-o", tmp_path / "m.arpa")
    one_line_error(rc, err)
    assert "no such file" in err


def test_empty_corpus(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    rc, _, err = run_cli("ngram", "estimate", empty, "--order", "3", "-o", tmp_path / "m.arpa")
    one_line_error(rc, err)
    assert "empty" in err


@pytest.mark.parametrize("order", ["0", "9", "-1", "three"])
def test_order_out_of_range(small, tmp_path, order):
    rc, _, err = run_cli("ngram", "estimate", small, "--order", order, "-o", tmp_path / "m.arpa")
    one_line_error(rc, err)


def test_unknown_smoothing(small, tmp_path):
    rc, _, err = run_cli("ngram", "estimate", small, "--order", "3", "--smoothing", "witten-bell",
                         "-o", tmp_path / "m.arpa")
    one_line_error(rc, err)


def test_bad_add_k(small, tmp_path):
    rc, _, err = run_cli("ngram", "estimate", small, "--order", "3", "--smoothing", "addk", "--add-k", "-1",
                         "-o", tmp_path / "m.arpa")
    one_line_error(rc, err)


def test_bad_utf8_input(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"good line\nbad \xff\xfe bytes\n")
    rc, _, err = run_cli("ngram", "estimate", bad, "--order", "2", "-o", tmp_path / "m.arpa")
    one_line_error(rc, err)
    assert "UTF-8" in err


def _arpa_text(tmp_path, small):
    arpa = tmp_path / "good.arpa"
    run_cli("ngram", "estimate", small, "--order", "3", "-o", arpa, check=0)
    return arpa.read_text(encoding="utf-8")


@pytest.mark.parametrize("damage", ["truncated", "no-end", "bad-prob", "bad-count", "not-arpa", "bad-utf8",
                                    "unknown-word"])
def test_malformed_arpa(small, tmp_path, damage):
    text = _arpa_text(tmp_path, small)
    path = tmp_path / "bad.arpa"
    if damage == "truncated":
        path.write_text(text[: len(text) // 2], encoding="utf-8")
    elif damage == "no-end":
        path.write_text(text.replace("\\end\\", ""), encoding="utf-8")
    elif damage == "bad-prob":
        lines = text.split("\n")
        i = next(i for i, line in enumerate(lines) if line.startswith("-") and "\tthe\t" in line)
        lines[i] = "abc" + lines[i][lines[i].index("\t"):]
        path.write_text("\n".join(lines), encoding="utf-8")
    elif damage == "bad-count":
        path.write_text(text.replace("ngram 2=", "ngram 2=1"), encoding="utf-8")
    elif damage == "not-arpa":
        path.write_text("hello world\n", encoding="utf-8")
    elif damage == "bad-utf8":
        path.write_bytes(text.replace("\tcat\t", "\tc\udcffat\t").encode("utf-8", "surrogateescape"))
    elif damage == "unknown-word":
        path.write_text(text.replace("\tthe cat\t", "\tthe kitten\t"), encoding="utf-8")
    rc, _, err = run_cli("ngram", "score", path, small, "--json")
    one_line_error(rc, err)
    with pytest.raises(ValueError):
        collapse.NGramModel.from_arpa(str(path))


def test_missing_arpa(small, tmp_path):
    rc, _, err = run_cli("ngram", "score", tmp_path / "none.arpa", small, "--json")
    one_line_error(rc, err)
