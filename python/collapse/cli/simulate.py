"""CLI command: ``collapse simulate`` (the theory simulator, run-directory output)."""

from __future__ import annotations

import argparse
import os
import sys

from ..errors import CollapseError


def register(subparsers) -> None:  # noqa: ANN001
    """Add this module's commands to subparsers."""
    p = subparsers.add_parser(
        "simulate", help="theory simulator: categorical, Gaussian or n-gram collapse process, many trials",
        description="Simulate the categorical collapse process (a unigram model over K outcomes refit by MLE "
                    "from N samples each generation), the Gaussian process (--process gaussian: a d-dimensional "
                    "Gaussian refit by maximum likelihood), or the n-gram process (--process ngram: a source "
                    "n-gram model, recursive fit and sampling), and write a run directory (config.toml, "
                    "manifest.json, metrics.csv/.parquet, events.csv).")
    p.add_argument("--process", default="categorical", help="categorical | gaussian | ngram (default categorical)")
    p.add_argument("--K", type=int, default=None, help="number of outcomes (for --p0 zipf/uniform)")
    p.add_argument("--N", type=int, required=True, help="sample size per generation")
    p.add_argument("--generations", type=int, required=True, help="refits G (generations 0..G reported)")
    p.add_argument("--trials", type=int, default=100, help="independent trials (default 100)")
    p.add_argument("--paradigm", default="replace",
                   help="replace | accumulate | accumulate-subsample | mix | fresh | weighted (default replace; "
                        "weighted: categorical and gaussian only)")
    p.add_argument("--alpha", type=float, default=None, help="synthetic fraction for mix and fresh, in [0, 1]")
    p.add_argument("--weight", type=float, default=None,
                   help="weighted: weight w of the estimate from fresh real data, in [0, 1]")
    p.add_argument("--p0", default="zipf", help="zipf | uniform | FILE.npy (default zipf)")
    p.add_argument("--zipf-s", type=float, default=1.0, help="Zipf exponent for --p0 zipf (default 1)")
    p.add_argument("--zipf-offset", type=float, default=0.0,
                   help="Zipf-Mandelbrot offset q for --p0 zipf: p_i ~ (i + q)^-s (default 0: Zipf)")
    p.add_argument("--contribution", type=float, default=None,
                   help="synthetic draws per generation as a fraction c of N: round(c N) (accumulate, "
                        "accumulate-subsample: c in (0, 1]; weighted, gaussian only: c > 0, He-Xu-Cheng's m)")
    p.add_argument("--tail-fraction", type=float, default=0.1,
                   help="tail set: the rarest fraction of p0's outcomes (default 0.1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="threads (0: all cores)")
    p.add_argument("--executor", default="local", help="local | ray")
    p.add_argument("--address", default=None, help="Ray address to connect to (default: start a local Ray)")
    p.add_argument("--save-final-p", action="store_true", help="also write final_p.npy (trials x K)")
    p.add_argument("--record-every", type=int, default=1,
                   help="keep metrics for generations 0, k, 2k, ..., G only (default 1: all)")
    p.add_argument("--record", default="last",
                   help="last | all: also write every recorded generation's fit to fits.npz (categorical: p; "
                        "gaussian: mean and covariance)")
    p.add_argument("--out", required=True, help="run directory to write")
    ga = p.add_argument_group("Gaussian process (--process gaussian); the truth is N(0, I) unless given")
    ga.add_argument("--dim", type=int, default=None, help="dimension d (default 1, or that of --mean/--cov)")
    ga.add_argument("--mean", default=None, help="the true mean as a .npy file (d numbers)")
    ga.add_argument("--cov", default=None, help="the true covariance as a .npy file (d x d, positive definite)")
    ga.add_argument("--ddof", type=int, default=0,
                    help="covariance divisor n - ddof: 0 the ML fit (default), 1 the unbiased (np.cov's)")

    ng = p.add_argument_group("n-gram process (--process ngram); N counts sequences")
    ng.add_argument("--source-arpa", default=None, help="the source model as an ARPA file")
    ng.add_argument("--source-text", default=None, help="fit the source on this text (one document per line)")
    ng.add_argument("--source-order", type=int, default=2, help="order of the source fit on --source-text")
    ng.add_argument("--source-smoothing", default="mkn", help="smoothing of the source fit on --source-text")
    ng.add_argument("--order", type=int, default=2, help="order of the recursively fit models (default 2)")
    ng.add_argument("--smoothing", default="mkn", help="smoothing of the recursively fit models (default mkn)")
    ng.add_argument("--heldout", type=int, default=2000, help="held-out source sequences for the cross-entropy")
    ng.add_argument("--max-length", type=int, default=256, help="cap on sampled sequence length (words)")
    p.set_defaults(func=run)


def _load_p0(args: argparse.Namespace):  # noqa: ANN202
    import numpy as np

    from ..theory.categorical import make_p0

    if args.p0 in ("zipf", "uniform"):
        if args.K is None:
            raise CollapseError(f"--p0 {args.p0} needs --K")
        return make_p0(args.p0, args.K, args.zipf_s, args.zipf_offset)
    if not args.p0.endswith(".npy"):
        raise CollapseError(f"--p0 must be zipf, uniform or a .npy file, got {args.p0!r}")
    if args.zipf_offset != 0:
        raise CollapseError("--zipf-offset is only used by --p0 zipf")
    if not os.path.exists(args.p0):
        raise CollapseError(f"no such file: {args.p0}")
    try:
        p0 = np.load(args.p0, allow_pickle=False)
    except ValueError as e:
        raise CollapseError(f"cannot read {args.p0}: {e}") from None
    if args.K is not None and p0.size != args.K:
        raise CollapseError(f"--K {args.K} does not match the {p0.size} outcomes of {args.p0}")
    return p0


def _run_ngram(args: argparse.Namespace):  # noqa: ANN202
    from ..data.corpus import load_corpus
    from ..ngram.model import NGramModel
    from ..theory import simulate

    if args.contribution is not None or args.zipf_offset != 0 or args.record != "last":
        raise CollapseError("--contribution, --zipf-offset and --record are not used by --process ngram")
    if (args.source_arpa is None) == (args.source_text is None):
        raise CollapseError("--process ngram needs exactly one of --source-arpa and --source-text")
    source = source_corpus = None
    if args.source_arpa is not None:
        source = NGramModel.from_arpa(args.source_arpa)
    else:
        if not os.path.exists(args.source_text):
            raise CollapseError(f"no such file: {args.source_text}")
        source_corpus = load_corpus(args.source_text)
    result = simulate(process="ngram", N=args.N, generations=args.generations, trials=args.trials,
                      paradigm=args.paradigm, alpha=args.alpha, seed=args.seed, threads=args.threads,
                      executor=args.executor, source=source, source_corpus=source_corpus,
                      source_order=args.source_order, source_smoothing=args.source_smoothing, order=args.order,
                      smoothing=args.smoothing, heldout=args.heldout, max_length=args.max_length,
                      weight=args.weight)
    result.config["source"] = os.path.abspath(args.source_arpa or args.source_text)
    return result


def _load_npy(path: str, what: str):  # noqa: ANN202
    import numpy as np

    if not path.endswith(".npy"):
        raise CollapseError(f"--{what} must be a .npy file, got {path!r}")
    if not os.path.exists(path):
        raise CollapseError(f"no such file: {path}")
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as e:
        raise CollapseError(f"cannot read {path}: {e}") from None


def _run_gaussian(args: argparse.Namespace):  # noqa: ANN202
    from ..theory import simulate

    if args.p0 != "zipf" or args.K is not None or args.zipf_offset != 0:
        raise CollapseError("--p0, --K and --zipf-offset are not used by --process gaussian "
                            "(it takes --dim, --mean, --cov)")
    mean = None if args.mean is None else _load_npy(args.mean, "mean")
    cov = None if args.cov is None else _load_npy(args.cov, "cov")
    return simulate(process="gaussian", dim=args.dim, mean=mean, cov=cov, N=args.N, generations=args.generations,
                    trials=args.trials, paradigm=args.paradigm, alpha=args.alpha, weight=args.weight,
                    seed=args.seed, threads=args.threads, executor=args.executor,
                    record_every=args.record_every, ddof=args.ddof, contribution=args.contribution,
                    record=args.record)


def run(args: argparse.Namespace) -> int:
    from ..theory import simulate
    from ..theory.result import write_run

    if args.process == "gaussian":
        result = _run_gaussian(args)
        write_run(result, args.out)
        _print_summary(f"gaussian {args.paradigm}: dim={result.config['dim']} N={args.N}", args, result)
        return 0
    if args.dim is not None or args.mean is not None or args.cov is not None:
        raise CollapseError("--dim, --mean and --cov are for --process gaussian")
    if args.ddof != 0:
        raise CollapseError("--ddof is for --process gaussian")
    if args.process == "ngram":
        result = _run_ngram(args)
        write_run(result, args.out)
        _print_summary(f"ngram {args.paradigm}: N={args.N}", args, result)
        return 0
    if args.process != "categorical":
        raise CollapseError(f"unknown process {args.process!r} (expected categorical, gaussian or ngram)")
    p0 = _load_p0(args)
    result = simulate(process="categorical", p0=p0, N=args.N, generations=args.generations, trials=args.trials,
                      paradigm=args.paradigm, alpha=args.alpha, seed=args.seed, threads=args.threads,
                      executor=args.executor, address=args.address, tail_fraction=args.tail_fraction,
                      keep_final_p=args.save_final_p, record_every=args.record_every, weight=args.weight,
                      contribution=args.contribution, record=args.record)
    result.config["p0"] = args.p0 if args.p0 in ("zipf", "uniform") else os.path.abspath(args.p0)
    if args.p0 == "zipf":
        result.config["zipf_s"] = args.zipf_s
        result.config["zipf_offset"] = args.zipf_offset
    write_run(result, args.out, save_final_p=args.save_final_p)
    _print_summary(f"{args.paradigm}: K={result.config['K']} N={args.N}", args, result)
    return 0


def _print_summary(head: str, args, result) -> None:  # noqa: ANN001
    import pandas as pd

    with pd.option_context("display.width", 120, "display.max_columns", 20, "display.precision", 4):
        sys.stdout.write(f"{head} G={args.generations} trials={args.trials} seed={args.seed} -> {args.out}\n")
        sys.stdout.write("means over trials:\n")
        sys.stdout.write(result.summary().to_string() + "\n")
