"""ARPA files that lie or hold extreme values: a clean error (ValueError; CLI one line,
exit 2), never a memory error, an allocation sized by the header, or a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

import collapse
from conftest import run_cli

UNIGRAMS = "-1.0\t<unk>\n-99\t<s>\n-0.5\t</s>\n-0.4\ta\n-0.6\tb\n"


def arpa_with_header(counts_line: str) -> str:
    return f"\\data\\\n{counts_line}\n\n\\1-grams:\n{UNIGRAMS}\n\\end\\\n"


LYING_HEADERS = {
    "claims-1000": "ngram 1=1000",                   # more than the file holds
    "claims-1e12": "ngram 1=1000000000000",          # 10^12 n-grams
    "claims-2^64-1": "ngram 1=18446744073709551615",  # the largest size_t
    "overflows": "ngram 1=99999999999999999999999",  # past 64 bits
}


@pytest.mark.parametrize("name", sorted(LYING_HEADERS))
def test_lying_header_is_a_clean_error(tmp_path, name):
    path = tmp_path / "m.arpa"
    path.write_text(arpa_with_header(LYING_HEADERS[name]))
    with pytest.raises(ValueError, match="claims|too large|truncated"):
        collapse.NGramModel.from_arpa(str(path))


def test_lying_higher_order_header(tmp_path):
    path = tmp_path / "m.arpa"
    path.write_text(f"\\data\\\nngram 1=5\nngram 2=1000000000000\n\n\\1-grams:\n{UNIGRAMS}\n\\2-grams:\n"
                    "-0.1\ta b\n\n\\end\\\n")
    with pytest.raises(ValueError, match="claims 1000000000000 2-grams"):
        collapse.NGramModel.from_arpa(str(path))


# Under an address-space limit a reservation sized by the header used to surface as
# "MemoryError: std::bad_alloc" and exit 1.
LIMITED = textwrap.dedent("""
    import resource, sys
    resource.setrlimit(resource.RLIMIT_AS, (int(sys.argv[1]) << 20, resource.RLIM_INFINITY))
    from collapse.cli import main
    sys.exit(main(sys.argv[2:]))
""")


@pytest.mark.skipif(bool(os.environ.get("COLLAPSE_SANITIZED")), reason="AddressSanitizer cannot run under RLIMIT_AS")
@pytest.mark.parametrize("name", ["claims-1e12", "claims-2^64-1"])
def test_lying_header_under_memory_limit(tmp_path, name):
    path = tmp_path / "m.arpa"
    path.write_text(arpa_with_header(LYING_HEADERS[name]))
    text = tmp_path / "t.txt"
    text.write_text("a b\n")
    env = {**os.environ}  # the child imports collapse as this process does (installed, or PYTHONPATH)
    proc = subprocess.run([sys.executable, "-c", LIMITED, "1024", "ngram", "score", str(path), str(text)],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "bad_alloc" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    # The limit leaves room for a real model: the same command on an honest file works.
    path.write_text(arpa_with_header("ngram 1=5"))
    proc = subprocess.run([sys.executable, "-c", LIMITED, "1024", "ngram", "score", str(path), str(text)],
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "+nan"])
@pytest.mark.parametrize("field", ["prob", "backoff"])
def test_non_finite_values_refused(tmp_path, value, field):
    uni = UNIGRAMS.replace("-0.4\ta\n", f"{value}\ta\n" if field == "prob" else f"-0.4\ta\t{value}\n")
    path = tmp_path / "m.arpa"
    path.write_text(f"\\data\\\nngram 1=5\n\n\\1-grams:\n{uni}\n\\end\\\n")
    if field == "prob" and value == "inf":
        match = "log10 probability"
    else:
        match = "not a finite number"
    with pytest.raises(ValueError, match=match):
        collapse.NGramModel.from_arpa(str(path))


def test_tiny_probability_gives_infinite_perplexity(tmp_path):
    """A log10 prob of -1e11 is a valid ARPA value; the perplexity it implies is past the
    largest float, so it is inf (it used to end in OverflowError)."""
    path = tmp_path / "m.arpa"
    path.write_text(f"\\data\\\nngram 1=5\n\n\\1-grams:\n{UNIGRAMS.replace('-1.0', '-1e11', 1)}\n\\end\\\n")
    text = tmp_path / "t.txt"
    text.write_text("a zzz b\n")
    model = collapse.NGramModel.from_arpa(str(path))
    corpus = collapse.load_corpus(str(text))
    assert model.perplexity(corpus) == float("inf")
    rc, out, err = run_cli("ngram", "score", path, text, "--json")
    assert rc == 0, err
    assert "Infinity" in out or "inf" in out
    rc, out, err = run_cli("ngram", "score", path, text)
    assert rc == 0 and "inf" in out, err


def test_order_past_any_tool_is_refused(tmp_path):
    """65 orders (empty above 1): refused by the reader, not left to the sampler, which keeps
    a context's length in 8 bits."""
    counts = "ngram 1=5\n" + "".join(f"ngram {n}=0\n" for n in range(2, 66))
    sections = "".join(f"\\{n}-grams:\n\n" for n in range(2, 66))
    path = tmp_path / "m.arpa"
    path.write_text(f"\\data\\\n{counts}\n\\1-grams:\n{UNIGRAMS}\n{sections}\\end\\\n")
    with pytest.raises(ValueError, match="order above 64"):
        collapse.NGramModel.from_arpa(str(path))


def test_huge_positive_backoff(tmp_path):
    """Found by tools/fuzz.sh: a unigram backoff of log10 575773 is finite, so the file is
    read; the perplexity underflows to 0 and the sampler says its masses overflow."""
    uni = UNIGRAMS.replace("-0.4\ta\n", "-0.4\ta\t575773\n")
    path = tmp_path / "m.arpa"
    path.write_text(f"\\data\\\nngram 1=5\nngram 2=1\n\n\\1-grams:\n{uni}\n\\2-grams:\n-0.2\ta b\n\n\\end\\\n")
    model = collapse.NGramModel.from_arpa(str(path))
    text = tmp_path / "t.txt"
    text.write_text("a a a\n")
    assert model.perplexity(collapse.load_corpus(str(text))) == 0.0
    with pytest.raises(ValueError, match="overflow"):
        model.sample(3, seed=1)


def test_vertical_tab_and_form_feed_stay_inside_words(tmp_path):
    """Found by tools/fuzz.sh: the tokenizer keeps \\v and \\f inside words (as lmplz does)
    but the ARPA reader split on them, so a written model read back as another one. The
    reader now splits on kenlm's ARPA separators only (space, tab, CR)."""
    text = tmp_path / "t.txt"
    text.write_bytes(b"a\t!\r\nc \x0bd \x0c;\ne\n\n")
    corpus = collapse.load_corpus(str(text))
    model = collapse.NGramModel.fit(corpus, order=4)
    model.to_arpa(str(tmp_path / "m.arpa"))
    again = collapse.NGramModel.from_arpa(str(tmp_path / "m.arpa"))
    assert again.vocab.words == model.vocab.words
    assert list(again.score(corpus)) == list(model.score(corpus))
