"""CLI commands: ``collapse ngram estimate`` and ``collapse ngram score``."""

from __future__ import annotations

import json
import os
import sys
import time

from ..data.corpus import FORMATS, TOKENIZERS, load_corpus
from ..errors import CollapseError

SMOOTHINGS = ("mkn", "kn", "addk", "mle")


def register(subparsers) -> None:  # noqa: ANN001
    """Add this module's commands to subparsers."""
    est = subparsers.add_parser("estimate", help="estimate an n-gram model and write it as ARPA")
    est.add_argument("input", help="training text")
    est.add_argument("--order", type=int, required=True, help="n-gram order (1..8)")
    est.add_argument("--smoothing", choices=SMOOTHINGS, default="mkn",
                     help="mkn (modified Kneser-Ney, as lmplz; default), kn, addk, mle")
    est.add_argument("--add-k", type=float, default=1.0, dest="add_k", help="k for --smoothing addk (default 1)")
    _corpus_options(est)
    est.add_argument("--memory", "-S", default=None,
                     help="counting's memory budget, as lmplz's -S: 2G, 512M or 25%% of RAM (default 25%%); "
                          "past it, sorted runs spill to --temp-dir and are merged (same model)")
    est.add_argument("--temp-dir", "-T", default=None, dest="temp_dir",
                     help="where counting spills sorted runs (default $TMPDIR or /tmp); removed afterwards")
    est.add_argument("--prune", type=int, nargs="+", default=None, metavar="COUNT",
                     help="as lmplz's --prune: per order, remove n-grams seen at most COUNT times; "
                          "non-decreasing, the last repeated for higher orders (e.g. 0 1 1)")
    est.add_argument("-o", "--output", required=True, help="ARPA file to write")
    est.set_defaults(func=estimate)

    sc = subparsers.add_parser("score", help="perplexity of a text under an ARPA model")
    sc.add_argument("model", help="ARPA file")
    sc.add_argument("input", help="text to score")
    _corpus_options(sc)
    sc.add_argument("--json", action="store_true", help="print one JSON object")
    sc.set_defaults(func=score)


def _corpus_options(p) -> None:  # noqa: ANN001
    p.add_argument("--format", choices=FORMATS, default="lines", help="input format (default lines)")
    p.add_argument("--tokenizer", choices=TOKENIZERS, default="whitespace",
                   help="whitespace (as lmplz; default) or word")
    p.add_argument("--threads", type=int, default=0, help="threads (0: all cores)")


def estimate(args) -> int:  # noqa: ANN001
    from ..ngram.model import NGramModel

    t0 = time.perf_counter()
    corpus = load_corpus(args.input, format=args.format, tokenizer=args.tokenizer)
    model = NGramModel.fit(corpus, order=args.order, smoothing=args.smoothing, add_k=args.add_k,
                           threads=args.threads, memory=args.memory, temp_dir=args.temp_dir, prune=args.prune)
    out_dir = os.path.dirname(os.path.abspath(args.output))
    if not os.path.isdir(out_dir):
        raise CollapseError(f"output directory does not exist: {out_dir}")
    model.to_arpa(args.output, threads=args.threads)
    counts = " ".join(f"{n}={c}" for n, c in enumerate(model.num_ngrams(), 1))
    policy = ""
    if model.discount_policy and "fallback" in model.discount_policy:
        orders = [str(i + 1) for i, p in enumerate(model.discount_policy) if p == "fallback"]
        policy = f"; fallback discounts (0.5, 1, 1.5) at order(s) {','.join(orders)}"
    sys.stderr.write(f"wrote {args.output}: order {model.order} {model.smoothing}, n-grams {counts}{policy} "
                     f"({time.perf_counter() - t0:.2f}s)\n")
    return 0


def score(args) -> int:  # noqa: ANN001
    from ..ngram.model import NGramModel

    model = NGramModel.from_arpa(args.model)
    corpus = load_corpus(args.input, format=args.format, tokenizer=args.tokenizer, vocab=model.vocab, grow=False)
    res = model.evaluate(corpus, threads=args.threads)
    summary = {k: res[k] for k in ("perplexity", "log10_prob", "tokens", "sequences", "oov")}
    summary["order"] = model.order
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"perplexity {summary['perplexity']:.4f}  log10 prob {summary['log10_prob']:.4f}  "
              f"{summary['sequences']} sequences, {summary['tokens']} tokens, {summary['oov']} OOV")
    return 0
