"""The n-gram collapse process: recursive estimation and sampling from a source n-gram model.

A source model (a collapse.NGramModel, given or fit on a corpus) plays the truth. Per
trial: a finite real corpus R of N sequences is sampled from the source; generation 1 is
the model fit on R; generation t + 1 is fit on the paradigm's corpus (documents are the
units; the same definitions as the categorical process):

  replace               S_t: N sequences sampled from model t
  accumulate            R + S_1 + ... + S_t
  accumulate-subsample  N documents drawn without replacement from R + S_1 + ... + S_t
  mix(alpha)            round(alpha N) sequences from model t + the rest drawn without
                        replacement from R (a fresh subset each generation)
  fresh(alpha)          round(alpha N) sequences from model t + the rest newly sampled
                        from the source

Distance to the source, per generation, on one held-out sample H of `heldout` sequences
drawn from the source once per run (the same H for every trial and generation):

  cross_entropy    -sum_H ln p_t(x) / (tokens + sequences), nats per token, </s> counted.
                   Words the model never saw are scored with its <unk> probability divided
                   evenly among the source words it lacks, so p_t is a proper distribution
                   over the source's words and the quantity is a true cross-entropy.
  cross_entropy_kenlm  the same with each unknown word given the whole <unk> probability
                   (the kenlm / perplexity convention; not a proper cross-entropy).
  source_entropy   the source's own log-loss on H (the same estimator of its entropy rate).
  kl_to_source     cross_entropy - source_entropy: a Monte Carlo estimate, on H, of the
                   per-token KL rate KL(source || model t) (exact in expectation over H, per
                   token of H); kl_se is its standard error (ratio estimator, by sequence).
  perplexity       exp(cross_entropy_kenlm), kenlm's perplexity of model t on H.
  oov_rate         fraction of H's words the model lacks.

and of the data generation t was fit on (NaN at generation 0): support (distinct words),
unigram_entropy (nats, of the word frequencies, </s> excluded), mean_length (words).
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Optional

import numpy as np

from . import _core
from .corpus import Corpus
from .errors import CollapseError

NGRAM_TAG = 0x53494D4E47524D  # "SIMNGRM"
HELDOUT_TAG = 0x48454C44  # "HELD"
_REAL, _SYNTHETIC, _SUBSAMPLE, _MIX_REAL, _FRESH = 1, 2, 3, 4, 5
LN10 = math.log(10.0)


def _join(parts: List[Corpus]) -> Corpus:
    """Concatenate corpora that share one vocabulary (no remapping needed)."""
    parts = [p for p in parts if p.num_documents > 0] or parts[:1]
    vocab = parts[0].vocab
    tokens = np.concatenate([p.tokens for p in parts])
    offs, base = [np.zeros(1, dtype=np.int64)], 0
    for p in parts:
        offs.append(p.offsets[1:] + base)
        base += p.num_tokens
    return Corpus(tokens, np.concatenate(offs), vocab)


def _empty(vocab) -> Corpus:  # noqa: ANN001
    return Corpus(np.zeros(0, np.uint32), np.zeros(1, np.int64), vocab)


class _Scorer:
    """Log-losses on the held-out sample H, as defined in the module docstring."""

    def __init__(self, source, heldout: Corpus, threads: int) -> None:  # noqa: ANN001
        self.heldout = heldout
        self.threads = threads
        self.denominator = heldout.num_tokens + heldout.num_documents
        if self.denominator == 0:
            raise CollapseError("the held-out sample is empty")
        self.lengths = heldout.lengths().astype(np.float64) + 1.0
        self.source_words = set(source.vocab.words[3:])
        self.source_ln = source.evaluate(heldout, threads=threads)["log10_probs"] * LN10
        self.source_entropy = -float(self.source_ln.sum()) / self.denominator

    def score(self, model) -> Dict[str, float]:  # noqa: ANN001
        ev = model.evaluate(self.heldout, threads=self.threads)
        ln_kenlm = ev["log10_probs"] * LN10
        # per-sequence count of words the model lacks: they share its <unk> probability
        known = np.zeros(len(self.heldout.vocab), dtype=bool)
        model_words = model.vocab.words
        lookup = {w: True for w in model_words[3:]}
        for i, w in enumerate(self.heldout.vocab.words):
            known[i] = i >= 3 and w in lookup
        unknown_tok = ~known[self.heldout.tokens]
        cum = np.concatenate([[0.0], np.cumsum(unknown_tok, dtype=np.float64)])
        per_seq_unknown = cum[self.heldout.offsets[1:]] - cum[self.heldout.offsets[:-1]]
        lost = len(self.source_words - set(model_words[3:]))
        ln_proper = ln_kenlm - per_seq_unknown * math.log(max(lost, 1))
        ce = -float(ln_proper.sum()) / self.denominator
        ce_kenlm = -float(ln_kenlm.sum()) / self.denominator
        d = self.source_ln - ln_proper
        kl = float(d.sum()) / self.denominator
        n = d.size
        resid = d - kl * self.lengths
        kl_se = math.sqrt(n * float((resid ** 2).sum()) / max(n - 1, 1)) / self.denominator if n > 1 else float("nan")
        return dict(cross_entropy=ce, cross_entropy_kenlm=ce_kenlm, source_entropy=self.source_entropy,
                    kl_to_source=kl, kl_se=kl_se, perplexity=math.exp(ce_kenlm),
                    oov_rate=float(unknown_tok.sum()) / max(self.heldout.num_tokens, 1))


def _corpus_stats(corpus: Corpus) -> Dict[str, float]:
    counts = np.bincount(corpus.tokens, minlength=len(corpus.vocab)) if corpus.num_tokens else np.zeros(1)
    nz = counts[counts > 0].astype(np.float64)
    p = nz / nz.sum() if nz.size else nz
    return dict(support=int(nz.size), unigram_entropy=float(-(p * np.log(p)).sum()) if p.size else 0.0,
                mean_length=float(corpus.num_tokens) / max(corpus.num_documents, 1))


def simulate_ngram(N: Optional[int] = None, generations: Optional[int] = None, trials: int = 1,
                   paradigm: str = "replace", alpha: Optional[float] = None, seed: int = 0, threads: int = 0,
                   *, source=None, source_corpus: Optional[Corpus] = None, source_order: int = 2,  # noqa: ANN001
                   source_smoothing: str = "mkn", order: int = 2, smoothing: str = "mkn", heldout: int = 2000,
                   max_length: int = 256, executor: str = "local", keep_models: bool = False,
                   **unexpected: Any):
    """The n-gram process (module docstring). Returns a SimulationResult whose metrics have
    one row per (trial, generation), generations 0..G; final_p is None; events is empty.

    source: the truth as an NGramModel, or source_corpus (+ source_order, source_smoothing)
    to fit one. order/smoothing: the recursively fit models. heldout: size of H.
    max_length: cap on sampled sequence length (words).
    keep_models: also return every fitted model, as result.models[(trial, generation)].
    """
    from .ngram import NGramModel
    from .simulate import PARADIGMS, SimulationResult, _check_alpha, _check_int

    if unexpected:
        raise CollapseError(f"unexpected arguments for the n-gram process: {sorted(unexpected)}")
    if executor != "local":
        raise CollapseError("the n-gram process runs on the local executor only")
    if paradigm not in PARADIGMS:
        raise CollapseError(f"unknown paradigm {paradigm!r} (expected one of {', '.join(PARADIGMS)})")
    N = _check_int("N", N, 1)
    generations = _check_int("generations", generations, 1)
    trials = _check_int("trials", trials, 1)
    threads = _check_int("threads", threads, 0)
    seed = _check_int("seed", seed, 0)
    heldout = _check_int("heldout", heldout, 1)
    max_length = _check_int("max_length", max_length, 1)
    a = _check_alpha(paradigm, alpha)
    if source is None:
        if source_corpus is None:
            raise CollapseError("the n-gram process needs source= (an NGramModel) or source_corpus=")
        source = NGramModel.fit(source_corpus, order=source_order, smoothing=source_smoothing, threads=threads)
    elif source_corpus is not None:
        raise CollapseError("give source= or source_corpus=, not both")
    if not isinstance(source, NGramModel):
        raise CollapseError("source must be a collapse.NGramModel")

    root = _core.derive_seed(seed, NGRAM_TAG)
    H = source.sample(heldout, seed=_core.derive_seed(root, HELDOUT_TAG), max_length=max_length, threads=threads)
    scorer = _Scorer(source, H, threads)
    n_syn = N if a is None else int(math.floor(a * N + 0.5))
    vocab = source.vocab

    rows: List[Dict[str, Any]] = []
    models: Dict[tuple, Any] = {}
    for trial in range(trials):
        tseed = _core.derive_seed(root, trial)

        def seed_for(gen: int, purpose: int) -> int:
            return int(_core.derive_seed(tseed, gen * 16 + purpose))

        def sample(model, n: int, gen: int, purpose: int) -> Corpus:  # noqa: ANN001
            if n == 0:
                return _empty(vocab)
            return model.sample(n, seed=seed_for(gen, purpose), max_length=max_length, threads=threads).remap(vocab)

        gen0 = dict(trial=trial, generation=0, cross_entropy=scorer.source_entropy,
                    cross_entropy_kenlm=scorer.source_entropy, source_entropy=scorer.source_entropy,
                    kl_to_source=0.0, kl_se=0.0, perplexity=math.exp(scorer.source_entropy), oov_rate=0.0,
                    support=float("nan"), unigram_entropy=float("nan"), mean_length=float("nan"))
        rows.append(gen0)
        real = sample(source, N, 0, _REAL)
        train, pool = real, real
        for gen in range(1, generations + 1):
            model = NGramModel.fit(train, order=order, smoothing=smoothing, threads=threads)
            rows.append(dict(trial=trial, generation=gen, **scorer.score(model), **_corpus_stats(train)))
            if keep_models:
                models[(trial, gen)] = model
            if gen == generations:
                break
            if paradigm == "replace":
                train = sample(model, N, gen, _SYNTHETIC)
            elif paradigm == "accumulate":
                pool = _join([pool, sample(model, N, gen, _SYNTHETIC)])
                train = pool
            elif paradigm == "accumulate-subsample":
                from .resample import subsample

                pool = _join([pool, sample(model, N, gen, _SYNTHETIC)])
                train = subsample(pool, n=N, seed=seed_for(gen, _SUBSAMPLE), threads=threads)
            elif paradigm == "mix":
                from .resample import subsample

                real_part = subsample(real, n=N - n_syn, seed=seed_for(gen, _MIX_REAL), threads=threads) \
                    if n_syn < N else _empty(vocab)
                train = _join([sample(model, n_syn, gen, _SYNTHETIC), real_part])
            else:  # fresh
                train = _join([sample(model, n_syn, gen, _SYNTHETIC), sample(source, N - n_syn, gen, _FRESH)])
    import pandas as pd

    metrics = pd.DataFrame(rows)
    metrics.insert(0, "seed", np.int64(seed) if seed < 2**63 else np.uint64(seed))
    metrics.insert(0, "alpha", np.nan if a is None else a)
    metrics.insert(0, "paradigm", paradigm)
    config = dict(process="ngram", N=N, generations=generations, trials=trials, paradigm=paradigm, alpha=a,
                  seed=seed, threads=threads, executor="local", source_order=source.order,
                  source_smoothing=source.smoothing, order=int(order), smoothing=smoothing, heldout=heldout,
                  max_length=max_length, vocab_size=len(vocab) - 3)
    events = pd.DataFrame({"trial": np.arange(trials, dtype=np.int64)})
    result = SimulationResult(metrics=metrics, final_p=None, events=events, config=config)
    result.source = source
    result.heldout = H
    if keep_models:
        result.models = models
    return result
