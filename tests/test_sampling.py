"""Sampling: API, determinism, random backoff models (hypothesis), CLI."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats

import collapse
from collapse import _core
from collapse.ngram.sampler import sampler_for

from conftest import run_cli


@pytest.fixture(scope="module")
def small_corpus():
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(40)]
    docs = [[words[j] for j in rng.zipf(1.5, size=rng.integers(0, 30)) % 40] for _ in range(300)]
    return collapse.Corpus.from_documents(docs)


@pytest.fixture(scope="module")
def tri_model(small_corpus):
    return collapse.NGramModel.fit(small_corpus, order=3, smoothing="mkn")


@pytest.fixture(scope="module")
def tri_arpa(tri_model, tmp_path_factory):
    path = tmp_path_factory.mktemp("arpa") / "tri.arpa"
    tri_model.to_arpa(str(path))
    return path


# -- Python API ----------------------------------------------------------------------------

def test_sample_returns_corpus_in_model_vocab(tri_model):
    c = tri_model.sample(200, seed=3)
    assert isinstance(c, collapse.Corpus)
    assert c.vocab is tri_model.vocab
    assert c.num_documents == 200
    assert c.tokens.dtype == np.uint32 and c.offsets.dtype == np.int64
    assert not np.isin(c.tokens, [1, 2]).any()  # never <s> or </s> inside a document
    assert c.num_tokens > 0


@pytest.mark.parametrize("kwargs", [
    {"num_sequences": 0}, {"num_sequences": -1}, {"temperature": 0.0}, {"temperature": -1.0},
    {"temperature": float("nan")}, {"temperature": float("inf")}, {"top_k": -1}, {"top_p": 0.0},
    {"top_p": 1.5}, {"top_p": float("nan")}, {"max_length": 0}, {"threads": -1}, {"seed": -1},
    {"num_sequences": 2.5},
])
def test_bad_arguments_raise_value_error(tri_model, kwargs):
    args = {"num_sequences": 3, "seed": 0, **kwargs}
    with pytest.raises(ValueError):
        tri_model.sample(**args)


def test_max_length_caps_sequences(tri_model):
    c = tri_model.sample(500, seed=1, max_length=3)
    assert c.lengths().max() <= 3
    assert (c.lengths() == 3).any()


# -- determinism -----------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs", [{}, {"temperature": 0.8}, {"top_k": 5}, {"top_p": 0.7, "temperature": 1.2}])
def test_same_output_for_any_thread_count(tri_model, kwargs):
    runs = [tri_model.sample(3000, seed=11, threads=t, **kwargs) for t in (1, 2, 4)]
    for r in runs[1:]:
        assert r.tokens.tobytes() == runs[0].tokens.tobytes()
        assert r.offsets.tobytes() == runs[0].offsets.tobytes()


def test_prefix_of_a_larger_call_is_the_smaller_call(tri_model):
    big = tri_model.sample(1000, seed=5, threads=2)
    small = tri_model.sample(300, seed=5, threads=3)
    np.testing.assert_array_equal(big.offsets[:301], small.offsets)
    np.testing.assert_array_equal(big.tokens[:small.num_tokens], small.tokens)
    other = tri_model.sample(300, seed=6)
    assert other.tokens.tobytes() != small.tokens.tobytes()


def test_sequences_are_streams(tri_model):
    """Sequence i of a call is sequence 0 of the core call starting at stream i."""
    sampler = sampler_for(tri_model, 1.0)
    tokens, offsets = sampler.sample(50, seed=9)
    t1, o1 = sampler.sample(1, seed=9, first_sequence=17)
    np.testing.assert_array_equal(t1, tokens[offsets[17]:offsets[18]])


# -- random backoff models (hypothesis) --------------------------------------------------------

def _lp(x):
    return f"{x:.6f}"


@st.composite
def backoff_models(draw):
    """A random ARPA model (order 2 or 3, 1-5 words) with every prefix stored, and a
    dict {ngram tuple: (prob, backoff)} of it. Probabilities are not normalised: the
    sampler normalises p(. | h) itself."""
    order = draw(st.integers(2, 3))
    nwords = draw(st.integers(1, 5))
    vocab = [f"v{i}" for i in range(nwords)]
    logp = st.floats(-3.0, 0.0, allow_nan=False)
    logb = st.floats(-1.5, 0.5, allow_nan=False)
    model = {}
    for w in ["<unk>", "</s>"] + vocab:
        zero = w == "<unk>" and draw(st.booleans())
        model[(w,)] = (-99.0 if zero else draw(logp), draw(logb))
    model[("<s>",)] = (-99.0, draw(logb))
    firsts = ["<s>"] + vocab
    seconds = ["</s>", "<unk>"] + vocab
    bigrams = [b for b in itertools.product(firsts, seconds) if draw(st.booleans())]
    for b in bigrams:
        model[b] = (draw(logp), draw(logb))
    if order == 3:
        for b in bigrams:
            if b[1] in ("</s>",):
                continue
            for w in seconds:
                if draw(st.integers(0, 2)) == 0:
                    model[b + (w,)] = (draw(logp), 0.0)
    return order, model


def write_arpa(path, order, model):
    by_order = {n: sorted(k for k in model if len(k) == n) for n in range(1, order + 1)}
    lines = ["\\data\\"] + [f"ngram {n}={len(by_order[n])}" for n in by_order] + [""]
    for n, grams in by_order.items():
        lines.append(f"\\{n}-grams:")
        for g in grams:
            p, b = model[g]
            lines.append(f"{_lp(p)}\t{' '.join(g)}" + (f"\t{_lp(b)}" if n < order else ""))
        lines.append("")
    lines.append("\\end\\")
    path.write_text("\n".join(lines) + "\n")


def reference_distribution(model, history, vocab_words):
    """Normalised p(. | history) by the backoff formula, computed directly from the dict
    (values as float32, as the ARPA reader stores them)."""
    def f32(x):  # the value as written to the file (6 decimals), read as float32
        return float(np.float32(float(_lp(x))))

    def p(w, h):
        if (h + (w,)) in model:
            lp = f32(model[h + (w,)][0])
            return 0.0 if lp <= -99 else 10.0 ** lp
        if not h:
            return 0.0
        bo = 10.0 ** f32(model[h][1]) if h in model else 1.0
        return bo * p(w, h[1:])

    out = np.array([0.0 if w == "<s>" else p(w, tuple(history)) for w in vocab_words])
    return out / out.sum()


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(backoff_models())
def test_random_backoff_models(tmp_path, spec):
    order, model = spec
    path = tmp_path / "m.arpa"
    write_arpa(path, order, model)
    m = collapse.NGramModel.from_arpa(str(path))
    words = m.vocab.words
    sampler = sampler_for(m, 1.0)
    # The sampler's conditional equals the formula's, for every history.
    contexts = [["<s>"] + list(t) for t in itertools.product(words[2:], repeat=order - 2)]
    contexts += [list(t) for t in itertools.product([w for w in words if w != "<s>"][1:], repeat=order - 1)]
    for h in contexts:
        ref = reference_distribution(model, h, words)
        got = sampler.distribution(np.array([m.vocab.id(w) for w in h], dtype=np.uint32))
        # rtol 1e-6, not 1e-9: n-grams stored without their suffix get blanks (insert_blanks,
        # as kenlm does), whose values are float32 sums like every stored value.
        np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-12, err_msg=str(h))
    # Draws: only vocabulary words, never <s>, </s> only as the end; first words follow
    # p(. | <s>) (chi-square, p > 1e-6).
    c = m.sample(4000, seed=1, max_length=20, threads=2)
    assert c.tokens.size == 0 or int(c.tokens.max()) < len(words)
    assert not np.isin(c.tokens, [1, 2]).any()
    assert c.lengths().max() <= 20
    ref = reference_distribution(model, ["<s>"], words)
    first = np.where(c.lengths() > 0, c.tokens[np.minimum(c.offsets[:-1], max(c.num_tokens - 1, 0))], 2)
    observed = np.bincount(first, minlength=len(words)).astype(float)
    assert not observed[ref == 0].any()
    keep = ref > 0
    if keep.sum() >= 2:
        pval = stats.chisquare(observed[keep], ref[keep] * observed.sum()).pvalue
        assert pval > 1e-6, (observed, ref)


def test_temperature_is_the_tempered_formula(tri_model):
    s1 = sampler_for(tri_model, 1.0)
    s2 = sampler_for(tri_model, 0.5)
    for h in ([1], [1, 5], [7, 8], [3]):
        h = np.array(h, dtype=np.uint32)
        p = s1.distribution(h)
        q = p ** 2
        np.testing.assert_allclose(s2.distribution(h), q / q.sum(), rtol=1e-9, atol=1e-15)


def test_model_without_positive_mass_is_rejected(tmp_path):
    path = tmp_path / "zero.arpa"
    path.write_text("\\data\\\nngram 1=3\n\n\\1-grams:\n-99\t<unk>\n-99\t<s>\n-99\t</s>\n\n\\end\\\n")
    m = collapse.NGramModel.from_arpa(str(path))
    with pytest.raises(ValueError):
        m.sample(1, seed=0)


def test_unigram_model_samples(tmp_path):
    path = tmp_path / "uni.arpa"
    path.write_text("\\data\\\nngram 1=4\n\n\\1-grams:\n-99\t<unk>\n-99\t<s>\n-0.30103\t</s>\n-0.30103\tx\n\n\\end\\\n")
    m = collapse.NGramModel.from_arpa(str(path))
    c = m.sample(20000, seed=0)
    # Lengths are geometric with p(</s>) = 1/2: mean 1.
    assert abs(c.lengths().mean() - 1.0) < 0.05
    assert set(np.unique(c.tokens)) == {3}


# -- CLI -------------------------------------------------------------------------------------

def test_cli_writes_one_sequence_per_line(tri_arpa, tri_model, tmp_path):
    out = tmp_path / "out.txt"
    rc, _, err = run_cli("ngram", "sample", tri_arpa, "-n", 50, "--seed", 4, "-o", out)
    assert rc == 0, err
    lines = out.read_text().split("\n")
    assert lines[-1] == "" and len(lines) == 51
    vocab = set(tri_model.vocab.words) - {"<s>", "</s>"}
    for line in lines[:-1]:
        assert "  " not in line and not line.startswith(" ") and not line.endswith(" ")
        assert set(line.split()) <= vocab
    # Same as the Python API, and the same for any thread count.
    api = tri_model.sample(50, seed=4)
    assert lines[:-1] == list(api.texts())
    out2 = tmp_path / "out2.txt"
    rc, _, err = run_cli("ngram", "sample", tri_arpa, "-n", 50, "--seed", 4, "--threads", 3, "-o", out2)
    assert rc == 0 and out2.read_bytes() == out.read_bytes()


def test_cli_options(tri_arpa, tmp_path):
    out = tmp_path / "o.txt"
    rc, _, err = run_cli("ngram", "sample", tri_arpa, "-n", 20, "--seed", 1, "--temperature", 0.7, "--top-k", 3,
                         "--top-p", 0.9, "--max-length", 5, "--threads", 2, "-o", out)
    assert rc == 0, err
    lines = out.read_text().splitlines()
    assert len(lines) == 20 and all(len(x.split()) <= 5 for x in lines)


@pytest.mark.parametrize("args", [
    ["-n", 0], ["-n", -3], ["--temperature", 0], ["--temperature", "nan"], ["--temperature", -2],
    ["--top-k", -1], ["--top-p", 0], ["--top-p", 1.01], ["--max-length", 0], ["--seed", -1], ["--threads", -1],
])
def test_cli_bad_arguments_exit_2(tri_arpa, tmp_path, args):
    base = {"-n": 5, "--seed": 1}
    for k, v in zip(args[::2], args[1::2]):
        base[k] = v
    argv = [x for kv in base.items() for x in kv]
    out = tmp_path / "o.txt"
    rc, _, err = run_cli("ngram", "sample", tri_arpa, *argv, "-o", out)
    assert rc == 2
    assert len(err.strip().splitlines()) == 1, err
    assert not out.exists()


@pytest.mark.parametrize("cut", [0.3, 0.7, 0.999])
def test_cli_truncated_arpa_exit_2(tri_arpa, tmp_path, cut):
    data = tri_arpa.read_bytes()
    bad = tmp_path / "trunc.arpa"
    bad.write_bytes(data[: int(len(data) * cut)])
    out = tmp_path / "o.txt"
    rc, _, err = run_cli("ngram", "sample", bad, "-n", 5, "--seed", 1, "-o", out)
    assert rc == 2
    assert len(err.strip().splitlines()) == 1 and "error" in err
    assert not out.exists()


def test_cli_missing_model_exit_2(tmp_path):
    rc, _, err = run_cli("ngram", "sample", tmp_path / "nope.arpa", "-n", 5, "--seed", 1, "-o", tmp_path / "o.txt")
    assert rc == 2 and len(err.strip().splitlines()) == 1


def test_cli_missing_required_options_exit_2(tri_arpa, tmp_path):
    rc, _, err = run_cli("ngram", "sample", tri_arpa, "--seed", 1, "-o", tmp_path / "o.txt")
    assert rc == 2 and len(err.strip().splitlines()) == 1


def test_lookahead_loop_draws_the_same_sequences(tmp_path):
    """The sampler's look-ahead loop (switched on by itself only for models larger than a
    last-level cache) is forced on and off in subprocesses: byte-identical output."""
    import os
    import subprocess
    import sys

    rng = np.random.default_rng(5)
    docs = [" ".join(f"w{int(x)}" for x in rng.zipf(1.5, size=rng.integers(1, 25)) % 300) for _ in range(400)]
    text = tmp_path / "c.txt"
    text.write_text("\n".join(docs) + "\n")
    script = (
        "import sys, numpy as np, collapse\n"
        "c = collapse.load_corpus(sys.argv[1])\n"
        "for order, sm in ((3, 'mkn'), (4, 'kn'), (3, 'mle')):\n"
        "    m = collapse.NGramModel.fit(c, order=order, smoothing=sm)\n"
        "    s = m.sample(3000, seed=11, threads=2)\n"
        "    sys.stdout.buffer.write(s.tokens.tobytes() + s.offsets.tobytes())\n")
    outs = {}
    for mode in ("always", "never"):
        env = {**os.environ, "COLLAPSE_SAMPLER_LOOKAHEAD": mode}
        if env.get("PYTHONPATH"):
            env["PYTHONPATH"] = os.pathsep.join(os.path.abspath(p) for p in env["PYTHONPATH"].split(os.pathsep) if p)
        proc = subprocess.run([sys.executable, "-c", script, str(text)], env=env, capture_output=True, timeout=300)
        assert proc.returncode == 0, proc.stderr.decode()[-2000:]
        outs[mode] = proc.stdout
    assert len(outs["always"]) > 3000 * 4
    assert outs["always"] == outs["never"]


@pytest.mark.parametrize("source", ["grammar", "train-head"])
@pytest.mark.parametrize("order", [3, 5])
def test_sampler_keeps_at_most_twice_the_tables(request, source, order):
    """Issue 13: the sampler's own arrays (nbytes: one 32-byte record per state, one
    24-byte record per row, the unigram order) are at most twice the model's tables (per
    n-gram: its ids, log10 prob and log10 backoff). Models of the story grammar (always
    there) and of TinyStories' train-head (skipped where the samples are absent)."""
    if source == "grammar":
        from collapse.data.storygrammar import sample_stories

        corpus = sample_stories(3000, seed=7)
    else:
        corpus = request.getfixturevalue("train_head_lines")[0]
    model = collapse.NGramModel.fit(corpus, order=order)
    counts = model.num_ngrams()
    table_bytes = sum(n * (4 * (k + 1) + 4 + 4) for k, n in enumerate(counts))
    sampler = _core.Sampler(model._core, 1.0)
    # nbytes counts what it must hold: not less than the records themselves.
    assert sampler.nbytes >= 32 * sampler.num_states + 24 * sum(counts)
    assert sampler.nbytes <= 2 * table_bytes, (sampler.nbytes, table_bytes)
