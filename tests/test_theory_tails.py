"""The categorical simulator's tail (collapse.theory.tails) against a direct computation and
exact small-case Markov chains, and each tail law of collapse.theory.laws within 3
standard errors of the simulator (docs/theory.md, "The tail": where each holds)."""

import math

import numpy as np
import pandas as pd
import pytest

import collapse
from collapse import CollapseError, theory
from collapse.experiment.tails import replace_extinction_law
from collapse.theory import laws, tails


def z_score(samples, predicted):
    samples = np.asarray(samples, dtype=np.float64)
    se = samples.std(ddof=1) / math.sqrt(samples.size)
    assert se > 0
    return (samples.mean() - predicted) / se


def within_3se(samples, predicted):
    z = z_score(samples, predicted)
    assert abs(z) <= 3, (np.mean(samples), predicted, z)


def run(p0, N, G, trials, paradigm="replace", seed=3, **kw):
    return collapse.simulate(p0=p0, N=N, generations=G, trials=trials, paradigm=paradigm, seed=seed,
                             record="all", keep_final_p=False, **kw)


@pytest.mark.parametrize("paradigm,extra", [("replace", {}), ("mix", {"alpha": 0.5}), ("weighted", {"weight": 0.3})])
def test_tables_against_a_direct_computation(paradigm, extra):
    """bucket_table / extinction_table / missing_mass against plain loops over fit_p."""
    r = run("zipf", 12, 6, 5, paradigm, K=20, **extra)
    rows, ext, mm = tails.bucket_table(r), tails.extinction_table(r), tails.missing_mass(r)
    p0 = r.fit_p[0, 0]
    for t in range(5):
        k = {i: round(r.fit_p[t, 1, i] * 12) for i in range(20)}
        for g in range(1, 7):
            p = r.fit_p[t, g]
            assert mm[(mm.trial == t) & (mm.generation == g)].missing_mass.item() == pytest.approx(
                sum(p0[i] for i in range(20) if p[i] == 0))
            for b, low in enumerate((1, 2, 4, 8)):
                members = [i for i in range(20) if low <= k[i] <= 2 * low - 1]
                row = rows[(rows.trial == t) & (rows.generation == g) & (rows.bucket_low == low)]
                if row.empty:
                    assert not members
                    continue
                assert row.types.item() == len(members)
                assert row.present.item() == sum(p[i] > 0 for i in members)
                assert row.share.item() == pytest.approx(sum(p[i] for i in members))
                assert row.real_share.item() == pytest.approx(sum(k[i] for i in members) / 12)
        for i in range(20):
            mine = ext[(ext.trial == t) & (ext.outcome == i)]
            if k[i] == 0:
                assert mine.empty
                continue
            dead = [g for g in range(2, 7) if r.fit_p[t, g, i] == 0]
            assert (pd.isna(mine.extinct_at.item()) if not dead else mine.extinct_at.item() == dead[0])
            assert mine.returned.item() == bool(dead and any(r.fit_p[t, g, i] > 0 for g in range(dead[0], 7)))
            assert mine.real_count.item() == k[i]


def test_replace_never_returns_and_accumulate_never_loses():
    r = run("zipf", 10, 8, 50, "replace", K=15)
    assert not tails.extinction_table(r).returned.any()
    a = tails.extinction_table(run("zipf", 10, 8, 50, "accumulate", K=15))
    assert a.extinct_at.isna().all()   # R stays in the pool


@pytest.mark.parametrize("N,k", [(3, 1), (4, 2), (6, 1), (6, 3)])
def test_survival_against_the_exact_chain(N, k):
    """P(alive at g | count k in R) = 1 - (P^(g-1))_{k,0}: one independent outcome per trial
    (p0 = [k/N, 1 - k/N]; trials where R holds k copies)."""
    r = run(np.array([k / N, 1 - k / N]), N, 8, 20000, seed=11)
    ext = tails.extinction_table(r)
    mine = ext[(ext.outcome == 0) & (ext.real_count == k)]
    at = mine.extinct_at.astype("float").to_numpy()
    for g in (2, 3, 5, 8):
        alive = ~(at <= g)          # NaN (never extinct) counts as alive
        within_3se(alive.astype(float), theory.replace_survival(N, k, g))


@pytest.mark.parametrize("N,k,G", [(4, 1, 10), (5, 2, 12), (6, 1, 6), (6, 2, 60)])
def test_extinction_generation_against_the_exact_chain(N, k, G):
    """E[extinct_at | k, died by G] from (P^j)_{k,0}; without a horizon, 1 + time_to_forget."""
    r = run(np.array([k / N, 1 - k / N]), N, G, 20000, seed=12)
    ext = tails.extinction_table(r)
    died = ext[(ext.outcome == 0) & (ext.real_count == k)].extinct_at.dropna().to_numpy(dtype=np.float64)
    within_3se(died, theory.replace_extinction_generation(N, k, G))
    if G >= 60:  # nearly all absorbed: the mean without a horizon
        assert theory.replace_extinction_generation(N, k, G) == pytest.approx(
            theory.replace_extinction_generation(N, k), rel=0.02)


def test_exact_chain_solver():
    # N = 2, k = 1: each refit loses the outcome with probability 1/4 and fixes it with 1/4
    assert theory.replace_survival(2, 1, 2) == pytest.approx(0.75)
    assert theory.replace_survival(2, 1, 3) == pytest.approx(0.75 - 0.5 * 0.25)
    assert theory.replace_extinction_generation(2, 1) == pytest.approx(3.0)  # 1 + time_to_forget(2, 1) = 1 + 2
    assert laws.replace_missing_mass(np.array([0.5, 0.5]), 2, 1) == pytest.approx(0.25)
    with pytest.raises(CollapseError):
        theory.replace_survival(5, 0, 3)
    with pytest.raises(CollapseError):
        theory.replace_extinction_generation(5, 1, 1)


@pytest.mark.parametrize("N,K,s", [(3, 5, 1.0), (5, 8, 1.5), (6, 12, 0.5)])
def test_missing_mass_against_the_exact_chain(N, K, s):
    """E[M_g] = sum_i p0_i sum_k Bin(k; N, p0_i) (P^(g-1))_{k,0} under Replace; Accumulate
    keeps generation 1's value."""
    r = run("zipf", N, 10, 20000, K=K, zipf_s=s, seed=13)
    mm = tails.missing_mass(r).pivot(index="trial", columns="generation", values="missing_mass")
    p0 = r.fit_p[0, 0]
    for g in (1, 2, 4, 10):
        within_3se(mm[g], theory.replace_missing_mass(p0, N, g))
    a = run("zipf", N, 6, 20000, "accumulate", K=K, zipf_s=s, seed=14)
    mm = tails.missing_mass(a).pivot(index="trial", columns="generation", values="missing_mass")
    assert np.array_equal(mm[6].to_numpy(), mm[1].to_numpy())
    within_3se(mm[6], theory.replace_missing_mass(p0, N, 1))


def test_large_N_laws_hold_where_k_is_small():
    """For k << N: the horizon law from the Galton-Watson line (no N in it), the Poisson
    missing mass and Dohmatob et al.'s Zipf law (with our constant and N_g), within 3 s.e.;
    and the measured extinction generation far below the diffusion law 2k ln(N/k), which
    has no horizon."""
    N, G = 1000, 12
    r = run("zipf", N, G, 300, K=20000, zipf_s=2.0, seed=15)
    ext = tails.extinction_table(r)
    for k in (1, 2):
        died = ext[ext.real_count == k].extinct_at.dropna().to_numpy(dtype=np.float64)
        within_3se(died, theory.replace_extinction_generation_poisson(k, G))
        assert died.mean() < 0.5 * (1 + replace_extinction_law(N, np.array([k]))[0])
    mm = tails.missing_mass(r).pivot(index="trial", columns="generation", values="missing_mass")
    p0 = r.fit_p[0, 0]
    for g in (1, 4, 12):
        within_3se(mm[g], theory.replace_missing_mass_poisson(p0, N, g))
        within_3se(mm[g], theory.zipf_missing_mass_law(N, 2.0, g))
    # g generations of Replace lose what one fit to N (1 - q_{g-1}) ~ 2N/g draws would
    q = laws.galton_watson_extinction(200)
    assert 200 * (1 - q[200]) == pytest.approx(2.0, rel=0.05)


def test_zipf_law_fails_where_the_tail_is_short():
    """Dohmatob et al.'s form assumes infinitely many outcomes: at N p0_K >~ 1 (K = 30,
    N = 200) the simulator rejects it, while the exact chain holds."""
    N, K = 200, 30
    r = run("zipf", N, 3, 4000, K=K, zipf_s=2.0, seed=16)
    mm = tails.missing_mass(r).pivot(index="trial", columns="generation", values="missing_mass")
    p0 = r.fit_p[0, 0]
    within_3se(mm[3], theory.replace_missing_mass(p0, N, 3))
    assert abs(z_score(mm[3], theory.zipf_missing_mass_law(N, 2.0, 3))) > 5


def test_tails_need_every_generation_recorded():
    r = collapse.simulate(p0="zipf", K=5, N=4, generations=3, trials=2, seed=0)
    with pytest.raises(CollapseError):
        tails.bucket_table(r)
    r = collapse.simulate(p0="zipf", K=5, N=4, generations=4, trials=2, seed=0, record="all", record_every=2)
    with pytest.raises(CollapseError):
        tails.extinction_table(r)


def test_collapse_simulate_writes_the_tail_files(tmp_path):
    from collapse.cli import main

    out = tmp_path / "sim"
    assert main(["simulate", "--p0", "zipf", "--K", "10", "--N", "8", "--generations", "4", "--trials", "3",
                 "--record", "all", "--out", str(out)]) in (0, None)
    rows = pd.read_parquet(out / "tails.parquet")
    assert {"trial", "generation", "bucket_low", "bucket_high", "types", "survival", "share", "real_share",
            "missing_mass"} <= set(rows.columns)
    assert set(pd.read_parquet(out / "extinction.parquet").columns) >= {"real_count", "extinct_at", "returned"}
