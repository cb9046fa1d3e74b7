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
    tiny.add_argument("--pretrain-stories", type=int, default=0, metavar="N",
                      help="then train the model on N stories of the embedded grammar (the hf family's own "
                           "training), making a pretrained folder (default 0: random weights)")
    tiny.add_argument("--pretrain-epochs", type=int, default=2, help="epochs of that training (default 2)")
    tiny.add_argument("--pretrain-seed", type=int, default=None,
                      help="seed of the pretraining stories and training (default 9100001: a raw "
                           "seed, not one a study draws its data from)")
    args = parser.parse_args(argv)
    try:
        from .tiny import PRETRAIN_SEED, make_tiny

        out = make_tiny(args.directory, args.model_type, hidden_size=args.hidden_size, layers=args.layers,
                        heads=args.heads, positions=args.positions, vocab_size=args.vocab_size, seed=args.seed,
                        pretrain_stories=args.pretrain_stories, pretrain_epochs=args.pretrain_epochs,
                        pretrain_seed=PRETRAIN_SEED if args.pretrain_seed is None else args.pretrain_seed)
    except (CollapseError, ValueError, OSError) as e:
        sys.stderr.write(f"collapse.hf: {str(e).splitlines()[0] if str(e) else type(e).__name__}\n")
        return 2
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
