"""Benchmark: what a generation costs to write, the old way against the new default, in one run.

"old": every model saved and S_t as gzip-6 text ([output] model_every = 1, corpus_format =
"text", compression = 6: what every run wrote before model_every and the Arrow format).
"new": the defaults (models of generation 0, every 10th and the last; S_t as Arrow token
ids, zstd). Each setting runs the same config (n-gram, the loop's own write_seconds and
seconds columns); the table gives per-generation means, the run directory's size, and the
ratio old / new. A breakdown then times the pieces of one commit (S_0 and M_0 of the first
config) one by one: where the time goes.

Configs: the demo (embedded grammar, four paradigms) and, with --tinystories FILE, the real
TinyStories sample (stories separated by <|endoftext|> lines; 10% carved out as held-out).

    python bench/bench_write.py [--generations 20] [--tinystories /work/shared/data/tinystories/train-head.txt]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
import _path  # noqa: E402,F401  (in-place build or installed package)

from collapse import run_experiment  # noqa: E402
from collapse.cli.experiment import demo_config  # noqa: E402
from collapse.experiment.config import parse_config  # noqa: E402

SETTINGS = {
    "old": {"save_models": True, "model_every": 1, "corpus_format": "text", "compression": 6},
    "new": {},  # the defaults
}


def tinystories_config(path: str, generations: int) -> dict:
    return {
        "experiment": {"name": "ngram-tinystories", "generations": generations, "seeds": [0],
                       "paradigms": ["replace", "accumulate-subsample"], "threads": 1},
        "data": {"source": "file", "path": path, "format": "tinystories", "tokenizer": "word", "lowercase": True,
                 "heldout_fraction": 0.1},
        "model": {"family": "ngram", "orders": [3], "smoothing": "mkn"},
    }


def directory_bytes(root: str) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(root) for f in files)


def run_setting(raw: dict, output: dict, workers: int, tmp: str) -> dict:
    raw = json.loads(json.dumps(raw))
    raw["experiment"].update(workers=workers, progress=False)
    raw["output"] = dict(output)
    run_dir = os.path.join(tmp, "run")
    t0 = time.perf_counter()
    df = run_experiment(parse_config(raw), out=run_dir)
    wall = time.perf_counter() - t0
    size = directory_bytes(run_dir)
    models = sum(f == "model.arpa.gz" for _, _, files in os.walk(run_dir) for f in files)
    shutil.rmtree(run_dir)
    return {"rows": len(df), "compute_s": float(df["seconds"].mean()), "write_s": float(df["write_seconds"].mean()),
            "write_max_s": float(df["write_seconds"].max()), "wall_s": wall, "bytes": size, "models": models}


def breakdown(raw: dict, tmp: str) -> dict:
    """The pieces of one commit of generation 0, timed one by one (S_0 and M_0 of the config)."""
    from collapse.experiment.loop import (_write_arrow, corpus_text_bytes, load_corpus_files, real_data,
                                          save_corpus)
    from collapse.files import write_bytes
    from collapse.ngram.family import NGramFamily, deterministic_gzip

    cfg = parse_config(raw)
    real = real_data(cfg).real
    model = NGramFamily(cfg.model.orders[0], cfg.model.smoothing).fit(real, seed=0)
    synth = model.sample(real.num_documents, seed=1)
    model.end_sampling()
    out: dict = {"documents": synth.num_documents, "tokens": synth.num_tokens}

    def timed(name: str, fn):  # noqa: ANN001, ANN202
        t0 = time.perf_counter()
        result = fn()
        out[name] = time.perf_counter() - t0
        return result

    text = timed("text: render (corpus_text_bytes)", lambda: corpus_text_bytes(synth))
    gz = timed("text: gzip-6", lambda: deterministic_gzip(text, 6))
    timed("text: write + fsync", lambda: write_bytes(os.path.join(tmp, "s.txt.gz"), gz))
    timed("arrow: write (zstd-6) + fsync", lambda: _write_arrow(os.path.join(tmp, "s.arrow"), synth, 6))
    for fmt in ("text", "arrow"):
        d = os.path.join(tmp, fmt)
        os.makedirs(d)
        save_corpus(d, synth, 6, fmt)
        timed(f"{fmt}: read back (load_corpus_files)", lambda: load_corpus_files(d))  # noqa: B023
    arpa = os.path.join(tmp, "m.arpa")
    timed("model: ARPA text (to_arpa)", lambda: model.model.to_arpa(arpa))
    with open(arpa, "rb") as f:
        data = f.read()
    for level in (6, 1):
        timed(f"model: gzip-{level} of the ARPA", lambda: deterministic_gzip(data, level))  # noqa: B023
    timed("model: save (to_arpa, gzip-6, write + fsync)", lambda: model.save(os.path.join(tmp, "model")))
    out["bytes: text gzip-6"] = len(gz)
    out["bytes: arrow zstd"] = os.path.getsize(os.path.join(tmp, "s.arrow"))
    out["bytes: ARPA"] = len(data)
    out["bytes: ARPA gzip-6"] = os.path.getsize(os.path.join(tmp, "model", "model.arpa.gz"))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--generations", type=int, default=20)
    ap.add_argument("--tinystories", default=None, help="TinyStories training text (<|endoftext|> separated)")
    ap.add_argument("--workers", type=int, default=1, help="cells in parallel (1: timings free of each other)")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "bench_write.json"))
    args = ap.parse_args()

    configs = {"demo": demo_config(args.generations)}
    if args.tinystories:
        configs["tinystories"] = tinystories_config(os.path.abspath(args.tinystories), args.generations)
    results: dict = {"generations": args.generations, "workers": args.workers, "settings": SETTINGS, "runs": {}}
    header = (f"{'config':12s} {'setting':7s} {'compute s/gen':>13s} {'write s/gen':>11s} {'write max':>9s} "
              f"{'write/compute':>13s} {'models':>6s} {'MB':>7s} {'wall s':>7s}")
    print(header)
    with tempfile.TemporaryDirectory(prefix="bench-write-") as tmp:
        for name, raw in configs.items():
            res = {s: run_setting(raw, out, args.workers, tmp) for s, out in SETTINGS.items()}
            for s, r in res.items():
                print(f"{name:12s} {s:7s} {r['compute_s']:13.3f} {r['write_s']:11.3f} {r['write_max_s']:9.3f} "
                      f"{r['write_s'] / r['compute_s']:13.2f} {r['models']:6d} {r['bytes'] / 1e6:7.1f} "
                      f"{r['wall_s']:7.1f}")
            o, n = res["old"], res["new"]
            res["ratio_old_new"] = {"write_s": o["write_s"] / n["write_s"], "bytes": o["bytes"] / n["bytes"],
                                    "wall_s": o["wall_s"] / n["wall_s"]}
            print(f"{name:12s} old/new: write x{res['ratio_old_new']['write_s']:.1f}, "
                  f"size x{res['ratio_old_new']['bytes']:.1f}, wall x{res['ratio_old_new']['wall_s']:.2f}")
            results["runs"][name] = res
        first = next(reversed(configs.values()))  # the real data when given
        parts = breakdown(first, tmp)
    print(f"\nwhere one commit's time goes (generation 0 of {next(reversed(configs))}: "
          f"{parts['documents']} documents, {parts['tokens']} tokens)")
    for k, v in parts.items():
        if k.startswith("bytes"):
            print(f"  {k:48s} {v / 1e6:9.2f} MB")
        elif k not in ("documents", "tokens"):
            print(f"  {k:48s} {v:9.3f} s")
    results["breakdown"] = parts
    results["machine"] = {"cpus": os.cpu_count(), "platform": platform.platform(),
                          "load": os.getloadavg() if hasattr(os, "getloadavg") else None,
                          "python": sys.version.split()[0]}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(results, f, indent=2)
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
