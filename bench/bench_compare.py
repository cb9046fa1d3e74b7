"""Benchmark: the comparison study (configs/compare.toml) end to end, and its time per generation per family.

Runs ``collapse run CONFIG --out DIR`` as a subprocess (the command a user types), times
its wall clock, then reads the run's own timing columns to give, per model and family,
the seconds per generation (fit, sample, metrics, total) and the generation count.
There is no anchor to compare against: the question is whether the study fits its budget
(20 minutes on 2 cores), and where its time goes.

    python bench/bench_compare.py [--config configs/compare.toml] [--out DIR] [--json FILE]
    python bench/bench_compare.py --from-run DIR --wall-seconds S   # tabulate a finished run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
import _path  # noqa: E402,F401  (in-place build or installed package)

import pandas as pd  # noqa: E402

BUDGET_SECONDS = 20 * 60


def per_family(df: pd.DataFrame) -> list:
    rows = []
    for (model, family), part in df.groupby(["model", "family"], sort=True):
        gen0 = part[part.generation == 0]
        later = part[part.generation > 0]
        rows.append({
            "model": model, "family": family, "cells": int(part[["paradigm", "seed"]].drop_duplicates().shape[0]),
            "generations_computed": int(len(later) + gen0.drop_duplicates("seed").shape[0]),
            "seconds_per_generation": float(later["seconds"].mean()) if len(later) else float("nan"),
            "fit_seconds": float(later["fit_seconds"].mean()) if len(later) else float("nan"),
            "sample_seconds": float(later["sample_seconds"].mean()) if len(later) else float("nan"),
            "metrics_seconds": float(later["metrics_seconds"].mean()) if len(later) else float("nan"),
            "generation0_seconds": float(gen0["seconds"].max()) if len(gen0) else float("nan"),
            "total_seconds": float(later["seconds"].sum() + gen0.drop_duplicates("seed")["seconds"].sum()),
        })
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=os.path.join(HERE, "..", "configs", "compare.toml"))
    ap.add_argument("--out", help="run directory (default: a temporary one, removed afterwards)")
    ap.add_argument("--from-run", metavar="DIR", help="tabulate a finished run instead of running one")
    ap.add_argument("--wall-seconds", type=float, help="with --from-run: the wall time measured for it")
    ap.add_argument("--json", default=os.path.join(HERE, "results", "compare.json"))
    args = ap.parse_args()

    tmp = None
    cpu = None
    if args.from_run:
        run_dir, wall = args.from_run, args.wall_seconds
    else:
        run_dir = args.out or (tmp := tempfile.mkdtemp(prefix="bench-compare-"))
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (os.path.join(HERE, "..", "python"), env.get("PYTHONPATH", ""))
                                            if p)
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "collapse", "run", args.config, "--out", run_dir], env=env)
        wall = time.perf_counter() - t0
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # the run and its worker processes
        cpu = usage.ru_utime + usage.ru_stime
        if proc.returncode != 0:
            print(f"collapse run failed with exit code {proc.returncode}", file=sys.stderr)
            return 1
    df = pd.read_csv(os.path.join(run_dir, "metrics.csv"))
    fams = per_family(df)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\nstudy {os.path.relpath(args.config) if not args.from_run else run_dir}: wall time "
          f"{'-' if wall is None else f'{wall:.1f} s'} (budget {BUDGET_SECONDS} s), load average now {load:.1f}")
    if cpu is not None:
        # on a shared machine the wall time includes waiting for a core; the CPU time over
        # the cores used is what an idle 2-core machine would need at least
        print(f"CPU time of the run and its workers: {cpu:.1f} s = {cpu / 2:.1f} s per core on 2 cores")
    head = f"{'model':<16}{'family':<13}{'cells':>6}{'gens':>6}{'s/gen':>9}{'fit':>8}{'sample':>8}{'metrics':>9}{'gen0 s':>8}{'total s':>9}"
    print(head + "\n" + "-" * len(head))
    for r in fams:
        print(f"{r['model']:<16}{r['family']:<13}{r['cells']:>6}{r['generations_computed']:>6}"
              f"{r['seconds_per_generation']:>9.2f}{r['fit_seconds']:>8.2f}{r['sample_seconds']:>8.2f}"
              f"{r['metrics_seconds']:>9.2f}{r['generation0_seconds']:>8.2f}{r['total_seconds']:>9.1f}")
    result = {"benchmark": "compare", "config": os.path.abspath(args.config), "wall_seconds": wall,
              "cpu_seconds": cpu,
              "budget_seconds": BUDGET_SECONDS, "within_budget": None if wall is None else wall <= BUDGET_SECONDS,
              "families": fams, "cpu_count": os.cpu_count(), "load_average_at_end": load,
              "platform": platform.platform(), "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2)
    print(f"\nJSON: {args.json}")
    if tmp:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
