"""The real data of an experiment: training corpus R, held-out text, fresh real documents (grammar or files).

grammar: R, the held-out set and each generation's fresh documents are independent
samples of the story grammar (seeds derived from data.seed); the exact probability of
every held-out story is known.

file: the documents of data.path are shuffled once (data.seed); held-out text is
data.heldout_path, or else the first heldout_fraction of the shuffled documents; R is the
next data.num_documents documents (all the rest when not given); whatever is left is the
pool of fresh real documents. Fresh generation t (t >= 1) takes pool documents
[(t-1) k, t k) where k is its real share; when the pool is too small for the configured
generations the run stops before it starts, with an error naming data.num_documents.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional

import numpy as np

from .. import _core
from ..data.corpus import Corpus, iter_documents
from ..data.storygrammar import get_grammar
from ..errors import CollapseError
from .config import ExperimentConfig
from .metrics import Reference
from .paradigms import synthetic_part

TAG_REAL, TAG_HELDOUT, TAG_FRESH, TAG_SHUFFLE = 1, 2, 3, 4


def read_texts(path: str, fmt: str, field_name: str) -> List[str]:
    return list(iter_documents(path, fmt, field_name))


@dataclass
class RealData:
    real: Corpus
    heldout: Corpus
    reference: Reference
    fresh: Callable[[int, int], Corpus]
    describe: Dict[str, object] = field(default_factory=dict)
    grammar: Optional[object] = None


def load_real_data(cfg: ExperimentConfig) -> RealData:
    d = cfg.data
    if d.source == "grammar":
        g = get_grammar(d.num_names, d.zipf, d.continue_prob)
        real, _ = g.sample(d.num_documents, _core.derive_seed(d.seed, TAG_REAL))
        heldout, heldout_lp = g.sample(d.heldout_documents, _core.derive_seed(d.seed, TAG_HELDOUT))
        fresh_seed = _core.derive_seed(d.seed, TAG_FRESH)

        def fresh(t: int, k: int) -> Corpus:
            return g.sample(k, _core.derive_seed(fresh_seed, t))[0]

        ref = Reference.build(real, heldout, grammar=g, heldout_logprobs=heldout_lp)
        desc = {"source": "grammar", "grammar": g.describe()}
        data = RealData(real, heldout, ref, fresh, desc, g)
    else:
        texts = read_texts(d.path, d.format, d.field)
        if not texts:
            raise CollapseError(f"data.path: {d.path} holds no documents")
        order = np.random.Generator(np.random.Philox(_core.derive_seed(d.seed, TAG_SHUFFLE))).permutation(len(texts))
        if d.heldout_path is not None:
            held_texts = read_texts(d.heldout_path, d.format, d.field)
            rest = order
        else:
            h = max(1, int(round(d.heldout_fraction * len(texts))))
            held_texts = [texts[i] for i in order[:h]]
            rest = order[h:]
        n = len(rest) if d.num_documents is None else d.num_documents
        if n > len(rest) or n < 1:
            raise CollapseError(f"data.num_documents: {d.path} has only {len(rest)} documents for training, "
                                f"asked for {n}")
        train_idx, pool_idx = rest[:n], rest[n:]

        def corpus_of(ts: List[str]) -> Corpus:
            return Corpus.from_texts(ts, tokenizer=d.tokenizer, lowercase=d.lowercase)

        real = corpus_of([texts[i] for i in train_idx])
        heldout = corpus_of(held_texts)
        if "fresh" in cfg.experiment.paradigms:
            k_max = n - synthetic_part(min(cfg.experiment.alphas), n)
            needed = k_max * cfg.experiment.generations
            if needed > len(pool_idx):
                raise CollapseError(f"data.num_documents: fresh needs {needed} unused documents for "
                                    f"{cfg.experiment.generations} generations, {d.path} has {len(pool_idx)} left "
                                    f"after {n} training documents; lower data.num_documents or generations")
        pool = [texts[i] for i in pool_idx]

        def fresh(t: int, k: int) -> Corpus:
            part = pool[(t - 1) * k:t * k]
            if len(part) < k:
                raise CollapseError("data.num_documents: the pool of fresh real documents ran out")
            return corpus_of(part)

        ref = Reference.build(real, heldout)
        desc = {"source": "file", "path": d.path, "format": d.format, "pool_documents": len(pool)}
        data = RealData(real, heldout, ref, fresh, desc)
    data.describe.update({"train_documents": data.real.num_documents, "train_tokens": data.real.num_tokens,
                          "heldout_documents": data.heldout.num_documents,
                          "heldout_tokens": data.heldout.num_tokens})
    return data
