"""The tail of real runs against Replace's law (docs/experiment.md, "The tail against the law").

Reads finished run directories (their tails.parquet, <cell>/extinction.parquet and the
committed samples) and prints, per model and paradigm, over the seeds (mean [min, max]):
each bucket's survival at the last generation; for the Replace cells, the share of the
types seen k times that died, their mean extinction generation, and the two laws: 2k ln(N/k)
(no horizon) and the mean over the types that die by the run's last generation
(collapse.experiment.tails.replace_extinction_law_within, its Galton-Watson form); and one
refit's offspring (the count in S_0 of R's types seen k times: mean, variance, share absent),
against the Poisson(k) the law assumes. With --figure: extinction generation against k for
the Replace cells of each model, with both laws.

    python bench/tail_law.py RUN_DIR [RUN_DIR ...] [--figure FILE.png] [--max-k 16]
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

import _path  # noqa: F401  (in-place build or installed package)


def cells(run_dir: str) -> list:
    from collapse.files import read_json

    return [c for c in read_json(os.path.join(run_dir, "manifest.json"))["cells"] if c.get("status") == "ok"]


def survival_table(run_dir: str):  # noqa: ANN201
    import pandas as pd

    df = pd.read_parquet(os.path.join(run_dir, "tails.parquet"))
    last = df[(df.generation == df.generation.max()) & (df.types > 0)]
    return last.groupby(["model", "paradigm", "bucket_low"]).survival.agg(["mean", "min", "max"])


def extinction_by_k(run_dir: str, cell: dict, max_k: int):  # noqa: ANN201
    import pandas as pd

    e = pd.read_parquet(os.path.join(run_dir, cell["id"], "extinction.parquet"))
    e = e[e.real_count <= max_k]
    g = e.groupby("real_count")
    return pd.DataFrame({"types": g.size(), "died": g.extinct_at.count() / g.size(),
                         "mean_extinct_at": g.extinct_at.mean().astype(float), "returned": g.returned.mean()})


def offspring(run_dir: str, cell: dict, ks=(1, 2, 3, 4)) -> dict:  # noqa: ANN001
    """{k: (mean, variance, share absent) of the count in S_0 of R's types seen k times}."""
    from collapse.experiment.config import load_config
    from collapse.experiment.loop import load_corpus_files, real_data
    from collapse.experiment.metrics import counts_by_reference

    real = real_data(load_config(os.path.join(run_dir, "config.toml"))).real
    c_real = np.bincount(real.tokens, minlength=len(real.vocab))
    c_s0, _ = counts_by_reference(load_corpus_files(os.path.join(run_dir, cell["id"], "gen_0000")), real.vocab)
    out = {}
    for k in ks:
        sel = np.flatnonzero(c_real == k)
        sel = sel[sel >= 3]
        x = c_s0[sel].astype(np.float64)
        out[k] = (x.mean(), x.var(), float(np.mean(x == 0)), real.num_tokens)
    return out


def main() -> int:
    import pandas as pd

    from collapse.experiment.tails import galton_watson_extinction, replace_extinction_law, replace_extinction_law_within

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--figure")
    ap.add_argument("--max-k", type=int, default=16)
    args = ap.parse_args()
    pd.set_option("display.width", 200)
    series = []
    for run_dir in args.runs:
        print(f"== {run_dir}: survival at the last generation, mean [min, max] over seeds")
        print(survival_table(run_dir).round(3).to_string())
        replace = [c for c in cells(run_dir) if c["paradigm"] == "replace"]
        last = max(c["generations_done"] for c in replace) - 1
        for model in sorted({c["model"] for c in replace}):
            mine = [c for c in replace if c["model"] == model]
            per_seed = pd.concat({c["seed"]: extinction_by_k(run_dir, c, args.max_k) for c in mine}, names=["seed"])
            agg = per_seed.groupby("real_count").agg(["mean", "min", "max"])
            off = [offspring(run_dir, c) for c in mine]
            N = off[0][1][3]
            k = agg.index.to_numpy()
            agg[("law_2k_ln", "")] = replace_extinction_law(N, k)
            agg[("law_within", "")] = replace_extinction_law_within(k, last)
            agg[("law_died", "")] = galton_watson_extinction(last + 1)[-1] ** k
            print(f"-- {model}, Replace, {len(mine)} seeds, generations 0..{last}, N = {N} (R's tokens)")
            print(agg.round(3).to_string())
            for kk in (1, 2, 3, 4):
                vals = np.array([o[kk][:3] for o in off])
                print(f"   k={kk}: count in S_0 mean {vals[:, 0].mean():.2f} [{vals[:, 0].min():.2f}, {vals[:, 0].max():.2f}]"
                      f", variance {vals[:, 1].mean():.2f}, absent {vals[:, 2].mean():.3f} "
                      f"[{vals[:, 2].min():.3f}, {vals[:, 2].max():.3f}] (Poisson({kk}): {np.exp(-kk):.3f})")
            series.append((f"{model} ({os.path.basename(run_dir.rstrip('/'))})", agg, N, last))
    if args.figure:
        draw(series, args.figure)
        print(f"figure: {args.figure}")
    return 0


def draw(series: list, path: str) -> None:
    from matplotlib.figure import Figure

    from collapse.experiment.tails import replace_extinction_law, replace_extinction_law_within

    fig = Figure(figsize=(11, 4.2))
    ax, ax2 = fig.subplots(1, 2)
    colours = ["C0", "C3", "C2", "C1"]
    from collapse.experiment.tails import galton_watson_extinction

    for (label, agg, N, last), colour in zip(series, colours):
        k = agg.index.to_numpy()
        d = agg[("died", "mean")]
        ax2.errorbar(k, d, yerr=np.clip([d - agg[("died", "min")], agg[("died", "max")] - d], 0, None), fmt="o", ms=4, capsize=2,
                     color=colour, label=f"{label} (seeds' range)")
        kk = np.arange(1, k.max() + 1)
        ax2.plot(kk, galton_watson_extinction(last + 1)[-1] ** kk, "-", color=colour, lw=1,
                 label=f"law: died by generation {last}")
        k = agg.index.to_numpy()
        m = agg[("mean_extinct_at", "mean")]
        lo, hi = agg[("mean_extinct_at", "min")], agg[("mean_extinct_at", "max")]
        ax.errorbar(k, m, yerr=np.clip([m - lo, hi - m], 0, None), fmt="o", ms=4, capsize=2, color=colour,
                    label=f"{label}: types that died (seeds' range)")
        kk = np.arange(1, k.max() + 1)
        ax.plot(kk, replace_extinction_law_within(kk, last), "-", color=colour, lw=1,
                label=f"law, types dying by generation {last}")
    N = series[0][2]
    kk = np.arange(1, max(a.index.max() for _, a, _, _ in series) + 1)
    ax.plot(kk, replace_extinction_law(N, kk), "k--", lw=1, label=rf"law without a horizon, $2k\ln(N/k)$, N = {N:,}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("count in R (k)")
    ax.set_ylabel("extinction generation (mean)")
    ax.set_title("Replace: extinction generation against count in R", fontsize=9)
    ax.legend(fontsize=6)
    ax2.set_xscale("log")
    ax2.set_xlabel("count in R (k)")
    ax2.set_ylabel("share of the types that died")
    ax2.set_ylim(-0.02, 1.02)
    ax2.set_title("Replace: share of R's types seen k times that died", fontsize=9)
    ax2.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=200)


if __name__ == "__main__":
    sys.exit(main())
