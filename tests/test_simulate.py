"""collapse.simulate: determinism, invariants (hypothesis), metric definitions against
numpy, bad input, and the `collapse simulate` command."""

import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import collapse
from collapse import _core
from collapse.theory.categorical import make_p0
from collapse.theory.result import PARADIGMS
from conftest import run_cli


def run(**kw):
    base = dict(p0="zipf", K=50, N=60, generations=12, trials=40, paradigm="replace", seed=9)
    base.update(kw)
    return collapse.simulate(**base)


def same_result(a, b):
    pd.testing.assert_frame_equal(a.metrics, b.metrics)
    pd.testing.assert_frame_equal(a.events, b.events)
    assert np.array_equal(a.final_p, b.final_p)


# ------------------------------------------------------------------------ determinism

@pytest.mark.parametrize("paradigm,alpha,method", [
    ("replace", None, "auto"), ("accumulate", None, "auto"), ("accumulate-subsample", None, "items"),
    ("accumulate-subsample", None, "hypergeometric"), ("mix", 0.3, "items"), ("mix", 0.3, "hypergeometric"),
    ("fresh", 0.6, "auto")])
def test_same_seed_same_result_for_any_thread_count(paradigm, alpha, method):
    results = [run(paradigm=paradigm, alpha=alpha, threads=t, without_replacement=method) for t in (1, 2, 4)]
    for other in results[1:]:
        same_result(results[0], other)
    assert not run(paradigm=paradigm, alpha=alpha, seed=10, without_replacement=method).metrics.equals(
        results[0].metrics)


@pytest.mark.parametrize("N", [5, 2000])  # N << K and N >> K take different draw methods
def test_trial_chunks_reproduce_the_whole(N):
    p0 = make_p0("zipf", 300)
    whole = _core.simulate_categorical(p0, N, 6, "accumulate-subsample", 1.0, 4, 0, 30, 2)
    part = _core.simulate_categorical(p0, N, 6, "accumulate-subsample", 1.0, 4, 17, 13, 1)
    for key in ("entropy", "support", "kl_to_truth", "final_p", "collapse"):
        assert np.array_equal(whole[key][17:], part[key])


# ------------------------------------------------------------- metrics against numpy

def numpy_metrics(p, p0, tail):
    nz = p > 0
    return dict(entropy=-(p[nz] * np.log(p[nz])).sum(), support=int(nz.sum()), sum_p2=(p ** 2).sum(),
                kl_to_truth=(p[nz] * np.log(p[nz] / p0[nz])).sum(), tv_to_truth=0.5 * np.abs(p - p0).sum(),
                tail_mass=p[tail].sum())


@pytest.mark.parametrize("paradigm,alpha,N", [("replace", None, 20), ("accumulate", None, 500),
                                              ("mix", 0.5, 30), ("fresh", 0.2, 3000),
                                              ("accumulate-subsample", None, 25)])
def test_metrics_match_numpy_on_final_p(paradigm, alpha, N):
    p0 = make_p0("zipf", 400, 1.2)
    p0[7] = 0.0
    p0 /= p0.sum()
    r = collapse.simulate(p0=p0, N=N, generations=5, trials=30, paradigm=paradigm, alpha=alpha, seed=1,
                          tail_fraction=0.25)
    # the tail set: the rarest ceil(0.25 * 399) = 100 outcomes of the support
    order = [i for i in np.argsort(p0, kind="stable") if p0[i] > 0]
    tail = np.sort(order[:100])
    assert np.array_equal(_core.simulation_tail_set(p0, 0.25), tail)
    gen0 = r.metrics[r.metrics.generation == 0].iloc[0]
    last = r.metrics[r.metrics.generation == 5].reset_index(drop=True)
    for name, value in numpy_metrics(p0, p0, tail).items():
        assert gen0[name] == pytest.approx(value, rel=1e-12, abs=1e-14)
    for t in range(30):
        for name, value in numpy_metrics(r.final_p[t], p0, tail).items():
            assert last.loc[t, name] == pytest.approx(value, rel=1e-9, abs=1e-12), name


# ---------------------------------------------------------------------- invariants

@st.composite
def cases(draw):
    K = draw(st.integers(2, 12))
    w = np.array(draw(st.lists(st.floats(0, 10), min_size=K, max_size=K)))
    if w.sum() <= 0:
        w[0] = 1.0
    paradigm = draw(st.sampled_from(PARADIGMS))
    alpha = draw(st.floats(0, 1)) if paradigm in ("mix", "fresh") else None
    weight = draw(st.floats(0, 1)) if paradigm == "weighted" else None
    return dict(p0=w / w.sum(), N=draw(st.integers(1, 40)), generations=draw(st.integers(1, 8)),
                trials=draw(st.integers(1, 6)), paradigm=paradigm, alpha=alpha, weight=weight,
                seed=draw(st.integers(0, 2**64 - 1)),
                without_replacement=draw(st.sampled_from(["auto", "hypergeometric", "items"])))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_invariants(case):
    r = collapse.simulate(**case)
    p0, N, G = case["p0"], case["N"], case["generations"]
    m = r.metrics
    assert len(m) == case["trials"] * (G + 1)
    # final distributions: normalised, multiples of 1/D (weighted: of (1-w)/N and w/N), inside p0's support
    D = N * G if case["paradigm"] == "accumulate" else N
    fp = r.final_p
    assert np.allclose(fp.sum(axis=1), 1.0, atol=1e-12)
    if case["paradigm"] != "weighted":
        assert np.allclose(fp * D, np.rint(fp * D), atol=1e-9)
    assert np.all(fp[:, p0 == 0] == 0)
    # metric ranges
    assert (m.kl_to_truth >= 0).all() and (m.tv_to_truth >= 0).all() and (m.tv_to_truth <= 1 + 1e-12).all()
    assert (m.support >= 1).all() and (m.support <= min(len(p0), (p0 > 0).sum())).all()
    assert (m.entropy <= np.log(m.support) + 1e-9).all() and (m.entropy >= -1e-12).all()
    assert (m.sum_p2 >= 1 / m.support - 1e-12).all() and (m.sum_p2 <= 1 + 1e-12).all()
    assert ((m.tail_mass >= -1e-12) & (m.tail_mass <= 1 + 1e-12)).all()
    sup = m.pivot(index="trial", columns="generation", values="support").to_numpy()
    assert (sup[:, 1:] <= (2 * N if case["paradigm"] == "weighted" else N)).all()
    if case["paradigm"] == "replace" or (case["paradigm"] in ("mix", "fresh") and math.floor(case["alpha"] * N + 0.5) == N):
        assert (np.diff(sup, axis=1) <= 0).all()  # support never grows
    if case["paradigm"] == "accumulate":
        assert (np.diff(sup[:, 1:], axis=1) >= 0).all()  # the pool only grows
    # events agree with the support path
    for t, row in enumerate(sup):
        ext = np.flatnonzero(row < (p0 > 0).sum())
        col = np.flatnonzero(row == 1)
        ev = r.events.iloc[t]
        assert (pd.isna(ev.first_extinction) and ext.size == 0) or ev.first_extinction == ext[0]
        assert (pd.isna(ev.collapse) and col.size == 0) or ev.collapse == col[0]


def test_replace_collapse_is_absorbing_and_final_p_matches_event():
    r = collapse.simulate(p0="uniform", K=4, N=3, generations=40, trials=200, seed=3)
    done = r.events.dropna(subset=["collapse"])
    assert len(done) > 150
    for _, ev in done.iterrows():
        assert r.final_p[ev.trial, ev.collapsed_to] == 1.0


# ---------------------------------------------------------------------- bad input

@pytest.mark.parametrize("kw,message", [
    (dict(p0=[1.0]), "at least K = 2"),
    (dict(p0=[0.5, 0.6]), "sum to 1"),
    (dict(p0=[1.5, -0.5]), "non-negative"),
    (dict(p0=[np.nan, 1.0]), "finite"),
    (dict(p0=[[0.5, 0.5]]), "1-d"),
    (dict(p0="zipf", K=1), "K must be"),
    (dict(p0="pareto", K=10), "unknown p0"),
    (dict(N=0), "N must be"),
    (dict(N=2.5), "N must be an integer"),
    (dict(generations=0), "generations must be"),
    (dict(trials=0), "trials must be"),
    (dict(paradigm="replacee"), "unknown paradigm"),
    (dict(paradigm="mix"), "needs alpha"),
    (dict(paradigm="replace", contribution=0.5), "only used by accumulate"),
    (dict(paradigm="accumulate-subsample", contribution=0.0), r"contribution must be in \(0, 1\]"),
    (dict(paradigm="weighted"), "needs weight"),
    (dict(paradigm="weighted", weight=2.0), r"weight must be in \[0, 1\]"),
    (dict(paradigm="fresh", alpha=0.5, weight=0.5), "only used by paradigm 'weighted'"),
    (dict(paradigm="mix", alpha=1.5), r"alpha must lie in \[0, 1\]"),
    (dict(paradigm="fresh", alpha=-0.1), r"alpha must lie in \[0, 1\]"),
    (dict(paradigm="replace", alpha=float("nan")), r"alpha must lie in \[0, 1\]"),
    (dict(seed=-1), "seed must be"),
    (dict(executor="dask"), "unknown executor"),
    (dict(process="markov"), "unknown process"),
    (dict(tail_fraction=0.0), "tail_fraction"),
    (dict(without_replacement="reservoir"), "without_replacement"),
    (dict(p0="uniform", K=10**6, trials=1000), "keep_final_p=False"),
    (dict(record_every=0), "record_every"),
])
def test_bad_input(kw, message):
    base = dict(p0=[0.5, 0.5], N=5, generations=2, trials=2)
    base.update(kw)
    with pytest.raises(ValueError, match=message):
        collapse.simulate(**base)


def test_core_rejects_bad_input_too():
    with pytest.raises(ValueError, match="sum to 1"):
        _core.simulate_categorical(np.array([0.2, 0.2]), 5, 2, "replace", 1.0, 0, 0, 2)
    with pytest.raises(ValueError, match="unknown paradigm"):
        _core.simulate_categorical(np.array([0.5, 0.5]), 5, 2, "nope", 1.0, 0, 0, 2)
    with pytest.raises(ValueError, match="alpha"):
        _core.simulate_categorical(np.array([0.5, 0.5]), 5, 2, "mix", 2.0, 0, 0, 2)


# ---------------------------------------------------------------------------- CLI

def test_cli_writes_run_directory(tmp_path):
    out = tmp_path / "run"
    rc, stdout, stderr = run_cli("simulate", "--K", 30, "--N", 40, "--generations", 6, "--trials", 5,
                                 "--paradigm", "mix", "--alpha", 0.5, "--seed", 3, "--threads", 2,
                                 "--save-final-p", "--out", out)
    assert rc == 0, stderr
    assert "entropy" in stdout and "collapsed" in stdout
    for name in ("config.toml", "manifest.json", "metrics.csv", "metrics.parquet", "events.csv", "final_p.npy"):
        assert (out / name).exists(), name
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["complete"] and manifest["generations_finished"] == 6 and manifest["kind"] == "simulate"
    assert manifest["columns"] == list(pd.read_csv(out / "metrics.csv").columns)
    csv = pd.read_csv(out / "metrics.csv")
    pq = pd.read_parquet(out / "metrics.parquet")
    for col in ("paradigm", "alpha", "seed", "trial", "generation", "entropy", "support", "sum_p2",
                "kl_to_truth", "tv_to_truth", "tail_mass"):
        assert col in csv.columns and col in pq.columns
    api = collapse.simulate(p0="zipf", K=30, N=40, generations=6, trials=5, paradigm="mix", alpha=0.5, seed=3)
    pd.testing.assert_frame_equal(pq, api.metrics)
    assert np.allclose(csv["kl_to_truth"], api.metrics["kl_to_truth"], rtol=1e-9)
    assert np.array_equal(np.load(out / "final_p.npy"), api.final_p)
    try:
        import tomllib
    except ImportError:  # Python < 3.11
        import tomli as tomllib
    cfg = tomllib.loads((out / "config.toml").read_text())["simulate"]
    assert cfg["paradigm"] == "mix" and cfg["alpha"] == 0.5 and cfg["K"] == 30


def test_cli_record_every(tmp_path):
    rc, _, stderr = run_cli("simulate", "--K", 20, "--N", 30, "--generations", 10, "--trials", 3,
                            "--record-every", 4, "--out", tmp_path / "r")
    assert rc == 0, stderr
    m = pd.read_csv(tmp_path / "r" / "metrics.csv")
    assert sorted(set(m.generation)) == [0, 4, 8, 10]


def test_cli_p0_from_file(tmp_path):
    p0 = np.array([0.7, 0.2, 0.1])
    np.save(tmp_path / "p0.npy", p0)
    rc, _, stderr = run_cli("simulate", "--p0", tmp_path / "p0.npy", "--N", 10, "--generations", 3,
                            "--trials", 4, "--out", tmp_path / "r")
    assert rc == 0, stderr
    assert pd.read_csv(tmp_path / "r" / "metrics.csv")["entropy"].iloc[0] == pytest.approx(
        -(p0 * np.log(p0)).sum())


@pytest.mark.parametrize("args,message", [
    (["--K", "1", "--N", "5", "--generations", "2"], "K must be"),
    (["--K", "5", "--N", "0", "--generations", "2"], "N must be"),
    (["--K", "5", "--N", "5", "--generations", "2", "--paradigm", "mix", "--alpha", "2"], "alpha"),
    (["--K", "5", "--N", "5", "--generations", "2", "--paradigm", "bogus"], "unknown paradigm"),
    (["--N", "5", "--generations", "2"], "needs --K"),
    (["--p0", "missing.npy", "--N", "5", "--generations", "2"], "no such file"),
])
def test_cli_bad_input(tmp_path, args, message):
    rc, _, stderr = run_cli("simulate", *args, "--out", tmp_path / "r")
    assert rc == 2
    assert message in stderr and len(stderr.strip().splitlines()) == 1
