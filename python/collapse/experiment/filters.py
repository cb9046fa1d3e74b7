"""Quality filters for synthetic data ([filter] in the config).

A generation that needs ``k`` synthetic documents samples ``ceil(oversample * k)``
candidates per round (round r uses seed derive_seed(seed, r)), scores each candidate's
per-token perplexity under the **generation-0 model** (trained on the real corpus), and
keeps, in sampled order:

- method = "perplexity": the candidates whose perplexity is <= max_perplexity (if given),
  then the best keep_fraction of the round's candidates (ties broken by sample order);
- dedup = true: candidates whose token sequence equals an already kept one are dropped.

Rounds repeat until k documents are kept (the first k are used), at most max_rounds;
otherwise the run stops with an error naming the filter setting to relax. So the filtered
corpus always has the size the paradigm needs.
"""

from __future__ import annotations

import math
from typing import Dict, Optional, Tuple

import numpy as np

from .. import _core
from ..data.corpus import Corpus, concatenate
from ..errors import CollapseError
from .config import FilterTable
from .family import RunContext, TrainedModel


def document_perplexities(model, corpus: Corpus) -> np.ndarray:  # noqa: ANN001
    lp = TrainedModel.adapt(model).document_log_probs(corpus)
    if lp is None:
        raise CollapseError("filter.method: this model family cannot score single documents")
    lp = np.asarray(lp, dtype=np.float64)
    return np.exp(-lp / (corpus.lengths() + 1.0))


def filtered_sample(model, reference_model, needed: int, seed: int, flt: FilterTable,  # noqa: ANN001
                    keep: Optional[float], context: Optional[RunContext] = None) -> Tuple[Corpus, Dict[str, float]]:
    """``needed`` documents from ``model`` that pass the filter, and filter statistics;
    context: the loop's for this generation (collapse.experiment.family.RunContext)."""
    per_round = int(math.ceil(flt.oversample * needed))
    kept_parts = []
    kept = 0
    seen = set()
    drawn = 0
    passed = 0
    for r in range(flt.max_rounds):
        cand = model.sample(per_round, seed=_core.derive_seed(seed, r), context=context)
        drawn += cand.num_documents
        mask = np.ones(cand.num_documents, dtype=bool)
        if flt.method == "perplexity":
            ppl = document_perplexities(reference_model, cand)
            if flt.max_perplexity is not None:
                mask &= ppl <= flt.max_perplexity
            if keep is not None and keep < 1.0:
                best = int(math.ceil(keep * cand.num_documents))
                order = np.lexsort((np.arange(ppl.size), ppl))  # by ppl, then by position
                top = np.zeros_like(mask)
                top[order[:best]] = True
                mask &= top
        if flt.dedup:
            for i in np.flatnonzero(mask):
                key = cand.document(i).tobytes()
                if key in seen:
                    mask[i] = False
                else:
                    seen.add(key)
        passed += int(mask.sum())
        idx = np.flatnonzero(mask)[:needed - kept]
        kept_parts.append(cand.select(idx))
        kept += idx.size
        if kept >= needed:
            out = kept_parts[0] if len(kept_parts) == 1 else concatenate(kept_parts)
            # pass rate: candidates that passed / candidates drawn (the last round may pass
            # more than are used)
            return out, {"filter_drawn": float(drawn), "filter_pass_rate": passed / drawn}
    raise CollapseError(f"filter: only {kept} of {needed} documents passed after {flt.max_rounds} rounds; "
                        "raise filter.keep_fraction / filter.max_perplexity or filter.max_rounds")
