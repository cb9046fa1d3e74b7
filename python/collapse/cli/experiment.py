"""CLI commands: run, demo, plot."""

from __future__ import annotations

import json
import os
import shlex
import sys
import time

DEMO_PARADIGMS = ["replace", "accumulate", "accumulate-subsample", "fresh"]
EXIT_CELLS_ENDED = 3  # the run finished, but some cells ended early (their status and reason say why)


DEMO_SOURCES = ("grammar", "code")  # the embedded sources: stories, programs


def demo_config(generations: int = 20, source: str = "grammar") -> dict:
    """The demo: an embedded source (the story grammar, or the code grammar), trigram MKN,
    four paradigms, one seed."""
    return {
        "experiment": {"name": demo_name(source), "generations": generations, "seeds": [0],
                       "paradigms": DEMO_PARADIGMS, "alphas": [0.5], "workers": 2, "threads": 1},
        "data": {"source": source, "num_documents": 2000, "heldout_documents": 500, "seed": 0},
        "model": {"family": "ngram", "order": 3, "smoothing": "mkn"},
        "output": {"save_models": True},
    }


def demo_name(source: str) -> str:
    """The demo's name and default run directory under runs/: demo, demo-code."""
    return "demo" if source == "grammar" else f"demo-{source}"


def _positive_int(text: str) -> int:
    import argparse

    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {v}")
    return v


def summary_table(df) -> str:  # noqa: ANN001
    """Generation 0 (shared by every paradigm of the same model, order, filter and seed) and
    the last generation of every cell."""
    cols = ["heldout_bits_per_word", "kl_truth", "heldout_ppl", "vocab_size", "types_lost", "distinct_2",
            "kl_unigram"]
    cols = [c for c in cols if c in df.columns and df[c].notna().any()]
    short = {"heldout_bits_per_word": "bits/word", "heldout_ppl": "ppl (own)"}

    def fmt(x: float, width: int = 7) -> str:
        return f"{'-':>{width}}" if x != x else f"{x:>{width}g}"

    width = max([12] + [len(str(m)) + 2 for m in df["model"].unique()]) if "model" in df.columns else 12
    head = (f"{'model':<{width}}{'paradigm':<22}{'alpha':>7}{'order':>7}{'keep':>7}{'seed':>6}{'gen':>5}"
            + "".join(f"{short.get(c, c):>13}" for c in cols))
    lines = [head, "-" * len(head)]
    ended = df[df["status"] == "ended"] if "status" in df.columns else df.iloc[:0]
    df = df[df["status"] != "ended"] if "status" in df.columns else df
    g0 = df[df.generation == 0].copy()
    g0 = g0.loc[~g0[["model", "order", "filter_keep", "seed"]].fillna(-1).duplicated()]
    last = df[df.generation == df.generation.max()]
    for label, part in (("(all) gen 0", g0), (None, last)):
        for _, r in part.sort_values(["model", "paradigm", "alpha", "order", "filter_keep", "seed"]).iterrows():
            name = label or r["paradigm"]
            alpha = "-" if label else fmt(r["alpha"])
            cells = "".join(f"{r[c]:>13.4f}" if isinstance(r[c], float) else f"{r[c]:>13}" for c in cols)
            lines.append(f"{str(r['model']):<{width}}{name:<22}{alpha:>7}{fmt(r['order'])}{fmt(r['filter_keep'])}"
                         f"{int(r['seed']):>6}{int(r['generation']):>5}" + cells)
    if len(ended):
        lines.append("")
        lines.append(f"{len(ended)} cell(s) ended early:")
        for _, r in ended.sort_values(["model", "paradigm", "alpha", "order", "filter_keep", "seed"]).iterrows():
            lines.append(f"{str(r['model']):<{width}}{r['paradigm']:<22}{fmt(r['alpha'])}{fmt(r['order'])}{fmt(r['filter_keep'])}"
                         f"{int(r['seed']):>6}{int(r['generation']):>5}  {r['reason']}")
    return "\n".join(lines)


def cells_ended(df) -> int:  # noqa: ANN001
    return int((df["status"] == "ended").sum()) if "status" in df.columns else 0


def kept_line(word: str, out: str, resume_command: str) -> str:
    """The one line an interrupted run ends with: what its run directory keeps (from the
    manifest, rebuilt before this) and the command that continues it."""
    try:
        with open(os.path.join(out, "manifest.json"), encoding="utf-8") as f:
            cells = json.load(f)["cells"]
    except (OSError, ValueError, KeyError):
        return f"collapse: {word} before the run started; nothing kept in {out}\n"
    done = [c["generations_done"] for c in cells]
    kept, started = sum(done), sum(1 for n in done if n)
    return (f"collapse: {word}; {kept} generation{'s' * (kept != 1)} of {started} cell{'s' * (started != 1)} "
            f"kept in {out} ({len(cells)} in all); continue with: {resume_command}\n")


def cmd_run(args) -> int:  # noqa: ANN001
    from ..experiment.config import load_config, with_generations
    from ..experiment.loop import run_experiment
    from ..experiment.ranks import finish, is_main
    from .interrupt import interrupt_status

    cfg = load_config(args.config)
    if args.generations is not None:
        cfg = with_generations(cfg, args.generations)
    out = args.out or cfg.output.dir or os.path.join("runs", cfg.experiment.name)
    t0 = time.perf_counter()
    try:
        df = run_experiment(cfg, out=out, resume=args.resume)
    except KeyboardInterrupt as e:  # Ctrl-C or SIGTERM (collapse.cli.Terminated)
        finish(clean=False)
        word, status = interrupt_status(e)
        if is_main():
            extra = ["--generations", str(args.generations)] if args.generations is not None else []
            command = shlex.join(["collapse", "run", args.config, "--out", out, "--resume", *extra])
            sys.stderr.write(kept_line(word, out, command))
        return status
    except BaseException:
        finish(clean=False)
        raise
    finish()
    ended = cells_ended(df)
    if not is_main():  # under torchrun rank 0 alone reports
        return EXIT_CELLS_ENDED if ended else 0
    print(summary_table(df))
    note = f"; {ended} cell(s) ended early (exit status {EXIT_CELLS_ENDED})" if ended else ""
    print(f"\n{len(df)} rows in {time.perf_counter() - t0:.1f}s; run directory: {out} "
          f"(figure: {os.path.join(out, 'metrics.png')}; report: {os.path.join(out, 'report.html')}){note}")
    return EXIT_CELLS_ENDED if ended else 0


def cmd_demo(args) -> int:  # noqa: ANN001
    from ..experiment.loop import run_experiment
    from ..experiment.plot import plot_runs

    from .interrupt import interrupt_status

    out = args.out or os.path.join("runs", demo_name(args.source))
    t0 = time.perf_counter()
    try:
        df = run_experiment(demo_config(args.generations, args.source), out=out, resume=args.resume)
    except KeyboardInterrupt as e:  # Ctrl-C or SIGTERM
        word, status = interrupt_status(e)
        source = [] if args.source == "grammar" else ["--source", args.source]
        command = shlex.join(["collapse", "demo", *source, "--out", out, "--generations", str(args.generations),
                              "--resume"])
        sys.stderr.write(kept_line(word, out, command))
        return status
    elapsed = time.perf_counter() - t0
    png = os.path.join(out, "demo.png")
    plot_runs([out], png)
    pivot = df.pivot_table(index="generation", columns="paradigm", values="heldout_ppl")
    print("held-out perplexity (real text) per generation:")
    print(pivot.to_string(float_format=lambda x: f"{x:.3f}"))
    print()
    print(summary_table(df))
    ended = cells_ended(df)
    note = f"; {ended} cell(s) ended early" if ended else ""
    print(f"\n{len(df)} rows in {elapsed:.1f}s; metrics: {os.path.join(out, 'metrics.csv')}; plot: {png}; "
          f"report: {os.path.join(out, 'report.html')}{note}")
    return EXIT_CELLS_ENDED if ended else 0


def cmd_plot(args) -> int:  # noqa: ANN001
    from ..errors import CollapseError
    from ..experiment.plot import default_output, plot_runs
    from ..experiment.summary import plot_summary

    metrics = None
    if args.metric:
        metrics = [m for arg in args.metric for m in arg.split(",") if m]
    if args.x is None:
        if args.generation is not None or args.slope:
            raise CollapseError("--generation and --slope go with --x AXIS (a summary across a sweep axis)")
        output = args.output or default_output(args.run_dirs)
        fig = plot_runs(args.run_dirs, output, metrics, size=args.size, dpi=args.dpi, title=args.title,
                        logy=args.logy, seeds=args.seeds, paradigms=args.paradigms)
    else:
        output = args.output or os.path.join(args.run_dirs[0], f"summary-{args.x}.png")
        fig = plot_summary(args.run_dirs, args.x, output, metrics,
                           generation=args.generation if args.generation is not None else "last", slope=args.slope,
                           size=args.size, dpi=args.dpi, title=args.title, logy=args.logy, seeds=args.seeds,
                           paradigms=args.paradigms)
    for note in fig.notes:
        sys.stderr.write(f"collapse: {note}\n")
    skipped = f"; no values, no panel: {', '.join(fig.dropped)}" if fig.dropped else ""
    sys.stderr.write(f"wrote {' and '.join(fig.paths)} ({', '.join(fig.metrics)}; {args.dpi} dpi{skipped})\n")
    return 0


def _size(text: str) -> tuple:
    import argparse
    import math

    parts = text.split(",")
    try:
        w, h = (float(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be WIDTH,HEIGHT in inches, e.g. 7,4.5; got {text!r}") from None
    if not (math.isfinite(w) and math.isfinite(h) and w > 0 and h > 0):
        raise argparse.ArgumentTypeError(f"width and height must be positive inches, got {text!r}")
    return w, h


def _int_list(text: str) -> list:
    import argparse

    try:
        values = [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be comma-separated integers, got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError("give at least one value")
    return values


def _name_list(text: str) -> list:
    import argparse

    names = [p.strip() for p in text.split(",") if p.strip()]
    if not names:
        raise argparse.ArgumentTypeError("give at least one name")
    return names


def register(subparsers) -> None:  # noqa: ANN001
    """Add this module's commands to subparsers."""
    p = subparsers.add_parser("run", help="run the recursive-training experiment a TOML config describes")
    p.add_argument("config", metavar="CONFIG.toml")
    p.add_argument("--out", metavar="DIR", help="run directory (default: [output] dir, else runs/<name>)")
    p.add_argument("--resume", action="store_true",
                   help="continue a killed or finished run from its last finished generation (threads, workers, "
                        "executor and progress may change; a larger --generations extends it)")
    p.add_argument("--generations", type=_positive_int, default=None, metavar="G",
                   help="override experiment.generations (with --resume: extend the run to G)")
    p.set_defaults(func=cmd_run)

    p = subparsers.add_parser("demo", help="the experiment on an embedded source: stories or programs (no download)")
    p.add_argument("--source", choices=DEMO_SOURCES, default="grammar",
                   help="grammar: the story grammar (default); code: the code grammar's small programs")
    p.add_argument("--out", metavar="DIR", help="run directory (default runs/demo, runs/demo-code for --source code)")
    p.add_argument("--generations", type=_positive_int, default=20, metavar="G",
                   help="recursive generations after generation 0 (default 20)")
    p.add_argument("--resume", action="store_true", help="continue a killed demo run (or extend it: --generations)")
    p.set_defaults(func=cmd_demo)

    p = subparsers.add_parser("plot", help="plot metrics against generation for one or more run directories")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    p.add_argument("--metric", action="append", metavar="NAME",
                   help="metric column to plot (repeat or comma-separate; default: a standard set)")
    p.add_argument("-o", "--output", metavar="FILE.png",
                   help="PNG to write, with an SVG next to it (default: RUN_DIR/metrics.png for one run "
                        "directory; for several, metrics-with-<the others' names>.png in the first)")
    p.add_argument("--size", type=_size, metavar="W,H", help="figure size in inches (default: 4 x 2.9 per panel)")
    p.add_argument("--dpi", type=_positive_int, default=300, help="PNG resolution (default 300)")
    p.add_argument("--title", help="a title above the panels")
    p.add_argument("--logy", action="store_true", help="logarithmic y axes (panels with values <= 0 stay linear)")
    p.add_argument("--seeds", type=_int_list, metavar="S[,S]", help="plot these seeds only")
    p.add_argument("--paradigms", type=_name_list, metavar="P[,P]", help="plot these paradigms only")
    p.add_argument("--x", metavar="AXIS",  # checked by plot_summary (summary.AXES), which matplotlib's import waits for
                   help="a summary across a sweep axis instead of generations: alpha, params, order, filter_keep "
                        "or model; the "
                        "metric at --generation against it, mean over seeds with a 95%% bootstrap CI "
                        "(default: RUN_DIR/summary-AXIS.png)")
    p.add_argument("--generation", metavar="G|last", help="with --x: the generation to read (default last)")
    p.add_argument("--slope", action="store_true",
                   help="with --x: the metric's least-squares slope per generation over generations 0..G")
    p.set_defaults(func=cmd_plot)
