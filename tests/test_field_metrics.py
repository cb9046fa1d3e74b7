"""The metrics the literature reports (issue 20, item 3) against independent references:
self-BLEU-4 against NLTK's corpus_bleu, rep-n / diversity and the Zipf exponent against
numpy, ref_ppl against scoring S_t with the saved generation-0 model."""

import math
import pathlib

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st
from nltk.translate.bleu_score import SmoothingFunction, corpus_bleu

import collapse
from collapse.data.corpus import Corpus, Vocab
from collapse.experiment import fieldstats
from collapse.experiment.fieldstats import (SELF_BLEU_DOCUMENTS, self_bleu4, self_bleu_subset,
                                            sentence_bleus_against_rest, zipf_exponent)
from collapse.experiment.loop import load_corpus_files
from collapse.experiment import metrics as metrics_module
from collapse.experiment.metrics import METRIC_COLUMNS, Reference, diversity, documents
from collapse.ngram.family import NGramFamily

FIELD_COLUMNS = ("self_bleu4", "rep_2", "rep_3", "rep_4", "diversity", "zipf_exponent", "ref_ppl", "self_ppl")


def nltk_self_bleu(docs):
    """Each document's NLTK corpus_bleu (method1) against the rest, as lists of words."""
    words = [[f"w{x}" for x in d] for d in docs]
    smooth = SmoothingFunction().method1
    return [corpus_bleu([[o for j, o in enumerate(words) if j != i]], [words[i]], smoothing_function=smooth)
            for i in range(len(words))]


@settings(max_examples=150, deadline=None)
@given(docs=st.lists(st.lists(st.integers(0, 5), max_size=10), min_size=2, max_size=9))
def test_sentence_bleus_match_nltk_on_small_documents(docs):
    # tiny alphabets and lengths: ties of clipped counts and of reference lengths, empty
    # documents, documents shorter than 4 tokens
    ours = sentence_bleus_against_rest([np.array(d, dtype=np.uint32) for d in docs])
    np.testing.assert_allclose(ours, nltk_self_bleu(docs), rtol=1e-12, atol=1e-15)


@settings(max_examples=40, deadline=None)
@given(docs=st.lists(st.lists(st.integers(0, 5), max_size=10), min_size=2, max_size=9))
def test_wide_ngram_path_matches_nltk(docs):
    # vocabularies whose 4-gram keys do not fit 62 bits take numpy's row-wise unique
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(fieldstats, "KEY_BITS", 0)
        ours = sentence_bleus_against_rest([np.array(d, dtype=np.uint32) for d in docs])
    np.testing.assert_allclose(ours, nltk_self_bleu(docs), rtol=1e-12, atol=1e-15)


def test_self_bleu4_matches_nltk_on_100_story_length_documents():
    rng = np.random.default_rng(7)
    # Zipf-like word ids, so that documents share many n-grams
    docs = [np.minimum(rng.zipf(1.3, int(rng.integers(30, 200))), 3000).astype(np.uint32) for _ in range(100)]
    expected = float(np.mean(nltk_self_bleu(docs)))
    assert 0.05 < expected < 0.95
    assert self_bleu4(docs) == pytest.approx(expected, rel=1e-12)


def test_self_bleu_subset_is_fixed_by_the_seed():
    a, b, c = (self_bleu_subset(1000, s) for s in (5, 5, 6))
    assert a.size == SELF_BLEU_DOCUMENTS and np.unique(a).size == a.size and (np.diff(a) > 0).all()
    assert (a == b).all() and not (a == c).all()
    assert (self_bleu_subset(40, 5) == np.arange(40)).all()
    assert math.isnan(self_bleu4([np.array([1, 2], dtype=np.uint32)]))


def corpus_of(docs):
    vocab = Vocab([f"w{i}" for i in range(10)])
    tokens = np.array([x + 3 for d in docs for x in d], dtype=np.uint32)
    offsets = np.zeros(len(docs) + 1, dtype=np.int64)
    np.cumsum([len(d) for d in docs], out=offsets[1:])
    return Corpus(tokens, offsets, vocab)


def numpy_rep(docs, n):
    grams = np.concatenate([np.lib.stride_tricks.sliding_window_view(np.array(d), n)
                            for d in docs if len(d) >= n])
    return 1.0 - np.unique(grams, axis=0).shape[0] / grams.shape[0]


def test_rep_n_and_diversity_match_numpy():
    rng = np.random.default_rng(3)
    docs = [list(rng.integers(0, 10, int(rng.integers(0, 40)))) for _ in range(60)]
    out = diversity(corpus_of(docs))
    reps = [numpy_rep(docs, n) for n in (2, 3, 4)]
    for n, rep in zip((2, 3, 4), reps):
        assert out[f"rep_{n}"] == pytest.approx(rep, abs=1e-12)
    assert out["diversity"] == pytest.approx(np.prod([1 - r for r in reps]), abs=1e-12)
    assert 0 < out["rep_2"] < 1


def test_documents_are_the_corpus_slices():
    docs = [[1, 2], [], [3, 4, 5]]
    got = documents(corpus_of(docs), np.array([2, 0]))
    assert [list(d - 3) for d in got] == [[3, 4, 5], [1, 2]]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_zipf_exponent_matches_numpy_polyfit(seed):
    rng = np.random.default_rng(seed)
    counts = np.unique(rng.zipf(1.2 + 0.4 * seed, 20000), return_counts=True)[1]
    rng.shuffle(counts)  # the fit ranks them itself
    c = np.sort(counts)[::-1]
    c = c[c >= 2]
    slope = np.polyfit(np.log(np.arange(1, c.size + 1)), np.log(c), 1)[0]
    assert zipf_exponent(counts) == pytest.approx(-slope, rel=1e-9)
    assert math.isnan(zipf_exponent(np.array([5, 1, 1, 0])))


def test_zipf_exponent_recovers_an_exact_power_law():
    ranks = np.arange(1, 500)
    assert zipf_exponent(np.round(1e7 * ranks ** -1.2)) == pytest.approx(1.2, abs=1e-3)


@pytest.fixture(scope="module")
def ngram_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("field") / "run"
    cfg = {"experiment": {"generations": 2, "paradigms": ["replace"], "seeds": [0], "workers": 1,
                          "progress": False},
           "data": {"source": "grammar", "num_documents": 300, "heldout_documents": 50, "seed": 0},
           "model": {"family": "ngram", "order": 3}}
    return out, collapse.run_experiment(cfg, out=str(out))


def test_ref_ppl_is_s_t_scored_by_the_saved_generation_0_model(ngram_run):
    out, df = ngram_run
    df = df.sort_values("generation").reset_index(drop=True)
    (cell,) = [p for p in pathlib.Path(out).iterdir() if p.is_dir() and (p / "gen_0000").is_dir()]
    family = NGramFamily(order=3)
    m0, m2 = family.load(str(cell / "gen_0000")), family.load(str(cell / "gen_0002"))
    for t in (1, 2):
        s_t = load_corpus_files(str(cell / f"gen_{t:04d}"))
        # ARPA stores log10 probabilities to 6-7 significant digits
        assert df.loc[t, "ref_ppl"] == pytest.approx(m0.perplexity(s_t), rel=1e-4)
    assert df.loc[2, "self_ppl"] == pytest.approx(m2.perplexity(load_corpus_files(str(cell / "gen_0002"))), rel=1e-4)
    # generation 0 scores its own sample: the two columns agree; later ones differ
    assert df.loc[0, "ref_ppl"] == df.loc[0, "self_ppl"]
    assert df.loc[2, "ref_ppl"] != pytest.approx(df.loc[2, "self_ppl"], rel=1e-3)


def test_ref_ppl_scores_the_first_documents_of_a_large_sample(ngram_run, monkeypatch):
    # at 1M stories a full second scoring pass would cost a third of a generation
    out, _ = ngram_run
    (cell,) = [p for p in pathlib.Path(out).iterdir() if p.is_dir() and (p / "gen_0000").is_dir()]
    family = NGramFamily(order=3)
    m0, m2 = family.load(str(cell / "gen_0000")), family.load(str(cell / "gen_0002"))
    s2, real = load_corpus_files(str(cell / "gen_0002")), load_corpus_files(str(cell / "gen_0001"))
    ref = Reference.build(real, real)
    monkeypatch.setattr(metrics_module, "REF_PPL_DOCUMENTS", 50)
    got = metrics_module.generation_metrics(m2, s2, s2, ref, reference_model=m0)["ref_ppl"]
    assert s2.num_documents > 50
    assert got == m0.perplexity(s2.select(np.arange(50))) and got != m0.perplexity(s2)
    # generation 0 (M_t is M_0) reads the same documents, not self_ppl's whole sample
    gen0 = metrics_module.generation_metrics(m0, s2, s2, ref, reference_model=m0)
    assert gen0["ref_ppl"] == got != gen0["self_ppl"]


def test_field_columns_in_every_ngram_row(ngram_run):
    _, df = ngram_run
    assert set(FIELD_COLUMNS) <= set(METRIC_COLUMNS) <= set(df.columns)
    assert df[list(FIELD_COLUMNS)].notna().all().all()
    assert ((df.self_bleu4 > 0) & (df.self_bleu4 < 1)).all() and (df.zipf_exponent > 0).all()
    for n in (2, 3, 4):
        np.testing.assert_allclose(df[f"rep_{n}"], 1 - df[f"distinct_{n}"], atol=1e-12)
    np.testing.assert_allclose(df.diversity, (1 - df.rep_2) * (1 - df.rep_3) * (1 - df.rep_4), atol=1e-12)


def test_field_columns_for_the_transformer(tmp_path):
    pytest.importorskip("torch", reason="the transformer family needs torch (collapse[torch])")
    cfg = {"experiment": {"generations": 1, "paradigms": ["replace"], "seeds": [0], "workers": 1,
                          "progress": False},
           "data": {"source": "grammar", "num_documents": 60, "heldout_documents": 20, "seed": 1},
           "model": {"family": "transformer", "preset": "custom", "hidden_size": 16, "num_layers": 1,
                     "num_heads": 2, "window_size": 8, "max_position_embeddings": 64, "context_length": 48,
                     "epochs": 1, "batch_size": 16, "micro_batch_size": 16, "lr": 3e-3, "bpe_vocab_size": 300,
                     "max_new_tokens": 40, "sample_batch_size": 32, "perplexity_stride": 24,
                     "device": "cpu", "threads": 1},
           "output": {"save_models": False}}
    df = pd.DataFrame(collapse.run_experiment(cfg, out=str(tmp_path / "run"))).sort_values("generation")
    assert df[list(FIELD_COLUMNS)].notna().all().all()
    assert df.ref_ppl.iloc[0] == df.self_ppl.iloc[0] and df.ref_ppl.iloc[1] != df.self_ppl.iloc[1]
