"""The n-gram collapse process: recursive estimation and sampling from a source n-gram model.

A source model (a collapse.NGramModel, given or fit on a corpus) plays the truth. Per
trial: a finite real corpus R of N sequences is sampled from the source; generation 1 is
the model fit on R; generation t + 1 is fit on the paradigm's corpus (documents are the
units; each generation's training set is built by collapse.experiment.paradigms, the code
the experiment loop uses; the same definitions as the categorical process):

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
                   evenly among the source events it stands for (the source words it lacks,
                   and <unk> itself when the source emits it), so p_t is a proper
                   distribution over the source's events: a true cross-entropy.
  cross_entropy_kenlm  the same with each unknown word given the whole <unk> probability
                   (the kenlm / perplexity convention; not a proper cross-entropy).
  source_entropy   the source's own log-loss on H (the same estimator of its entropy rate).
  kl_to_source     cross_entropy - source_entropy: a Monte Carlo estimate, on H, of the
                   per-token KL rate KL(source || model t) (a ratio estimator, consistent as
                   H grows); kl_se is its standard error (by sequence).
  perplexity       exp(cross_entropy_kenlm), kenlm's perplexity of model t on H.
  oov_rate         fraction of H's words the model lacks.

  kl_exact, cross_entropy_exact, source_entropy_exact  (orders <= 2): the same rates
                   computed exactly from the two models (exact_kl_rate), with no sampling.

and of the data generation t was fit on (NaN at generation 0): support (distinct words,
<unk> not counted),
unigram_entropy (nats, of the word frequencies, </s> excluded), mean_length (words).
"""

from __future__ import annotations

import math
from typing import Any, Dict, List, Optional

import numpy as np

from .. import _core
from ..data.corpus import Corpus
from ..errors import CollapseError
from ..experiment.paradigms import check_paradigm, needed_synthetic, synthetic_size, training_corpus
from ..ngram.model import NGramModel
from ..validate import integer
from .result import SimulationResult, check_common

NGRAM_TAG = 0x53494D4E47524D  # "SIMNGRM"
HELDOUT_TAG = 0x48454C44  # "HELD"
# seed purposes per (trial, generation); the paradigm's own draws use its purposes (11..13)
_REAL, _SYNTHETIC, _FRESH = 1, 2, 5
LN10 = math.log(10.0)


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
        # <unk> is a source event too when the source gives it probability (it is sampled)
        self.source_emits_unk = "<unk>" in source_events(source)
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
        share = len(self.source_words - set(model_words[3:])) + int(self.source_emits_unk)
        ln_proper = ln_kenlm - per_seq_unknown * math.log(max(share, 1))
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


EXACT_MAX_WORDS = 2500  # dense (V+1)^2 matrices and one linear solve per generation


def source_events(source) -> List[str]:  # noqa: ANN001
    """The words the source can emit: its vocabulary, with <unk> when its unigram
    probability is positive (KenLM-style models give <unk> mass, and the sampler emits it)."""
    ids, log10_prob, _ = source.table(1)
    unk_prob = log10_prob[ids[:, 0] == 0]
    words = list(source.vocab.words[3:])
    if unk_prob.size and unk_prob[0] > -99:
        words.append("<unk>")
    return words


def _conditionals(model, contexts: List[str], events: List[str], share: float) -> np.ndarray:  # noqa: ANN001
    """P[c, e] = p_model(e | c) for an order <= 2 backoff model, contexts and events named by
    words ("<s>" among the contexts, "</s>" among the events). Words the model lacks are
    read as its <unk>, whose probability is divided by `share` (the number of source
    events it stands for), as the scorer's cross_entropy does."""
    if model.order > 2:
        raise CollapseError("the exact KL rate is implemented for orders 1 and 2")
    vocab = model.vocab
    ids1, lp1, bo1 = model.table(1)
    V = len(vocab)
    uni = np.full(V, -99.0)
    bow = np.zeros(V)
    uni[ids1[:, 0]] = lp1
    bow[ids1[:, 0]] = bo1
    if model.order == 1:
        bow[:] = 0.0  # no context: every row is the unigram distribution
    dense = np.power(10.0, bow[:, None] + uni[None, :])
    dense[:, uni <= -99] = 0.0
    if model.order == 2:
        ids2, lp2, _ = model.table(2)
        dense[ids2[:, 0], ids2[:, 1]] = np.power(10.0, lp2.astype(np.float64))
    index = {w: i for i, w in enumerate(vocab.words)}
    c_ids = np.array([index.get(w, 0) for w in contexts])
    e_ids = np.array([index.get(w, 0) for w in events])
    P = dense[np.ix_(c_ids, e_ids)]
    unknown = e_ids == 0
    P[:, unknown] /= share
    return P


def exact_kl_rate(source, model, events: Optional[List[str]] = None) -> Dict[str, float]:  # noqa: ANN001
    """Exact per-token rates, for source and model of order <= 2 (Markov chains on the
    previous word, absorbed at </s>): with v_c the source's expected visits to context c per
    sequence, v = e_<s> (I - T)^-1,
      KL rate = sum_c v_c KL(p_s(.|c) || p_m(.|c)) / sum_c v_c   (sum_c v_c = E[length + 1]),
    and likewise the source's entropy rate and the cross-entropy rate. Unknown words as in
    cross_entropy. Sequences are not truncated (the sampler's max_length is ignored)."""
    events = source_events(source) if events is None else events
    if len(events) > EXACT_MAX_WORDS:
        raise CollapseError(f"exact KL rate: at most {EXACT_MAX_WORDS} source words, got {len(events)}")
    contexts = ["<s>"] + events
    targets = events + ["</s>"]
    model_words = set(model.vocab.words[3:])
    share = max(1, sum(1 for w in events if w not in model_words or w == "<unk>"))
    Ps = _conditionals(source, contexts, targets, 1.0)
    Pm = _conditionals(model, contexts, targets, float(share))
    n = len(contexts)
    T = np.zeros((n, n))
    T[:, 1:] = Ps[:, :-1]  # emitting word j moves to context j
    e0 = np.zeros(n)
    e0[0] = 1.0
    visits = np.linalg.solve((np.eye(n) - T).T, e0)
    pos = Ps > 0
    with np.errstate(divide="ignore"):
        log_ps = np.where(pos, np.log(np.where(pos, Ps, 1.0)), 0.0)
        log_pm = np.where(pos, np.log(np.where(pos, Pm, 1.0)), 0.0)
    if np.any(pos & (Pm <= 0)):
        kl_rows = np.full(n, np.inf)
    else:
        kl_rows = (Ps * (log_ps - log_pm)).sum(axis=1)
    h_rows = -(Ps * log_ps).sum(axis=1)
    tokens = float(visits.sum())
    kl = float(visits @ kl_rows) / tokens
    h = float(visits @ h_rows) / tokens
    return dict(kl_rate=kl, source_entropy_rate=h, cross_entropy_rate=h + kl, tokens_per_sequence=tokens)


def _corpus_stats(corpus: Corpus) -> Dict[str, float]:
    """support: distinct words other than <unk> (a model gives <unk> mass even when its data had
    none, so <unk> can appear in a sample without any word coming back); unigram_entropy over
    all tokens; mean_length in words."""
    counts = np.bincount(corpus.tokens, minlength=len(corpus.vocab)) if corpus.num_tokens else np.zeros(1)
    nz = counts[counts > 0].astype(np.float64)
    p = nz / nz.sum() if nz.size else nz
    return dict(support=int((counts[1:] > 0).sum()), unigram_entropy=float(-(p * np.log(p)).sum()) if p.size else 0.0,
                mean_length=float(corpus.num_tokens) / max(corpus.num_documents, 1))


def simulate_ngram(N: Optional[int] = None, generations: Optional[int] = None, trials: int = 1,
                   paradigm: str = "replace", alpha: Optional[float] = None, seed: int = 0, threads: int = 0,
                   *, source=None, source_corpus: Optional[Corpus] = None, source_order: int = 2,  # noqa: ANN001
                   source_smoothing: str = "mkn", order: int = 2, smoothing: str = "mkn", heldout: int = 2000,
                   max_length: int = 256, executor: str = "local", keep_models: bool = False,
                   exact: Optional[bool] = None, **unexpected: Any) -> SimulationResult:
    """The n-gram process (module docstring). Returns a SimulationResult whose metrics have
    one row per (trial, generation), generations 0..G; final_p is None; events is empty.

    source: the truth as an NGramModel, or source_corpus (+ source_order, source_smoothing)
    to fit one. order/smoothing: the recursively fit models. heldout: size of H.
    max_length: cap on sampled sequence length (words).
    keep_models: also return every fitted model, as result.models[(trial, generation)].
    exact: add kl_exact / cross_entropy_exact / source_entropy_exact (exact_kl_rate); needs
    source and model orders <= 2 and at most EXACT_MAX_WORDS source words. None: when possible.
    """
    if unexpected:
        raise CollapseError(f"unexpected arguments for the n-gram process: {sorted(unexpected)}")
    if executor != "local":
        raise CollapseError("the n-gram process runs on the local executor only")
    a = check_paradigm(paradigm, alpha)
    N, generations, trials, threads, seed = check_common(N, generations, trials, threads, seed)
    heldout = integer("heldout", heldout, 1)
    max_length = integer("max_length", max_length, 1)
    if source is None:
        if source_corpus is None:
            raise CollapseError("the n-gram process needs source= (an NGramModel) or source_corpus=")
        source = NGramModel.fit(source_corpus, order=source_order, smoothing=source_smoothing, threads=threads)
    elif source_corpus is not None:
        raise CollapseError("give source= or source_corpus=, not both")
    if not isinstance(source, NGramModel):
        raise CollapseError("source must be a collapse.NGramModel")

    exact_possible = source.order <= 2 and int(order) <= 2 and len(source_events(source)) <= EXACT_MAX_WORDS
    if exact and not exact_possible:
        raise CollapseError(f"exact=True needs source and model orders <= 2 and at most {EXACT_MAX_WORDS} "
                            "source words")
    exact = exact_possible if exact is None else bool(exact)
    if exact:
        events = source_events(source)
        source_rate = exact_kl_rate(source, source, events)["source_entropy_rate"]

    root = _core.derive_seed(seed, NGRAM_TAG)
    H = source.sample(heldout, seed=_core.derive_seed(root, HELDOUT_TAG), max_length=max_length, threads=threads)
    scorer = _Scorer(source, H, threads)
    n_syn = synthetic_size(paradigm, a, N)
    vocab = source.vocab

    rows: List[Dict[str, Any]] = []
    models: Dict[tuple, Any] = {}
    for trial in range(trials):
        tseed = _core.derive_seed(root, trial)

        def seed_for(gen: int, purpose: int) -> int:
            return int(_core.derive_seed(tseed, gen * 16 + purpose))

        def sample(model, n: int, gen: int, purpose: int) -> Corpus:  # noqa: ANN001
            return model.sample(n, seed=seed_for(gen, purpose), max_length=max_length, threads=threads).remap(vocab)

        gen0 = dict(trial=trial, generation=0, cross_entropy=scorer.source_entropy,
                    cross_entropy_kenlm=scorer.source_entropy, source_entropy=scorer.source_entropy,
                    kl_to_source=0.0, kl_se=0.0, perplexity=math.exp(scorer.source_entropy), oov_rate=0.0,
                    support=float("nan"), unigram_entropy=float("nan"), mean_length=float("nan"))
        if exact:
            gen0.update(kl_exact=0.0, cross_entropy_exact=source_rate, source_entropy_exact=source_rate)
        rows.append(gen0)
        real = sample(source, N, 0, _REAL)
        # Model generation g (g >= 1) is the loop's M_{g-1}: fit on the loop's D_{g-1}, and
        # its sample is the loop's S_{g-1}.
        synthetic: List[Optional[Corpus]] = []
        train = real
        for gen in range(1, generations + 1):
            model = NGramModel.fit(train, order=order, smoothing=smoothing, threads=threads)
            row = dict(trial=trial, generation=gen, **scorer.score(model), **_corpus_stats(train))
            if exact:
                ex = exact_kl_rate(source, model, events)
                row.update(kl_exact=ex["kl_rate"], cross_entropy_exact=ex["cross_entropy_rate"],
                           source_entropy_exact=ex["source_entropy_rate"])
            rows.append(row)
            if keep_models:
                models[(trial, gen)] = model
            if gen == generations:
                break
            synthetic.append(sample(model, n_syn, gen, _SYNTHETIC) if n_syn else None)
            train = training_corpus(paradigm, a, gen, real, synthetic,
                                    lambda purpose, g=gen: seed_for(g, purpose),
                                    lambda t, k, g=gen: sample(source, k, g, _FRESH))
            still_read = set(needed_synthetic(paradigm, gen + 1))
            synthetic = [s if k in still_read else None for k, s in enumerate(synthetic)]
    import pandas as pd

    metrics = pd.DataFrame(rows)
    metrics.insert(0, "seed", np.int64(seed) if seed < 2**63 else np.uint64(seed))
    metrics.insert(0, "alpha", np.nan if a is None else a)
    metrics.insert(0, "paradigm", paradigm)
    config = dict(process="ngram", N=N, generations=generations, trials=trials, paradigm=paradigm, alpha=a,
                  seed=seed, threads=threads, executor="local", source_order=source.order,
                  source_smoothing=source.smoothing, order=int(order), smoothing=smoothing, heldout=heldout,
                  max_length=max_length, vocab_size=len(vocab) - 3, exact=exact)
    events = pd.DataFrame({"trial": np.arange(trials, dtype=np.int64)})
    result = SimulationResult(metrics=metrics, final_p=None, events=events, config=config)
    result.source = source
    result.heldout = H
    if keep_models:
        result.models = models
    return result
