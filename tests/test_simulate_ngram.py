"""The n-gram collapse process (collapse.simulate(process="ngram"))."""

import math

import numpy as np
import pandas as pd
import pytest

import collapse
from collapse import Corpus, NGramModel


def toy_corpus(V=120, docs=1500, seed=0):
    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(V)]
    z = 1 / np.arange(1, V + 1) ** 1.1
    z /= z.sum()
    return Corpus.from_documents([[words[j] for j in rng.choice(V, rng.integers(2, 10), p=z)]
                                  for _ in range(docs)])


@pytest.fixture(scope="module")
def bigram_source():
    return NGramModel.fit(toy_corpus(), order=2, smoothing="mkn")


def unigram_probs(model):
    """word -> probability of an order-1 model (</s> included, <s> excluded)."""
    ids, log10_prob, _ = model.table(1)
    words = model.vocab.words
    return {words[int(i)]: 10.0 ** float(lp) for i, lp in zip(ids.ravel(), log10_prob) if lp > -99}


def test_unigram_kl_estimate_matches_exact_kl():
    """Order 1: sequences are i.i.d. tokens up to </s>, so the per-token KL rate equals
    KL(p_s || p_m) over words + </s> exactly, with p_m's <unk> mass shared evenly by the
    source words the model lacks. The Monte Carlo estimate must lie within 3 SE of it."""
    source = NGramModel.fit(toy_corpus(V=300, docs=400), order=1, smoothing="mle")
    r = collapse.simulate(process="ngram", source=source, N=60, generations=4, trials=2, paradigm="replace",
                          seed=4, order=1, smoothing="addk", heldout=4000, keep_models=True)
    ps = unigram_probs(source)
    source_words = set(source.vocab.words[3:])
    checked = 0
    for (trial, gen), model in r.models.items():
        pm = unigram_probs(model)
        lost = source_words - set(model.vocab.words[3:])
        kl = 0.0
        for w, p in ps.items():
            q = pm[w] if w in pm else pm["<unk>"] / len(lost)
            kl += p * math.log(p / q)
        row = r.metrics[(r.metrics.trial == trial) & (r.metrics.generation == gen)].iloc[0]
        assert row.kl_se > 0
        assert abs(row.kl_to_source - kl) <= 3 * row.kl_se, (trial, gen, row.kl_to_source, kl, row.kl_se)
        if gen > 1:
            assert lost  # replace loses words: the <unk> sharing is exercised
        # the simulator's exact column (Markov-chain formula) agrees with this direct sum
        assert row.kl_exact == pytest.approx(kl, rel=1e-9, abs=1e-12)
        checked += 1
    assert checked == 8


def test_bigram_kl_estimate_matches_exact_markov_chain_kl(bigram_source):
    """Order 2: the exact KL rate from the source's expected context visits (a linear
    solve) against the Monte Carlo estimate on a large held-out sample, within 3 SE."""
    from collapse.theory.ngram import exact_kl_rate

    same = exact_kl_rate(bigram_source, bigram_source)
    assert same["kl_rate"] == 0.0
    # expected tokens per sequence (</s> included) against a large sample's mean
    big = bigram_source.sample(20000, seed=99)
    lengths = big.lengths() + 1.0
    assert abs(lengths.mean() - same["tokens_per_sequence"]) <= 3 * lengths.std() / math.sqrt(lengths.size)
    r = collapse.simulate(process="ngram", source=bigram_source, N=100, generations=4, trials=2, seed=1,
                          heldout=20000, paradigm="replace")
    m = r.metrics
    assert m.kl_exact.notna().all()
    assert np.allclose(m.source_entropy_exact, same["source_entropy_rate"])
    # the source's entropy rate, estimated on H, agrees with the exact one
    h = m.source_entropy.iloc[0]
    z = []
    for _, row in m[m.generation >= 1].iterrows():
        z.append((row.kl_to_source - row.kl_exact) / row.kl_se)
        assert abs(row.kl_to_source - row.kl_exact) <= 3 * row.kl_se, row
    assert abs(h - same["source_entropy_rate"]) < 0.01
    assert len(z) == 8


def test_generation_one_is_the_fit_on_the_same_real_sample(bigram_source):
    cols = ["cross_entropy", "support", "mean_length"]
    firsts = []
    for paradigm, alpha in [("replace", None), ("accumulate-subsample", None), ("mix", 0.5), ("fresh", 0.3)]:
        r = collapse.simulate(process="ngram", source=bigram_source, N=80, generations=3, trials=2,
                              paradigm=paradigm, alpha=alpha, seed=7)
        m = r.metrics
        assert m.loc[m.generation == 0, "kl_to_source"].eq(0).all()
        firsts.append(m.loc[m.generation == 1, cols].reset_index(drop=True))
    for other in firsts[1:]:
        pd.testing.assert_frame_equal(firsts[0], other)


def test_deterministic_for_any_thread_count(bigram_source):
    kw = dict(process="ngram", source=bigram_source, N=60, generations=3, trials=2, paradigm="mix", alpha=0.5,
              seed=3)
    a = collapse.simulate(**kw, threads=1)
    b = collapse.simulate(**kw, threads=2)
    pd.testing.assert_frame_equal(a.metrics, b.metrics)
    c = collapse.simulate(**{**kw, "seed": 4})
    assert not a.metrics["cross_entropy"].equals(c.metrics["cross_entropy"])


def test_replace_drifts_away_fresh_real_data_does_not(bigram_source):
    kw = dict(process="ngram", source=bigram_source, N=150, generations=6, trials=3, seed=1)
    rep = collapse.simulate(**kw, paradigm="replace").metrics
    fresh = collapse.simulate(**kw, paradigm="fresh", alpha=0.0).metrics
    kl = lambda m, g: m.loc[m.generation == g, "kl_to_source"].mean()  # noqa: E731
    assert kl(rep, 6) > 1.5 * kl(rep, 1)
    assert kl(rep, 6) > kl(fresh, 6) + 5 * fresh.loc[fresh.generation == 6, "kl_se"].mean()
    # the vocabulary only shrinks under replace
    sup = rep[rep.generation >= 1].pivot(index="trial", columns="generation", values="support").to_numpy()
    assert (np.diff(sup, axis=1) <= 0).all()


def test_source_from_corpus_and_bad_input():
    corpus = toy_corpus(V=40, docs=200)
    r = collapse.simulate(process="ngram", source_corpus=corpus, source_order=2, N=20, generations=2, trials=1)
    assert list(r.metrics.generation) == [0, 1, 2]
    with pytest.raises(ValueError, match="needs source"):
        collapse.simulate(process="ngram", N=20, generations=2)
    with pytest.raises(ValueError, match="not both"):
        collapse.simulate(process="ngram", source=r.source, source_corpus=corpus, N=20, generations=2)
    with pytest.raises(ValueError, match="local executor"):
        collapse.simulate(process="ngram", source=r.source, N=20, generations=2, executor="ray")
    with pytest.raises(ValueError, match="alpha"):
        collapse.simulate(process="ngram", source=r.source, N=20, generations=2, paradigm="mix", alpha=2)
    with pytest.raises(ValueError, match="N must be"):
        collapse.simulate(process="ngram", source=r.source, N=0, generations=2)


def test_cli_ngram_process(tmp_path):
    from conftest import run_cli

    text = tmp_path / "source.txt"
    toy_corpus(V=50, docs=300).write_text(str(text))
    out = tmp_path / "run"
    rc, stdout, stderr = run_cli("simulate", "--process", "ngram", "--source-text", text, "--N", 40,
                                 "--generations", 3, "--trials", 2, "--paradigm", "accumulate-subsample",
                                 "--heldout", 300, "--out", out)
    assert rc == 0, stderr
    assert "kl_to_source" in stdout
    m = pd.read_parquet(out / "metrics.parquet")
    assert len(m) == 2 * 4 and {"paradigm", "alpha", "seed", "trial", "generation", "cross_entropy"} <= set(m)
    rc, _, stderr = run_cli("simulate", "--process", "ngram", "--N", 40, "--generations", 3, "--out", out)
    assert rc == 2 and "exactly one of" in stderr
