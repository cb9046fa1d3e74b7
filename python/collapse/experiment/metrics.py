"""Per-generation collapse metrics (definitions in docs/experiment.md, "Metrics").

Counting-heavy parts (distinct n-grams, and from them rep-n and diversity; within-document
repetition) run in C++ (``_core.ngram_diversity``); unigram counts are ``numpy.bincount``;
self-BLEU over a 100-document subset and the Zipf fit are numpy (``fieldstats``). Corpora with different
vocabularies are compared by word, through the real corpus's vocabulary.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, Optional

import numpy as np

from .. import _core
from ..data.corpus import Corpus, CorpusSummary
from .family import TrainedModel
from .fieldstats import self_bleu4, self_bleu_subset, zipf_exponent
from .scale import heldout_scale

# ref_ppl scores at most this many documents of S_t (its first ones: S_t's documents are
# independent draws, so they are a uniform sample); at 1M stories scoring all of S_t with a
# second model would cost a third of a generation (docs/experiment.md, "Metrics")
REF_PPL_DOCUMENTS = 100_000
RARE_MAX_COUNT = 2          # a real-corpus type is "rare" when it occurs at most this often
UNIGRAM_SMOOTHING = 0.5     # add-0.5 on both sides for kl_unigram (over the union of types)
METRIC_COLUMNS = (
    "heldout_bits_per_word", "heldout_ppl", "self_ppl", "entropy", "distinct_1", "distinct_2", "distinct_3", "distinct_4",
    "vocab_size", "types_lost", "train_vocab_size", "rare_mass", "kl_unigram", "tv_unigram", "repetition",
    "mean_length", "truncated_fraction", "kl_truth", "kl_truth_se", "kl_unigram_truth",
    "ref_ppl", "self_bleu4", "rep_2", "rep_3", "rep_4", "diversity", "zipf_exponent", "params",
)


def counts_by_reference(corpus: Corpus, reference_vocab, own=None) -> tuple:  # noqa: ANN001
    """(counts over reference_vocab ids, count of tokens whose word the reference lacks);
    ``own``: the corpus's counts over its own ids, when the caller has them."""
    if own is None:
        own = np.bincount(corpus.tokens, minlength=len(corpus.vocab))
    own = own.astype(np.float64)
    ids = corpus.vocab.map_to(reference_vocab).astype(np.int64)
    # <unk> of the corpus itself stays <unk>; other words the reference lacks are "novel"
    novel_mask = ids == 0
    novel_mask[0] = False
    novel = float(own[novel_mask].sum())
    counts = np.bincount(ids[~novel_mask], weights=own[~novel_mask], minlength=len(reference_vocab))
    return counts, novel


def entropy_bits(counts: np.ndarray) -> float:
    c = counts[counts > 0]
    if c.size == 0:
        return 0.0
    p = c / c.sum()
    return float(-(p * np.log2(p)).sum())


def unigram_kl_tv(real: np.ndarray, synth: np.ndarray, synth_novel: float) -> tuple:
    """KL(real || synth) in bits with add-0.5 smoothing over the union of types, and the
    total variation distance (unsmoothed). Specials (<unk>, <s>, </s>) are excluded except
    that novel synthetic words count as one extra type."""
    r = np.append(real[3:], 0.0)
    s = np.append(synth[3:], synth_novel)
    keep = (r > 0) | (s > 0)
    r, s = r[keep], s[keep]
    if r.sum() == 0 or s.sum() == 0:
        return math.nan, math.nan
    tv = 0.5 * float(np.abs(r / r.sum() - s / s.sum()).sum())
    rs = (r + UNIGRAM_SMOOTHING) / (r.sum() + UNIGRAM_SMOOTHING * r.size)
    ss = (s + UNIGRAM_SMOOTHING) / (s.sum() + UNIGRAM_SMOOTHING * s.size)
    kl = float((rs * np.log2(rs / ss)).sum())
    return kl, tv


def diversity(corpus: Corpus, threads: int = 1) -> Dict[str, float]:
    d = _core.ngram_diversity(corpus.tokens, corpus.offsets, 4, 4, threads)
    out = {}
    for n in range(1, 5):
        total = int(d["total"][n - 1])
        out[f"distinct_{n}"] = float(d["distinct"][n - 1]) / total if total else math.nan
    out["repetition"] = float(d["repeated"]) / d["repeat_total"] if d["repeat_total"] else 0.0
    # rep-n and diversity as in SimCTG / contrastive decoding (Su et al. 2022), over the whole
    # sample (n-grams within documents), as fractions rather than percentages
    for n in range(2, 5):
        out[f"rep_{n}"] = 1.0 - out[f"distinct_{n}"]
    out["diversity"] = out["distinct_2"] * out["distinct_3"] * out["distinct_4"]
    return out


def documents(corpus: Corpus, indices: np.ndarray) -> list:
    """The token ids of the chosen documents."""
    return [corpus.tokens[corpus.offsets[i]:corpus.offsets[i + 1]] for i in indices]


@dataclass
class Reference:
    """What every generation is compared with: the real training corpus, its held-out
    text and (for an embedded source) the exact source."""

    real: Corpus
    heldout: Corpus
    real_counts: np.ndarray
    rare: np.ndarray                         # bool over real vocab ids: count in [1, RARE_MAX_COUNT]
    heldout_true_logprobs: Optional[np.ndarray] = None  # exact ln p(doc) of every held-out doc (embedded source)
    truth_unigram: Optional[np.ndarray] = None     # exact unigram marginal over real vocab ids (embedded source)
    truth_missing: Optional[np.ndarray] = None     # exact marginal of source words absent from the real corpus

    @classmethod
    def build(cls, real: Corpus, heldout: Corpus, grammar=None, heldout_logprobs=None) -> "Reference":  # noqa: ANN001
        counts = np.bincount(real.tokens, minlength=len(real.vocab)).astype(np.float64)
        rare = (counts >= 1) & (counts <= RARE_MAX_COUNT)
        rare[:3] = False
        ref = cls(real, heldout, counts, rare)
        if grammar is not None:
            exact = grammar.exact().unigram()
            tu = np.zeros(len(real.vocab))
            for i, w in enumerate(real.vocab.words):
                tu[i] = exact.get(w, 0.0)
            ref.truth_unigram = tu
            present = set(real.vocab.words)
            ref.truth_missing = np.array([p for w, p in exact.items() if w not in present], dtype=np.float64)
            if heldout_logprobs is not None:
                ref.heldout_true_logprobs = np.asarray(heldout_logprobs, dtype=np.float64)
        return ref


def generation_metrics(model, train, synthetic: Corpus, ref: Reference,  # noqa: ANN001
                       threads: int = 1, reference_model=None, seed: int = 0) -> Dict[str, float]:  # noqa: ANN001
    """Every metric of one generation: model M_t (trained on ``train``, a Corpus or the
    CorpusSummary of one a family holds as counts) and its sample S_t.

    ``reference_model``: generation 0's model M_0, which scores S_t for ref_ppl (NaN
    without one); ``seed`` draws the self-BLEU subset of S_t.

    heldout_bits_per_word and kl_truth come from the model's document_log_probs (one scale
    for every family: collapse.experiment.scale); heldout_ppl and self_ppl are in the family's
    own units (n-gram: per word + ``</s>``; transformer: per BPE token + end-of-text). A
    model may add family-specific columns through extra_metrics(heldout).

    ``model`` is a TrainedModel (collapse.experiment.family), whose optional hooks all have
    defaults; an object written against the duck-typed protocol of earlier versions is
    viewed as one (TrainedModel.adapt)."""
    m: Dict[str, float] = {}
    is_reference = reference_model is model
    model = TrainedModel.adapt(model)
    lp, ppl = model.score_documents(ref.heldout)  # both in one pass where the family can (the transformer)
    m["heldout_ppl"] = float(ppl)
    scale = heldout_scale(model, ref.heldout, ref.heldout_true_logprobs, doc_log_probs=lp) if lp is not None else {
        "heldout_bits_per_word": math.nan, "kl_truth": math.nan, "kl_truth_se": math.nan}
    m.update(scale)
    # S_t under its own model M_t and under the fixed M_0, side by side (their ratio alone
    # mixes the sample's drift with the model's)
    m["self_ppl"] = float(model.perplexity(synthetic)) if synthetic.num_documents else math.nan
    whole = synthetic.num_documents <= REF_PPL_DOCUMENTS
    if is_reference and whole:  # generation 0: the same number
        m["ref_ppl"] = m["self_ppl"]
    elif reference_model is not None and synthetic.num_documents:
        head = synthetic if whole else synthetic.select(np.arange(REF_PPL_DOCUMENTS))
        m["ref_ppl"] = float(reference_model.perplexity(head))
    else:
        m["ref_ppl"] = math.nan
    m["self_bleu4"] = self_bleu4(documents(synthetic, self_bleu_subset(synthetic.num_documents, seed)))
    own = np.bincount(synthetic.tokens, minlength=len(synthetic.vocab))
    counts, novel = counts_by_reference(synthetic, ref.real.vocab, own)
    all_counts = np.append(counts[3:], novel)
    m["entropy"] = entropy_bits(all_counts)
    m.update(diversity(synthetic, threads))
    m["vocab_size"] = int(np.count_nonzero(own[3:]))
    m["zipf_exponent"] = zipf_exponent(own[3:])
    real_types = ref.real_counts[3:] > 0
    m["types_lost"] = int(np.count_nonzero(real_types & (counts[3:] == 0)))
    # D_t as a Corpus, or as the CorpusSummary of one a family holds as merged counts
    m["train_vocab_size"] = (CorpusSummary.of(train) if isinstance(train, Corpus) else train).words_used
    total = float(synthetic.num_tokens)
    m["rare_mass"] = float(counts[ref.rare].sum()) / total if total else math.nan
    m["kl_unigram"], m["tv_unigram"] = unigram_kl_tv(ref.real_counts, counts, novel)
    m["mean_length"] = total / synthetic.num_documents if synthetic.num_documents else math.nan  # words
    # documents the sampler cut at its length limit (n-gram: max_length words; transformer:
    # max_new_tokens BPE tokens); NaN for a sample that does not say
    cut = synthetic.truncated
    m["truncated_fraction"] = float(cut.mean()) if cut is not None and cut.size else math.nan
    # Exact-source columns (embedded sources only: grammar, code): see docs/experiment.md.
    m["kl_unigram_truth"] = math.nan
    if ref.truth_unigram is not None:
        # over every grammar word (those missing from the real corpus have synthetic count 0)
        # plus one bucket for synthetic words the grammar cannot produce
        p = np.concatenate([ref.truth_unigram[3:], ref.truth_missing, [0.0]])
        s = np.concatenate([counts[3:], np.zeros(ref.truth_missing.size), [novel]])
        keep = (p > 0) | (s > 0)
        p, s = p[keep], s[keep]
        q = (s + UNIGRAM_SMOOTHING) / (s.sum() + UNIGRAM_SMOOTHING * s.size)
        nz = p > 0
        m["kl_unigram_truth"] = float((p[nz] * np.log2(p[nz] / q[nz])).sum())
    # the model's size: a network's parameters; an n-gram model's stored n-grams (num_parameters)
    params = model.num_parameters()
    m["params"] = int(params) if params is not None else math.nan
    m.update(model.extra_metrics(ref.heldout))
    return m
