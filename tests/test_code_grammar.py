"""The embedded code source: LL(1) and unambiguous, exact probabilities (enumerated, sampled,
chi-square), exact entropy, KL of the true model 0, the latent label, and the loop on it."""

import math
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy import stats

from collapse.data.codegrammar import CodeGrammar, get_code_grammar
from collapse.data.storygrammar import get_grammar
from collapse.errors import CollapseError
from collapse.experiment.config import load_config
from collapse.experiment.metrics import Reference, generation_metrics

# Small enough to enumerate every program: one statement nesting one level, or two flat ones.
SMALL = [dict(num_identifiers=1, num_numbers=1, max_depth=1, max_statements=1, continue_prob=0.5),
         dict(num_identifiers=1, num_numbers=1, max_depth=0, max_statements=2, continue_prob=0.3)]


def enumerate_programs(g, symbol="DOC"):
    """Every derivation from symbol as (probability, tokens, rules), by brute force over
    g.rules (neither the sampler, the parser nor the exact statistics are used)."""
    out = []
    for e, r in enumerate(g.rules):
        if r.lhs != symbol:
            continue
        partial = [(r.prob, [], [e])]
        for s in r.rhs:
            if s in g.nonterminals:
                partial = [(p * q, toks + t, rules + rs) for p, toks, rules in partial
                           for q, t, rs in enumerate_programs(g, s)]
            elif s != "</s>":
                partial = [(p, toks + [s], rules) for p, toks, rules in partial]
        out += partial
    return out


@pytest.fixture(scope="module")
def code():
    return get_code_grammar()


@pytest.mark.parametrize("params", SMALL)
def test_enumerated_probabilities_sum_to_one_and_every_program_parses_to_its_derivation(params):
    g = CodeGrammar(**params)
    programs = enumerate_programs(g)
    assert len(programs) > 3000
    assert sum(p for p, _, _ in programs) == pytest.approx(1.0, abs=1e-12)
    # unambiguous: no two derivations give the same tokens, and the parser finds the one
    assert len({tuple(t) for _, t, _ in programs}) == len(programs)
    for p, tokens, rules in programs[::7]:
        assert g.derivation(tokens) == rules
        assert g.log_prob(tokens) == pytest.approx(math.log(p), abs=1e-12)
    # the exact statistics are those of the enumerated distribution
    ex = g.exact()
    probs = np.array([p for p, _, _ in programs])
    lengths = np.array([len(t) for _, t, _ in programs])
    assert ex.document_entropy == pytest.approx(float(-(probs * np.log(probs)).sum()), rel=1e-12)
    assert ex.expected_length == pytest.approx(float((probs * lengths).sum()), rel=1e-12)
    counts = Counter()
    for p, tokens, _ in programs:
        for w in tokens:
            counts[w] += p
    assert ex.unigram() == pytest.approx({w: counts[w] / ex.expected_length for w in ex.words}, rel=1e-9)


def chi_square_p(g, truth, n, seed):
    """p-value of the chi-square test of n sampled programs of g against the exact
    probabilities of the enumerated source ``truth`` (bins with expected count >= 5, the rest pooled)."""
    corpus, _ = g.sample(n, seed)
    seen = Counter(corpus.texts())
    p = {" ".join(t): q for q, t, _ in enumerate_programs(truth)}
    big = sorted(t for t, q in p.items() if q * n >= 5)
    observed = [seen[t] for t in big] + [n - sum(seen[t] for t in big)]
    expected = [p[t] * n for t in big] + [n * (1 - sum(p[t] for t in big))]
    assert len(big) > 30
    return stats.chisquare(observed, expected).pvalue


def test_sampling_frequencies_match_the_exact_probabilities_by_chi_square():
    g = CodeGrammar(**SMALL[1])
    assert chi_square_p(g, g, 20000, seed=5) > 1e-3
    # and the test can tell: a source with another continue_prob fails it
    other = CodeGrammar(**{**SMALL[1], "continue_prob": 0.35})
    assert chi_square_p(other, g, 20000, seed=5) < 1e-6


def test_recorded_probability_is_the_parsed_probability(code):
    corpus, logp = code.sample(1500, seed=3)
    np.testing.assert_allclose(code.corpus_log_probs(corpus), logp, rtol=0, atol=1e-9)
    assert np.all(np.isfinite(logp)) and np.all(logp < 0)


def test_exact_entropy_and_length_match_a_large_sample(code):
    ex = code.exact()
    corpus, logp = code.sample(20000, seed=11)
    lens = corpus.lengths()
    assert abs(lens.mean() - ex.expected_length) < 4 * lens.std() / math.sqrt(lens.size)
    assert abs(-logp.mean() - ex.document_entropy) < 4 * logp.std() / math.sqrt(logp.size)
    assert sum(ex.unigram().values()) == pytest.approx(1.0, abs=1e-12)


def test_deterministic_per_seed_and_programs_are_word_tokens(code):
    a, la = code.sample(300, seed=7)
    b, lb = code.sample(300, seed=7)
    c, _ = code.sample(300, seed=8)
    assert np.array_equal(a.tokens, b.tokens) and np.array_equal(la, lb) and a.vocab == b.vocab
    assert not np.array_equal(a.tokens[:500], c.tokens[:500])
    texts = list(a.texts())
    assert all(t.endswith(";") for t in texts)
    assert {"(", ")", "=", ";"} <= set(a.vocab.words)
    empty, lp = code.sample(0, seed=1)
    assert empty.num_documents == 0 and lp.size == 0


def test_identifiers_have_a_long_zipf_tail(code):
    corpus, _ = code.sample(2000, seed=0)
    counts = np.bincount(corpus.tokens)[3:]
    idents = set(code.classes["IDENT"])
    rare = [w for w, n in zip(corpus.vocab.words[3:], counts) if 1 <= n <= 2]
    assert sum(w in idents for w in rare) > 100


def test_impossible_programs_have_probability_zero(code):
    for text in ("x = 1", "x = 1 + 2 ;", "x = ( 1 + 2 ) ; )", "print x ;", "if x : y = 1 ;", "x = 1 ; </s>",
                 "unknownword = 1 ;", ""):
        assert code.log_prob(text.split()) == -math.inf, text
    assert math.isfinite(code.log_prob("x = ( 1 + 2 ) ; if not true : y = max ( x , 3 ) ;".split()))


def test_by_hand_probability(code):
    # x = 4 ; : one statement, an assignment of a number, no second statement
    ident = dict(zip(code.classes["IDENT"], (r.prob for r in code.rules if r.lhs == "IDENT")))
    num = dict(zip(code.classes["NUM"], (r.prob for r in code.rules if r.lhs == "NUM")))
    from collapse.data.codegrammar import EXPRESSION_WEIGHTS, STATEMENT_WEIGHTS

    p = (STATEMENT_WEIGHTS["assign"] / sum(STATEMENT_WEIGHTS.values()) * ident["x"]
         * EXPRESSION_WEIGHTS["num"] / sum(EXPRESSION_WEIGHTS.values()) * num["4"] * (1 - code.continue_prob))
    assert code.log_prob("x = 4 ;".split()) == pytest.approx(math.log(p), abs=1e-12)


def test_a_grammar_that_is_not_ll1_is_refused():
    g = CodeGrammar(num_identifiers=3)
    g.classes["IDENT"] = ["x", "y", "print"]  # print would start both a call and an assignment
    g.rules = g._rules()
    with pytest.raises(CollapseError, match="not LL\\(1\\)"):
        g._compile()


@pytest.mark.parametrize("bad, match", [(dict(continue_prob=1.0), "continue_prob"), (dict(max_depth=-1), "max_depth"),
                                        (dict(num_identifiers=0), "num_identifiers"), (dict(zipf=0.0), "zipf")])
def test_bad_parameters(bad, match):
    with pytest.raises(ValueError, match=match):
        CodeGrammar(**bad)


@pytest.mark.parametrize("program, value", [
    ("x = ( 3 + 4 ) ;", 7),
    ("x = 2 ; if ( x > 1 ) : y = sq ( inc ( x ) ) ;", 9),
    ("x = 5 ; if all ( true , ( x < 3 ) ) : y = 2 ;", 5),      # the guard fails: x = 5 stays the last
    ("print ( 3 ) ;", 0),                                          # no assignment
    ("y = ( z * 3 ) ; n = max ( neg ( 4 ) , dec ( y ) ) ;", -1),  # z unassigned reads 0
    ("x = 1 ; if any ( false , not ( x == 2 ) ) : x = abs ( ( x - 8 ) ) ;", 7),
])
def test_latent_value_of_the_last_assignment(code, program, value):
    assert code.run(program.split()) == value
    assert code.last_value_is_even(program.split()) == (value % 2 == 0)


def test_latent_labels_of_a_corpus_are_both_kinds(code):
    corpus, _ = code.sample(400, seed=2)
    labels = code.corpus_labels(corpus)
    assert labels.dtype == bool and labels.size == 400 and 0.2 < labels.mean() < 0.95
    with pytest.raises(CollapseError, match="not a program"):
        code.run("x = ;".split())


class TruthModel:
    """The source itself as a model."""

    def __init__(self, source):
        self.g = source

    def perplexity(self, corpus):
        lp = self.g.corpus_log_probs(corpus)
        return float(np.exp(-lp.sum() / (corpus.num_tokens + corpus.num_documents)))

    def document_log_probs(self, corpus):
        return self.g.corpus_log_probs(corpus)


@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")  # the standard error of an infinite KL
@pytest.mark.parametrize("source", ["grammar", "code"])
def test_kl_truth_of_the_true_source_is_zero_and_of_the_other_source_is_not(source):
    g = get_grammar() if source == "grammar" else get_code_grammar()
    other = get_code_grammar() if source == "grammar" else get_grammar()
    real, _ = g.sample(300, seed=1)
    heldout, lp = g.sample(100, seed=2)
    ref = Reference.build(real, heldout, grammar=g, heldout_logprobs=lp)
    m = generation_metrics(TruthModel(g), real, real, ref)
    assert m["kl_truth"] == pytest.approx(0.0, abs=1e-12) and m["kl_truth_se"] == pytest.approx(0.0, abs=1e-12)
    assert m["kl_unigram_truth"] > 0
    assert generation_metrics(TruthModel(other), real, real, ref)["kl_truth"] == math.inf


def write_config(tmp_path, extra=""):
    p = tmp_path / "code.toml"
    p.write_text(f"""
[experiment]
name = "code"
generations = 2
paradigms = ["replace", "fresh"]
workers = 1
progress = false
[data]
source = "code"
num_documents = 300
heldout_documents = 100
max_depth = 3
{extra}
[model]
order = 3
""")
    return p


def test_the_loop_runs_on_code_with_kl_truth(tmp_path):
    from collapse.experiment.loop import run_experiment

    cfg = load_config(str(write_config(tmp_path)))
    assert cfg.data.source == "code" and cfg.data.max_depth == 3
    df = run_experiment(cfg, out=str(tmp_path / "run"))
    assert len(df) == 2 * 3
    assert df.kl_truth.notna().all() and (df.kl_truth > 0).all() and (df.kl_truth_se > 0).all()
    assert df.kl_unigram_truth.notna().all()
    g0 = df[df.generation == 0].kl_truth
    assert g0.nunique() == 1  # one generation 0 for both paradigms
    text = (tmp_path / "run" / "config.toml").read_text()
    assert 'source = "code"' in text and "max_depth = 3" in text and "num_names" not in text
    assert "path" not in text and "tokenizer" not in text


def test_code_keys_are_refused_for_another_source_and_checked(tmp_path):
    with pytest.raises(CollapseError, match="num_names"):
        load_config(str(write_config(tmp_path, "num_names = 30")))
    with pytest.raises(CollapseError, match="data.max_statements"):
        load_config(str(write_config(tmp_path, "max_statements = 0")))
    p = tmp_path / "g.toml"
    p.write_text('[data]\nsource = "grammar"\nmax_depth = 2\n')
    with pytest.raises(CollapseError, match="max_depth"):
        load_config(str(p))


def test_demo_source_code_runs(tmp_path):
    out = tmp_path / "demo-code"
    proc = subprocess.run([sys.executable, "-m", "collapse", "demo", "--source", "code", "--out", str(out),
                           "--generations", "1"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert (out / "demo.png").exists() and "kl_truth" in proc.stdout
    assert 'source = "code"' in (out / "config.toml").read_text()
    bad = subprocess.run([sys.executable, "-m", "collapse", "demo", "--source", "python"], capture_output=True,
                         text=True)
    assert bad.returncode == 2 and "--source" in bad.stderr


def test_the_transformer_family_takes_programs_unchanged(tmp_path):
    pytest.importorskip("torch", reason="the transformer family needs torch (collapse[torch])")
    from collapse.experiment.loop import run_experiment

    df = run_experiment({
        "experiment": {"name": "code-tf", "generations": 1, "paradigms": ["replace"], "workers": 1,
                       "progress": False},
        "data": {"source": "code", "num_documents": 120, "heldout_documents": 30, "max_depth": 2},
        "model": {"family": "transformer", "preset": "custom", "hidden_size": 32, "num_layers": 1, "num_heads": 4,
                  "window_size": 16, "max_position_embeddings": 128, "context_length": 96, "epochs": 1,
                  "batch_size": 16, "micro_batch_size": 8, "lr": 3e-3, "bpe_vocab_size": 300, "max_new_tokens": 60,
                  "sample_batch_size": 32, "device": "cpu", "threads": 1},
    }, out=str(tmp_path / "run"))
    assert len(df) == 2 and (df.family == "transformer").all()
    assert df.kl_truth.notna().all() and (df.kl_truth > 0).all() and df.heldout_bits_per_word.notna().all()


@settings(max_examples=10, deadline=None)
@given(num_identifiers=st.integers(1, 200), zipf=st.floats(0.5, 2.0), cont=st.floats(0.05, 0.95),
       depth=st.integers(0, 5), statements=st.integers(1, 30))
def test_any_code_grammar_is_a_proper_distribution(num_identifiers, zipf, cont, depth, statements):
    g = CodeGrammar(num_identifiers=num_identifiers, zipf=zipf, continue_prob=cont, max_depth=depth,
                    max_statements=statements)
    ex = g.exact()
    assert sum(ex.unigram().values()) == pytest.approx(1.0, abs=1e-9)
    # one ";" per statement: 1 + the truncated geometric number of further statements
    expected_statements = sum(cont ** k for k in range(statements))
    assert dict(zip(ex.words, ex.expected_counts))[";"] == pytest.approx(expected_statements, rel=1e-9)
    corpus, logp = g.sample(40, seed=num_identifiers)
    np.testing.assert_allclose(g.corpus_log_probs(corpus), logp, atol=1e-9)
    assert max(text.split().count(";") for text in corpus.texts()) <= statements
