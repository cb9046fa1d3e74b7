"""CLI command: ``collapse simulate`` (the theory simulator, run-directory output)."""

from __future__ import annotations

import argparse
import os
import sys

from ..errors import CollapseError


def register(subparsers) -> None:  # noqa: ANN001
    """Add this module's commands to subparsers."""
    p = subparsers.add_parser(
        "simulate", help="theory simulator: the categorical collapse process, many trials",
        description="Simulate the categorical collapse process (a unigram model over K outcomes refit by MLE "
                    "from N samples each generation) and write a run directory (config.toml, manifest.json, "
                    "metrics.csv/.parquet, events.csv).")
    p.add_argument("--K", type=int, default=None, help="number of outcomes (for --p0 zipf/uniform)")
    p.add_argument("--N", type=int, required=True, help="sample size per generation")
    p.add_argument("--generations", type=int, required=True, help="refits G (generations 0..G reported)")
    p.add_argument("--trials", type=int, default=100, help="independent trials (default 100)")
    p.add_argument("--paradigm", default="replace",
                   help="replace | accumulate | accumulate-subsample | mix | fresh (default replace)")
    p.add_argument("--alpha", type=float, default=None, help="synthetic fraction for mix and fresh, in [0, 1]")
    p.add_argument("--p0", default="zipf", help="zipf | uniform | FILE.npy (default zipf)")
    p.add_argument("--zipf-s", type=float, default=1.0, help="Zipf exponent for --p0 zipf (default 1)")
    p.add_argument("--tail-fraction", type=float, default=0.1,
                   help="tail set: the rarest fraction of p0's outcomes (default 0.1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="threads (0: all cores)")
    p.add_argument("--executor", default="local", help="local | ray")
    p.add_argument("--address", default=None, help="Ray address to connect to (default: start a local Ray)")
    p.add_argument("--save-final-p", action="store_true", help="also write final_p.npy (trials x K)")
    p.add_argument("--out", required=True, help="run directory to write")
    p.set_defaults(func=run)


def _load_p0(args: argparse.Namespace):  # noqa: ANN202
    import numpy as np

    from ..simulate import make_p0

    if args.p0 in ("zipf", "uniform"):
        if args.K is None:
            raise CollapseError(f"--p0 {args.p0} needs --K")
        return make_p0(args.p0, args.K, args.zipf_s)
    if not args.p0.endswith(".npy"):
        raise CollapseError(f"--p0 must be zipf, uniform or a .npy file, got {args.p0!r}")
    if not os.path.exists(args.p0):
        raise CollapseError(f"no such file: {args.p0}")
    try:
        p0 = np.load(args.p0, allow_pickle=False)
    except ValueError as e:
        raise CollapseError(f"cannot read {args.p0}: {e}") from None
    if args.K is not None and p0.size != args.K:
        raise CollapseError(f"--K {args.K} does not match the {p0.size} outcomes of {args.p0}")
    return p0


def run(args: argparse.Namespace) -> int:
    import pandas as pd

    from ..simulate import simulate, write_run

    p0 = _load_p0(args)
    result = simulate(process="categorical", p0=p0, N=args.N, generations=args.generations, trials=args.trials,
                      paradigm=args.paradigm, alpha=args.alpha, seed=args.seed, threads=args.threads,
                      executor=args.executor, address=args.address, tail_fraction=args.tail_fraction,
                      keep_final_p=args.save_final_p)
    result.config["p0"] = args.p0 if args.p0 in ("zipf", "uniform") else os.path.abspath(args.p0)
    if args.p0 == "zipf":
        result.config["zipf_s"] = args.zipf_s
    write_run(result, args.out, save_final_p=args.save_final_p)
    with pd.option_context("display.width", 120, "display.max_columns", 20, "display.precision", 4):
        sys.stdout.write(f"{args.paradigm}: K={result.config['K']} N={args.N} G={args.generations} "
                         f"trials={args.trials} seed={args.seed} -> {args.out}\n")
        sys.stdout.write("means over trials:\n")
        sys.stdout.write(result.summary().to_string() + "\n")
    return 0
