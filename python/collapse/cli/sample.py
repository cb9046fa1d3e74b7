"""CLI: ``collapse ngram sample`` (ancestral sampling from an ARPA model)."""

from __future__ import annotations

import os

from ..errors import CollapseError


def register(subparsers) -> None:  # noqa: ANN001
    """Add ``sample`` to the ``collapse ngram`` actions."""
    p = subparsers.add_parser("sample", help="sample sequences from an ARPA model",
                              description="Draw sequences from <s> to </s> by exact ancestral sampling; writes one "
                                          "sequence per line, tokens joined by single spaces, without <s>/</s>.")
    p.add_argument("model", metavar="MODEL.arpa", help="n-gram model in ARPA format")
    p.add_argument("-n", "--num-sequences", type=int, required=True, dest="num_sequences",
                   help="number of sequences to draw")
    p.add_argument("--seed", type=int, required=True, help="random seed (sequence i uses stream (seed, i))")
    p.add_argument("--temperature", type=float, default=1.0, help="temperature (default 1)")
    p.add_argument("--top-k", type=int, default=0, dest="top_k", help="keep the k most probable words (0: all)")
    p.add_argument("--top-p", type=float, default=1.0, dest="top_p", help="nucleus mass to keep (default 1: all)")
    p.add_argument("--max-length", type=int, default=4096, dest="max_length",
                   help="maximum words per sequence, </s> excluded (default 4096)")
    p.add_argument("--threads", type=int, default=0, help="worker threads (0: all cores)")
    p.add_argument("-o", "--output", required=True, help="output text file (written atomically)")
    p.set_defaults(func=run)


def run(args) -> int:  # noqa: ANN001
    from ..ngram.model import NGramModel
    from ..ngram.sampler import check_sample_args

    # Check the arguments before the (possibly long) model read.
    check_sample_args(args.num_sequences, args.seed, args.temperature, args.top_k, args.top_p, args.max_length,
                      args.threads)
    if os.path.isdir(args.model):
        raise CollapseError(f"{args.model} is a directory, not an ARPA file")
    model = NGramModel.from_arpa(args.model)
    corpus = model.sample(args.num_sequences, seed=args.seed, temperature=args.temperature, top_k=args.top_k,
                          top_p=args.top_p, max_length=args.max_length, threads=args.threads)
    corpus.write_text(args.output)
    return 0
