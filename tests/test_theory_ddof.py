"""The Gaussian process as the peers' code runs it (issue 20, item 4): unbiased covariance
fits (ddof=1, np.cov's), m != N synthetic draws (contribution=), every generation's fit
(record="all"); each law within 3 standard errors of the simulator, under the fit it holds for.

With ddof=1 the published Replace law g sigma^2 / N and He, Xu & Cheng's golden-ratio
optimum hold exactly; with ddof=0 (ML, the default) they are rejected and our exact laws
hold (tests/test_theory_laws.py); each test shows both sides at a size where they differ.
"""

import json
import math

import numpy as np
import pytest

import collapse
from collapse import theory
from collapse.errors import CollapseError
from conftest import run_cli
from test_theory_laws import per_generation, stationary_average, within_3se, z_score  # noqa: E402


def gaussian(**kw):
    return collapse.simulate(process="gaussian", **kw)


@pytest.mark.parametrize("ddof", [0, 1])
def test_replace_published_law_holds_for_unbiased_fits_only(ddof):
    N, G = 10, 20
    r = gaussian(N=N, generations=G, trials=20000, paradigm="replace", seed=11, ddof=ddof)
    var, mse = per_generation(r, "variance_ratio"), per_generation(r, "mean_sq_error")
    for g in (1, 2, 5, 10, 20):
        within_3se(var[g], theory.gaussian_replace_variance_ratio(N, g, ddof=ddof))
        within_3se(mse[g], theory.gaussian_replace_mean_sq_error(N, g, ddof=ddof))
    published = theory.gaussian_replace_mean_sq_error_fixed_variance(N, G)
    other = theory.gaussian_replace_mean_sq_error(N, G, ddof=1 - ddof)
    if ddof == 1:  # g sigma^2 / N, the published law, exactly
        assert theory.gaussian_replace_mean_sq_error(N, G, ddof=1) == pytest.approx(published)
        within_3se(mse[G], published)
        assert z_score(mse[G], other) > 10  # the ML law (0.878) is rejected for np.cov's fits
    else:
        assert z_score(mse[G], published) < -20


def test_replace_log_det_with_unbiased_fits():
    N, dim, G = 10, 3, 30
    r = gaussian(dim=dim, N=N, generations=G, trials=4000, paradigm="replace", seed=12, ddof=1)
    ld = per_generation(r, "log_det_ratio")
    for g in (1, 10, 30):
        mean, var = theory.gaussian_replace_log_det_moments(N, dim, g, ddof=1)
        within_3se(ld[g], mean)
        assert abs(ld[g].var() / var - 1) < 0.1
    assert mean - theory.gaussian_replace_log_det_moments(N, dim, G)[0] == pytest.approx(G * dim * math.log(N / (N - 1)))


@pytest.mark.parametrize("ddof", [0, 1])
def test_weighted_golden_ratio_is_exact_for_unbiased_fits(ddof):
    N, G, burn = 10, 60, 20
    w = 1 / theory.GOLDEN_RATIO
    r = gaussian(N=N, generations=G, trials=20000, paradigm="weighted", weight=w, seed=13, ddof=ddof)
    E, V = theory.gaussian_weighted_moments(N, w, np.arange(1, G + 1), ddof=ddof)
    assert E[-1] == pytest.approx(theory.gaussian_weighted_stationary_mean_sq_error(N, w, ddof=ddof), rel=1e-9)
    mse = stationary_average(r, "mean_sq_error", burn + 1, G)
    within_3se(mse, E[burn:].mean())
    within_3se(stationary_average(r, "variance_ratio", burn + 1, G), V[burn:].mean())
    he_xu_cheng = theory.he_xu_cheng_stationary_mean_sq_error(N, w)
    if ddof == 1:  # rho = 1: He, Xu & Cheng's law, and its optimum 1/phi, at finite N
        assert theory.gaussian_weighted_stationary_variance_ratio(N, w, ddof=1) == 1.0
        assert E[-1] == pytest.approx(he_xu_cheng, rel=1e-9)
        within_3se(mse, he_xu_cheng)
        assert theory.gaussian_weighted_optimal_weight(N, ddof=1) == pytest.approx(w, abs=1e-4)
    else:
        assert z_score(mse, he_xu_cheng) < -10
        assert theory.gaussian_weighted_optimal_weight(N, ddof=0) < w - 0.03


@pytest.mark.parametrize("ddof,contribution", [(0, 0.5), (1, 2.0), (1, 0.3)])
def test_weighted_with_m_synthetic_draws(ddof, contribution):
    """He, Xu & Cheng's m != n: S has m = round(contribution N) draws, F has N."""
    N, G, burn = 10, 60, 20
    m = round(contribution * N)
    r = gaussian(N=N, generations=G, trials=20000, paradigm="weighted", weight=0.4, seed=14, ddof=ddof,
                 contribution=contribution)
    E, V = theory.gaussian_weighted_moments(N, 0.4, np.arange(1, G + 1), ddof=ddof, m=m)
    assert E[-1] == pytest.approx(theory.gaussian_weighted_stationary_mean_sq_error(N, 0.4, ddof=ddof, m=m), rel=1e-9)
    assert V[-1] == pytest.approx(theory.gaussian_weighted_stationary_variance_ratio(N, 0.4, ddof=ddof, m=m), rel=1e-9)
    mse = stationary_average(r, "mean_sq_error", burn + 1, G)
    within_3se(mse, E[burn:].mean())
    within_3se(stationary_average(r, "variance_ratio", burn + 1, G), V[burn:].mean())
    within_3se(per_generation(r, "mean_sq_error")[3], E[2])
    # m = N's law is rejected: m changes the process
    assert abs(z_score(mse, theory.gaussian_weighted_stationary_mean_sq_error(N, 0.4, ddof=ddof))) > 5


@pytest.mark.parametrize("ddof,contribution", [(0, None), (1, None), (0, 0.2), (1, 0.6)])
def test_accumulate_with_ddof_and_contribution(ddof, contribution):
    N, G = 5, 40
    m = N if contribution is None else max(1, round(contribution * N))
    r = gaussian(N=N, generations=G, trials=40000, paradigm="accumulate", seed=15, ddof=ddof,
                 contribution=contribution)
    var, mse = per_generation(r, "variance_ratio"), per_generation(r, "mean_sq_error")
    gens = np.array([1, 2, 5, 40])
    E, V = theory.gaussian_accumulate_moments(N, gens, ddof=ddof, m=m)
    for g, e, v in zip(gens, E, V):
        within_3se(mse[g], e)
        within_3se(var[g], v)
    if contribution is None:
        assert np.allclose(E, theory.gaussian_accumulate_mean_sq_error(N, gens, ddof=ddof), rtol=1e-12)
        assert np.allclose(V, theory.gaussian_accumulate_variance_ratio(N, gens, ddof=ddof), rtol=1e-12)


@pytest.mark.parametrize("paradigm,kw", [("replace", {}), ("weighted", {"weight": 0.3}),
                                         ("mix", {"alpha": 0.5}), ("accumulate-subsample", {"contribution": 0.4})])
def test_record_all_keeps_every_fit(paradigm, kw):
    cov = np.array([[2.0, 0.3], [0.3, 0.5]])
    mu = np.array([1.0, -1.0])
    args = dict(N=6, generations=7, trials=50, paradigm=paradigm, seed=16, mean=mu, cov=cov, record_every=3, **kw)
    last, every = gaussian(**args), gaussian(record="all", **args)
    assert last.fit_mean is None and last.fit_cov is None
    assert every.metrics.equals(last.metrics)  # recording changes nothing drawn
    gens = sorted(every.metrics["generation"].unique())
    assert gens == [0, 3, 6, 7]
    assert every.fit_mean.shape == (50, 4, 2) and every.fit_cov.shape == (50, 4, 2, 2)
    np.testing.assert_array_equal(every.fit_mean[:, -1], last.final_mean)
    np.testing.assert_array_equal(every.fit_cov[:, -1], last.final_cov)
    np.testing.assert_array_equal(every.fit_mean[:, 0], np.broadcast_to(mu, (50, 2)))
    mse = ((every.fit_mean - mu) ** 2).sum(axis=2).reshape(-1)
    var = np.trace(every.fit_cov, axis1=2, axis2=3).reshape(-1) / np.trace(cov)
    np.testing.assert_allclose(every.metrics["mean_sq_error"], mse, rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(every.metrics["variance_ratio"], var, rtol=1e-12)


def test_unbiased_fit_is_np_cov_of_the_real_sample():
    """Generation 1 under ddof=1 is the ML fit rescaled by N / (N - 1), draw for draw."""
    a = gaussian(N=7, generations=1, trials=200, seed=17, dim=2, draws="samples")
    b = gaussian(N=7, generations=1, trials=200, seed=17, dim=2, draws="samples", ddof=1)
    np.testing.assert_array_equal(a.final_mean, b.final_mean)
    np.testing.assert_allclose(b.final_cov, a.final_cov * 7 / 6, rtol=1e-12)


@pytest.mark.parametrize("kw,name", [
    ({"ddof": 2}, "ddof"), ({"ddof": True}, "ddof"), ({"ddof": "1"}, "ddof"), ({"ddof": 1, "N": 1}, "ddof"),
    ({"contribution": 0.5}, "contribution"), ({"paradigm": "accumulate", "contribution": 0}, "contribution"),
    ({"paradigm": "accumulate", "contribution": 1.5}, "contribution"),
    ({"paradigm": "weighted", "weight": 0.5, "contribution": 0.1, "ddof": 1}, "ddof"),
    ({"record": "some"}, "record"),
])
def test_bad_values_name_the_parameter(kw, name):
    args = dict(N=10, generations=3, trials=2)
    args.update(kw)
    with pytest.raises(CollapseError, match=name) as e:
        gaussian(**args)
    assert "unexpected" not in str(e.value)  # refused as a bad value, not as an unknown argument


def test_laws_reject_bad_ddof_and_m():
    for call in (lambda: theory.gaussian_replace_variance_ratio(10, 3, ddof=2),
                 lambda: theory.gaussian_replace_mean_sq_error(1, 3, ddof=1),
                 lambda: theory.gaussian_weighted_moments(10, 0.5, 3, ddof=1, m=1),
                 lambda: theory.gaussian_accumulate_moments(10, 3, m=0)):
        with pytest.raises(CollapseError):
            call()


# ------------------------------------------------------------- Zipf-Mandelbrot p0 (categorical)

def test_zipf_offset_is_zipf_mandelbrot():
    K, s, q = 50, 1.2, 2.7
    p = theory.make_p0("zipf", K, s, zipf_offset=q)
    expected = (np.arange(1, K + 1) + q) ** -s
    np.testing.assert_allclose(p, expected / expected.sum(), rtol=1e-14)
    assert p[0] / p[1] == pytest.approx(((2 + q) / (1 + q)) ** s)
    np.testing.assert_array_equal(theory.make_p0("zipf", K, s, zipf_offset=0), theory.make_p0("zipf", K, s))
    a = collapse.simulate(p0="zipf", K=K, zipf_s=s, zipf_offset=q, N=40, generations=5, trials=30, seed=3)
    b = collapse.simulate(p0=p, N=40, generations=5, trials=30, seed=3)
    assert a.metrics.equals(b.metrics)


@pytest.mark.parametrize("kw", [{"zipf_offset": -0.5}, {"zipf_offset": float("nan")}, {"zipf_offset": True},
                                {"zipf_offset": 1.0, "p0": "uniform"}, {"zipf_offset": 1.0, "p0": [0.5, 0.5], "K": None}])
def test_bad_zipf_offset_is_refused(kw):
    args = dict(p0="zipf", K=10, N=10, generations=2, trials=2)
    args.update(kw)
    with pytest.raises(CollapseError, match="zipf_offset") as e:
        collapse.simulate(**args)
    assert "unexpected" not in str(e.value)


# ------------------------------------------------------------------------------------ CLI

def test_cli_ddof_record_and_contribution(tmp_path):
    out = tmp_path / "g"
    rc, _, stderr = run_cli("simulate", "--process", "gaussian", "--N", 10, "--generations", 4, "--trials", 6,
                            "--paradigm", "weighted", "--weight", 0.5, "--contribution", 2, "--ddof", 1,
                            "--record", "all", "--seed", 5, "--out", out)
    assert rc == 0, stderr
    again = gaussian(N=10, generations=4, trials=6, paradigm="weighted", weight=0.5, contribution=2, ddof=1,
                     record="all", seed=5)
    fits = np.load(out / "fits.npz")
    np.testing.assert_array_equal(fits["generation"], np.arange(5))
    np.testing.assert_array_equal(fits["fit_mean"], again.fit_mean)
    np.testing.assert_array_equal(fits["fit_cov"], again.fit_cov)
    assert json.loads((out / "manifest.json").read_text())["config"]["ddof"] == 1


@pytest.mark.parametrize("args,message", [
    (("--process", "gaussian", "--ddof", "2"), "ddof must be"),
    (("--process", "gaussian", "--record", "every"), "unknown record"),
    (("--process", "gaussian", "--paradigm", "accumulate", "--contribution", "0"), "contribution must be"),
    (("--process", "gaussian", "--contribution", "0.5"), "contribution is only used"),
    (("--K", "10", "--zipf-offset", "-1"), "zipf_offset must be"),
    (("--K", "10", "--ddof", "1"), "--ddof is for --process gaussian"),
    (("--K", "10", "--record", "every"), "unknown record"),
])
def test_cli_bad_values_one_line_exit_2(tmp_path, args, message):
    rc, _, stderr = run_cli("simulate", "--N", 5, "--generations", 2, *args, "--out", tmp_path / "r")
    assert rc == 2
    assert message in stderr and len(stderr.strip().splitlines()) == 1


# -------------------------------------------------------- record="all" (categorical process)

@pytest.mark.parametrize("paradigm,kw", [("replace", {}), ("weighted", {"weight": 0.3}),
                                         ("mix", {"alpha": 0.5}), ("accumulate", {"contribution": 0.5})])
def test_categorical_record_all_keeps_every_p(paradigm, kw):
    p0 = np.array([0.4, 0.0, 0.3, 0.2, 0.1])  # a zero outcome: off every support
    args = dict(p0=p0, N=8, generations=9, trials=40, paradigm=paradigm, seed=18, record_every=4, **kw)
    last, every = collapse.simulate(**args), collapse.simulate(record="all", **args)
    assert last.fit_p is None
    assert every.metrics.equals(last.metrics) and every.events.equals(last.events)
    assert every.fit_p.shape == (40, 4, 5)  # generations 0, 4, 8, 9
    np.testing.assert_allclose(every.fit_p[:, 0], np.broadcast_to(p0, (40, 5)), rtol=1e-15)  # p0 renormalised
    np.testing.assert_array_equal(every.fit_p[:, -1], last.final_p)
    p = every.fit_p.reshape(-1, 5)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-12)
    assert (p[:, 1] == 0).all()
    np.testing.assert_array_equal(every.metrics["support"], (p > 0).sum(axis=1))
    np.testing.assert_allclose(every.metrics["sum_p2"], (p ** 2).sum(axis=1), rtol=1e-12)
    np.testing.assert_allclose(every.metrics["tv_to_truth"], 0.5 * np.abs(p - p0).sum(axis=1), rtol=1e-12, atol=1e-15)


def test_cli_categorical_record_all_and_zipf_offset(tmp_path):
    out = tmp_path / "c"
    rc, _, stderr = run_cli("simulate", "--K", 12, "--zipf-offset", 1.5, "--N", 30, "--generations", 3,
                            "--trials", 4, "--record", "all", "--seed", 2, "--out", out)
    assert rc == 0, stderr
    again = collapse.simulate(p0="zipf", K=12, zipf_offset=1.5, N=30, generations=3, trials=4, seed=2, record="all")
    fits = np.load(out / "fits.npz")
    np.testing.assert_array_equal(fits["fit_p"], again.fit_p)
    np.testing.assert_array_equal(fits["generation"], np.arange(4))
