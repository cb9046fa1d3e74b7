"""Benchmark: peak host memory of BPE-encoding the training stories (the transformer's fit).

"before" is the former path: every text in a list, one encode_batch over all of them (a
Hugging Face Encoding object per story), a numpy array per story, then an int64 flat
array. "after" is TextTokenizer.encode_documents as fit() calls it now: the texts streamed
from the Corpus, 1,024 at a time, into an int32 buffer that grows in place.

Each measurement runs in a fresh process: the grammar stories (a word-level Corpus, as the
loop passes it) are built and the tokenizer (a byte-level BPE of 8,192, trained once by the
parent on 20,000 stories) is loaded first; then the peak-RSS counter is reset
(/proc/self/clear_refs, Linux) and the encoding runs; the figure is the peak RSS during the
encoding minus the RSS before it, against the size of the final int32 token array.

  python bench/bench_bpe_memory.py [--stories 1000000] [--before-stories 100000]
                                   [--out bench/results/bpe_memory.json]

"before" at 1,000,000 stories needs many GB (its Encoding objects), so by default it is
measured at --before-stories and the table says so; pass --before-stories 1000000 on a
machine with the memory to spare.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import _path  # noqa: F401

CHILD = r"""
import json, os, sys, time
import numpy as np
from collapse.data.storygrammar import sample_stories
from collapse.transformer.tokenizer import TextTokenizer

mode, n, tok_path = sys.argv[1], int(sys.argv[2]), sys.argv[3]

def status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(key)

corpus = sample_stories(n, 0)
tok = TextTokenizer.from_file(tok_path)
base = status("VmRSS")
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # reset the peak (VmHWM) to the current RSS
t0 = time.perf_counter()
if mode == "after":
    flat, offsets = tok.encode_documents(corpus.texts())
else:  # the former path
    texts = list(corpus.texts())
    encs = tok._tok.encode_batch(texts, add_special_tokens=False)
    parts = [np.asarray(e.ids, dtype=np.int64) for e in encs]
    lengths = np.fromiter((p.size + 1 for p in parts), dtype=np.int64, count=len(parts))
    offsets = np.zeros(len(parts) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    flat = np.full(int(offsets[-1]), tok.eot_id, dtype=np.int64)
    for p, start in zip(parts, offsets[:-1]):
        flat[start:start + p.size] = p
seconds = time.perf_counter() - t0
peak = status("VmHWM")
print(json.dumps({"mode": mode, "stories": n, "tokens": int(flat.size), "seconds": seconds,
                  "rss_before": base, "peak_rss": peak, "peak_increase": peak - base,
                  "int32_array_bytes": int(flat.size) * 4, "returned_array_bytes": int(flat.nbytes)}))
"""


def measure(mode: str, n: int, tok_path: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", CHILD, mode, str(n), tok_path], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    if proc.returncode != 0:
        raise SystemExit(f"{mode} {n}: failed\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stories", type=int, default=1_000_000)
    ap.add_argument("--before-stories", type=int, default=100_000)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "bpe_memory.json"))
    args = ap.parse_args()

    from collapse.data.storygrammar import sample_stories
    from collapse.transformer.tokenizer import TextTokenizer

    with tempfile.TemporaryDirectory() as tmp:
        tok_path = os.path.join(tmp, "tokenizer.json")
        TextTokenizer.train_bpe(sample_stories(20_000, 1).texts(), 8192).save(tok_path)
        runs = []
        sizes = sorted({args.before_stories, args.stories})
        for n in sizes:
            if n <= args.before_stories:
                runs.append(measure("before", n, tok_path))
            runs.append(measure("after", n, tok_path))

    mib = 1 << 20
    print(f"{platform.machine()}, {os.cpu_count()} cores; BPE 8192 on grammar stories")
    print(f"{'path':7} {'stories':>10} {'BPE tokens':>12} {'int32 array MiB':>16} {'peak RSS increase MiB':>22} "
          f"{'ratio':>6} {'seconds':>8}")
    for r in runs:
        r["ratio_to_int32_array"] = r["peak_increase"] / r["int32_array_bytes"]
        print(f"{r['mode']:7} {r['stories']:>10,} {r['tokens']:>12,} {r['int32_array_bytes'] / mib:>16,.1f} "
              f"{r['peak_increase'] / mib:>22,.1f} {r['ratio_to_int32_array']:>6.2f} {r['seconds']:>8.1f}")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump({"machine": platform.machine(), "cores": os.cpu_count(), "date": time.strftime("%Y-%m-%d"),
                   "runs": runs}, f, indent=2)
        f.write("\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
