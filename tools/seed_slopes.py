"""Per-seed collapse rate of a metric, per model, with a t-interval across seeds.

    python tools/seed_slopes.py RUN_DIR [--metric kl_truth] [--metric heldout_bits_per_word]

For every (model, paradigm) of RUN_DIR/metrics.csv and every seed: the metric at
generation 0 and at the last generation, the rise (last - generation 0) and the
least-squares slope over generations 0..last; then, per model, the mean over seeds and its
95% Student t-interval (mean +- t_{0.975, n-1} s / sqrt(n)), and with two models the
per-seed difference of rise and slope with its t-interval (seeds paired by number).
Needs scipy (the test extra) for the t quantile. Used for docs/hf.md ("Pretrained + real
prefix against scratch, unprompted").
"""

from __future__ import annotations

import argparse
import os
from typing import Dict, List, Sequence, Tuple

import numpy as np
import pandas as pd
from scipy import stats


def t_interval(values: Sequence[float], level: float = 0.95) -> Tuple[float, float, float]:
    v = np.asarray(values, dtype=float)
    mean = float(v.mean())
    if v.size < 2:
        return mean, float("nan"), float("nan")
    half = float(stats.t.ppf(0.5 + level / 2, v.size - 1) * v.std(ddof=1) / np.sqrt(v.size))
    return mean, mean - half, mean + half


def per_seed(frame: pd.DataFrame, metric: str) -> Dict[str, List[Tuple[int, float, float, float, float]]]:
    """model/paradigm -> [(seed, generation 0, last, rise, slope)] sorted by seed."""
    out: Dict[str, List[Tuple[int, float, float, float, float]]] = {}
    for (model, paradigm), g in frame.groupby(["model", "paradigm"]):
        rows = []
        for seed, s in g.groupby("seed"):
            s = s.sort_values("generation")
            x, y = s["generation"].to_numpy(float), s[metric].to_numpy(float)
            rows.append((int(seed), y[0], y[-1], y[-1] - y[0], float(np.polyfit(x, y, 1)[0])))
        out[f"{model} {paradigm}"] = sorted(rows)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("--metric", action="append")
    args = parser.parse_args()
    frame = pd.read_csv(os.path.join(args.run_dir, "metrics.csv"))
    frame = frame[frame["status"] == "ok"]
    last = int(frame["generation"].max())
    for metric in args.metric or ["kl_truth", "heldout_bits_per_word"]:
        print(f"## {metric} (generations 0..{last})\n")
        print("| model | seed | gen 0 | gen last | rise | slope / generation |")
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        table = per_seed(frame, metric)
        for key, rows in table.items():
            for seed, g0, gl, rise, slope in rows:
                print(f"| {key} | {seed} | {g0:.2f} | {gl:.2f} | {rise:.2f} | {slope:.2f} |")
            cols = np.array([r[1:] for r in rows])
            cells = [t_interval(cols[:, j]) for j in range(4)]
            print(f"| {key} | mean [95% t] | " + " | ".join(f"{m:.2f} [{lo:.2f}, {hi:.2f}]" for m, lo, hi in cells) + " |")
        keys = list(table)
        if len(keys) == 2 and [r[0] for r in table[keys[0]]] == [r[0] for r in table[keys[1]]]:
            a, b = (np.array([r[1:] for r in table[k]]) for k in keys)
            for j, name in ((2, "rise"), (3, "slope")):
                m, lo, hi = t_interval(a[:, j] - b[:, j])
                print(f"\n{keys[0]} - {keys[1]}, {name} (paired by seed): {m:.2f} [95% t: {lo:.2f}, {hi:.2f}]")
        print()


if __name__ == "__main__":
    main()
