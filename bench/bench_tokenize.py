"""Benchmark: loading whitespace-tokenized text into a Corpus. The Python reference
(str split + Corpus.from_documents, the pre-C++ path) against the C++ core
(collapse.load_corpus, _core.tokenize_whitespace) and two Cython implementations of the
same scan (bench/_tokenize_cy.pyx, compiled into a temporary folder when Cython is
installed; they are measured here only, not part of the package).

Corpora:
  train-head  ../shared/data/tinystories/train-head.txt (2.1 MB, ~0.4M tokens, 16.5k lines)
  x25         train-head repeated 25 times into a temporary file (~52 MB, ~10M tokens;
              the vocabulary stays that of train-head)

Rows:
  python e2e        iter_lines + Corpus.from_documents(whitespace_tokenize): file -> Corpus
  C++ e2e           collapse.load_corpus(path): file -> Corpus (read, UTF-8 check, scan, vocab)
  python ts e2e     format="tinystories" as before: line-by-line story splitter, Python tokenizer
  C++ ts e2e        collapse.load_corpus(path, format="tinystories"): regex story split,
                    Corpus.from_texts -> C++ tokenizer
  C++ scan          _core.tokenize_whitespace(bytes): in-memory bytes -> arrays + new words
                    (threads=0: all cores, chunks of >= 1 MB; the e2e rows use this too)
  C++ scan 1 thr    the same on one thread (the fair comparison with the Cython rows)
  cython dict scan  C loop, Python dict keyed by bytes slices
  cython umap scan  C loop, libcpp unordered_map[string, uint32]
Every output is checked equal to the Python reference. train-head: best of 3; x25: one run.

  python bench/bench_tokenize.py [--no-cython] [--out bench/results/tokenize.json]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
import _path  # noqa: E402,F401  (in-place build or installed package)
sys.path.insert(0, str(ROOT / "tests"))
DATA = ROOT.parent / "shared" / "data" / "tinystories"

import collapse  # noqa: E402
from collapse import _core  # noqa: E402
from collapse.data.corpus import Corpus, iter_lines, whitespace_tokenize  # noqa: E402
from test_tokenize_fast import tinystories_reference  # noqa: E402  (the former line-by-line splitter)


def build_cython(tmp: pathlib.Path):
    """Compile bench/_tokenize_cy.pyx into tmp and import it; None when Cython is absent."""
    if shutil.which("cythonize") is None:
        return None
    shutil.copy(ROOT / "bench" / "_tokenize_cy.pyx", tmp)
    subprocess.run(["cythonize", "-3", "-i", "-q", "_tokenize_cy.pyx"], cwd=tmp, check=True,
                   capture_output=True)
    sys.path.insert(0, str(tmp))
    import _tokenize_cy  # type: ignore

    return _tokenize_cy


def timed(fn, repeats):
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def same(a: Corpus, tokens, offsets, words) -> bool:
    return (np.array_equal(a.tokens, tokens) and np.array_equal(a.offsets, offsets)
            and a.vocab.words == list(words))


def bench_corpus(path: pathlib.Path, repeats: int, cy) -> dict:
    data = path.read_bytes()
    rows = {}
    t, ref = timed(lambda: Corpus.from_documents(map(whitespace_tokenize, iter_lines(str(path)))), repeats)
    rows["python e2e"] = t
    t, c = timed(lambda: collapse.load_corpus(str(path)), repeats)
    assert same(c, ref.tokens, ref.offsets, ref.vocab.words), "C++ e2e differs"
    rows["C++ e2e"] = t
    t, ts_ref = timed(lambda: Corpus.from_documents(
        map(whitespace_tokenize, tinystories_reference(path.read_bytes().decode("utf-8")))), repeats)
    rows["python ts e2e"] = t
    t, c = timed(lambda: collapse.load_corpus(str(path), format="tinystories"), repeats)
    assert same(c, ts_ref.tokens, ts_ref.offsets, ts_ref.vocab.words), "C++ tinystories differs"
    rows["C++ ts e2e"] = t
    specials = ["<unk>", "<s>", "</s>"]
    t, (tok, off, new) = timed(lambda: _core.tokenize_whitespace(data, None, specials, True), repeats)
    assert same(ref, tok, off, specials + new), "C++ scan differs"
    rows["C++ scan"] = t
    t, (tok, off, new) = timed(lambda: _core.tokenize_whitespace(data, None, specials, True, threads=1), repeats)
    assert same(ref, tok, off, specials + new), "C++ 1-thread scan differs"
    rows["C++ scan 1 thr"] = t
    if cy is not None:
        for name, fn in (("cython dict scan", cy.tokenize_dict), ("cython umap scan", cy.tokenize_umap)):
            t, (tok, off, new) = timed(lambda: fn(data, specials, True), repeats)
            assert same(ref, tok, off, specials + new), f"{name} differs"
            rows[name] = t
    return {"cores": os.cpu_count(), "bytes": len(data), "tokens": ref.num_tokens, "documents": ref.num_documents,
            "words": len(ref.vocab), "repeats": repeats, "seconds": rows}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "tokenize.json"))
    ap.add_argument("--no-cython", action="store_true", help="skip the Cython rows")
    ap.add_argument("--copies", type=int, default=25, help="copies of train-head in the large corpus")
    args = ap.parse_args()
    head = DATA / "train-head.txt"
    if not head.exists():
        print(f"train-head.txt not found at {head}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = pathlib.Path(tmpdir)
        cy = None if args.no_cython else build_cython(tmp)
        big = tmp / f"train-head-x{args.copies}.txt"
        big.write_bytes(head.read_bytes() * args.copies)
        results = {"train-head": bench_corpus(head, 3, cy), f"x{args.copies}": bench_corpus(big, 1, cy)}

    names = list(results)
    print(f"{'':18}" + "".join(f"{n + ' s':>14}{'vs python':>11}" for n in names))
    rows = list(results[names[0]]["seconds"])
    for row in rows:
        line = f"{row:18}"
        for n in names:
            secs = results[n]["seconds"]
            anchor = secs["python ts e2e"] if "ts" in row else secs["python e2e"]
            line += f"{secs[row]:14.4f}{anchor / secs[row]:10.1f}x"
        print(line)
    for n in names:
        r = results[n]
        print(f"{n}: {r['cores']} cores, {r['bytes'] / 1e6:.1f} MB, {r['tokens']:,} tokens, {r['documents']:,} lines, {r['words']:,} words")
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
