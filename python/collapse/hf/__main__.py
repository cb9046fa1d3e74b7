"""python -m collapse.hf make-tiny DIR [--model-type gpt2|llama|gpt_neox|opt|gpt_neo] ...: a tiny random model folder."""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from ..errors import CollapseError


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m collapse.hf", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    tiny = sub.add_parser("make-tiny", help="write a tiny random causal LM + a BPE of the story grammar into DIR")
    tiny.add_argument("directory", metavar="DIR")
    tiny.add_argument("--model-type", default="gpt2", help="gpt2 | llama | gpt_neox | opt | gpt_neo (default gpt2)")
    tiny.add_argument("--hidden-size", type=int, default=32)
    tiny.add_argument("--layers", type=int, default=2)
    tiny.add_argument("--heads", type=int, default=4)
    tiny.add_argument("--positions", type=int, default=256)
    tiny.add_argument("--vocab-size", type=int, default=400, help="BPE vocabulary (default 400)")
    tiny.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        from .tiny import make_tiny

        out = make_tiny(args.directory, args.model_type, hidden_size=args.hidden_size, layers=args.layers,
                        heads=args.heads, positions=args.positions, vocab_size=args.vocab_size, seed=args.seed)
    except (CollapseError, ValueError, OSError) as e:
        sys.stderr.write(f"collapse.hf: {str(e).splitlines()[0] if str(e) else type(e).__name__}\n")
        return 2
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
