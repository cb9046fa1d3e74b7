"""docs/theory.md's figures and table: every law of collapse.theory against the simulator.

Each row of the table is the comparison a test of tests/test_theory_laws.py or
tests/test_simulate_closed_forms.py makes (same settings, same seeds; the forgetting rows
for k = 1, 2, 5, 20 are the figure's extra points): the simulated mean over trials, its
standard error, the law's value and the z-score; where the published (or approximate)
form of a law differs from the exact law for our definitions, its value and z-score too. One figure per law: the simulation's mean with a band
of +-3 standard errors against the closed form. Then the paper's claim as a curve
(collapse.theory.study). Writes docs/theory-*.png, bench/results/theory_table.md and
bench/results/theory_laws.json.

    PYTHONPATH=python python bench/theory_figures.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time

import numpy as np

import _path  # noqa: E402,F401  (in-place build or installed package)
import collapse
from collapse import theory
from collapse.theory import study

HERE = os.path.dirname(os.path.abspath(__file__))
DOCS = os.path.join(HERE, "..", "docs")
RESULTS = os.path.join(HERE, "results")
ROWS = []


def plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as p

    return p


def mean_se(x):
    x = np.asarray(x, dtype=np.float64)
    return float(x.mean()), float(x.std(ddof=1) / math.sqrt(x.size))


def row(law, source, setting, samples, predicted, published=None):
    m, se = mean_se(samples)
    ROWS.append(dict(law=law, source=source, setting=setting, measured=m, se=se, predicted=float(predicted),
                     z=(m - predicted) / se, published=None if published is None else float(published),
                     z_published=None if published is None else (m - published) / se))


def pivot(result, metric):
    return result.metrics.pivot(index="trial", columns="generation", values=metric)


def band(ax, piv, label, color, gens=None):
    gens = piv.columns.to_numpy() if gens is None else gens
    m = piv[gens].mean().to_numpy()
    se = piv[gens].std(ddof=1).to_numpy() / math.sqrt(len(piv))
    ax.fill_between(gens, m - 3 * se, m + 3 * se, color=color, alpha=0.3, lw=0)
    ax.plot(gens, m, ".", color=color, ms=3, label=label)


def save(fig, name):
    fig.tight_layout()
    path = os.path.join(DOCS, name)
    fig.savefig(path, dpi=110)
    plt().close(fig)
    print("wrote", os.path.relpath(path))


def gaussian(**kw):
    return collapse.simulate(process="gaussian", **kw)


# --------------------------------------------------------------------------------- laws

def replace_laws():
    N, G = 10, 20
    r = gaussian(N=N, generations=G, trials=20000, paradigm="replace", seed=1)
    var, mse = pivot(r, "variance_ratio"), pivot(r, "mean_sq_error")
    row("Gaussian Replace: E[ML variance] / sigma^2 = ((N-1)/N)^g", "Shumailov et al. 2024; Suresh et al. 2025",
        f"N={N}, g={G}", var[G], theory.gaussian_replace_variance_ratio(N, G))
    row("Gaussian Replace: E[sq. error of mean] = sigma^2 (1 - ((N-1)/N)^g)",
        "ours (published: g sigma^2/N, Kazdan et al. 2024)", f"N={N}, g={G}", mse[G],
        theory.gaussian_replace_mean_sq_error(N, G), theory.gaussian_replace_mean_sq_error_fixed_variance(N, G))
    p = plt()
    fig, axes = p.subplots(1, 2, figsize=(10, 3.8))
    g = np.arange(0, G + 1)
    band(axes[0], var, "simulation (20,000 trials, +-3 SE)", "C0")
    axes[0].plot(g, ((N - 1) / N) ** g, "k-", lw=1, label="((N-1)/N)^g")
    axes[0].set(xlabel="generation g", ylabel="E[variance] / sigma^2", title=f"Replace, N = {N}: variance")
    band(axes[1], mse, "simulation", "C1")
    axes[1].plot(g, 1 - ((N - 1) / N) ** g, "k-", lw=1, label="exact: 1 - ((N-1)/N)^g")
    axes[1].plot(g, g / N, "k--", lw=1, label="published: g / N")
    axes[1].set(xlabel="generation g", ylabel="E||m_g - mu||^2 / sigma^2", title="Replace: squared error of the mean",
                ylim=(0, 1.2))
    for ax in axes:
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    save(fig, "theory-gaussian-replace.png")


def accumulate_laws():
    N, G = 5, 60
    r = gaussian(N=N, generations=G, trials=40000, paradigm="accumulate", seed=3)
    var, mse = pivot(r, "variance_ratio"), pivot(r, "mean_sq_error")
    row("Gaussian Accumulate: E[sq. error of mean] = (sigma^2/N) sum_j c_{j-1}/j^2",
        "ours (published: (sigma^2/N) sum 1/j^2 -> pi^2/6, Gerstgrasser et al. 2024, Dey & Donoho 2024)",
        f"N={N}, g={G}", mse[G], theory.gaussian_accumulate_mean_sq_error(N, G),
        theory.gaussian_accumulate_mean_sq_error_fixed_variance(N, G))
    row("Gaussian Accumulate: E[ML variance] / sigma^2 = prod_j (1 - 1/(j^2 N))", "ours", f"N={N}, g={G}", var[G],
        theory.gaussian_accumulate_variance_ratio(N, G))
    N2, G2 = 100, 100
    r2 = gaussian(N=N2, generations=G2, trials=10000, paradigm="accumulate", seed=4, record_every=50)
    row("Gaussian Accumulate at N = 100 (exact; published within noise)", "as above", f"N={N2}, g={G2}",
        pivot(r2, "mean_sq_error")[G2], theory.gaussian_accumulate_mean_sq_error(N2, G2),
        theory.gaussian_accumulate_mean_sq_error_fixed_variance(N2, G2))
    p = plt()
    fig, axes = p.subplots(1, 2, figsize=(10, 3.8))
    g = np.arange(1, G + 1)
    band(axes[0], mse * N, "simulation (40,000 trials, +-3 SE)", "C1", gens=g)
    axes[0].plot(g, theory.gaussian_accumulate_mean_sq_error(N, g) * N, "k-", lw=1, label="exact (ML variances)")
    axes[0].plot(g, theory.gaussian_accumulate_mean_sq_error_fixed_variance(N, g) * N, "k--", lw=1,
                 label="published: sum 1/j^2")
    axes[0].axhline(math.pi ** 2 / 6, color="0.5", lw=0.8, ls=":", label="pi^2/6")
    axes[0].set(xlabel="generation g", ylabel="E||m_g - mu||^2 N / sigma^2", title=f"Accumulate, N = {N}: mean")
    band(axes[1], var, "simulation", "C0", gens=g)
    axes[1].plot(g, theory.gaussian_accumulate_variance_ratio(N, g), "k-", lw=1, label="prod (1 - 1/(j^2 N))")
    axes[1].axhline(theory.gaussian_accumulate_variance_limit(N), color="0.5", lw=0.8, ls=":",
                    label="sin(pi/sqrt N)/(pi/sqrt N)")
    axes[1].set(xlabel="generation g", ylabel="E[variance] / sigma^2", title="Accumulate: variance")
    for ax in axes:
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    save(fig, "theory-gaussian-accumulate.png")


def fresh_laws():
    G, burn = 80, 30
    p = plt()
    fig, ax = p.subplots(figsize=(6, 3.8))
    for (N, alpha), color in zip([(10, 0.5), (20, 0.9)], ("C2", "C3")):
        r = gaussian(N=N, generations=G, trials=20000, paradigm="fresh", alpha=alpha, seed=5)
        E, V = theory.gaussian_fresh_moments(N, alpha, np.arange(1, G + 1))
        mse = pivot(r, "mean_sq_error")
        row("Gaussian Fresh(alpha) stationary sq. error = sigma^2 / (N (1 - a^2) + a)",
            "ours (published: (sigma^2/N)/(1 - alpha^2))", f"N={N}, alpha={alpha}, mean of g={burn + 1}..{G}",
            mse.loc[:, burn + 1:G].mean(axis=1), E[burn:].mean(), theory.gaussian_fresh_stationary_fixed_variance(N, alpha))
        g = np.arange(1, G + 1)
        band(ax, mse * N, f"simulation N={N}, alpha={alpha}", color, gens=g)
        ax.plot(g, E * N, "-", color="k", lw=1)
        ax.axhline(N * theory.gaussian_fresh_stationary_fixed_variance(N, alpha), color=color, ls="--", lw=1,
                   label=f"published 1/(1-alpha^2) = {N * theory.gaussian_fresh_stationary_fixed_variance(N, alpha):.3f}")
    ax.plot([], [], "k-", lw=1, label="exact (our Fresh)")
    ax.set(xlabel="generation g", ylabel="E||m_g - mu||^2 N / sigma^2", title="Fresh(alpha): alpha = synthetic fraction")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    save(fig, "theory-gaussian-fresh.png")


def weighted_laws():
    G, burn = 60, 20
    for N, w, draws in [(10, 1 / theory.GOLDEN_RATIO, "statistics"), (4, 0.3, "samples")]:
        r = gaussian(N=N, generations=G, trials=20000, paradigm="weighted", weight=w, seed=6, draws=draws)
        E, V = theory.gaussian_weighted_moments(N, w, np.arange(1, G + 1))
        row("Gaussian Weighted(w) stationary sq. error = ((1-w)^2 rho + w^2)/(w(2-w)) sigma^2/N",
            "ours (published: rho = 1, He, Xu & Cheng)", f"N={N}, w={w:.3f}, mean of g={burn + 1}..{G}",
            pivot(r, "mean_sq_error").loc[:, burn + 1:G].mean(axis=1), E[burn:].mean(),
            theory.he_xu_cheng_stationary_mean_sq_error(N, w))
    # the curve over w, N = 10
    N = 10
    ws = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.58, 1 / theory.GOLDEN_RATIO, 0.7, 0.8, 0.9, 1.0])
    meas, ses = [], []
    for i, w in enumerate(ws):
        r = gaussian(N=N, generations=G, trials=5000, paradigm="weighted", weight=float(w), seed=60 + i)
        m, se = mean_se(pivot(r, "mean_sq_error").loc[:, burn + 1:G].mean(axis=1))
        meas.append(m * N)
        ses.append(se * N)
    wf = np.linspace(0.08, 1, 200)
    p = plt()
    fig, ax = p.subplots(figsize=(6, 3.8))
    ax.errorbar(ws, meas, yerr=3 * np.array(ses), fmt="o", ms=3, label="simulation (5,000 trials, +-3 SE)")
    ax.plot(wf, [theory.gaussian_weighted_stationary_mean_sq_error(N, w) * N for w in wf], "k-", lw=1,
            label="exact (ML variances)")
    ax.plot(wf, [theory.he_xu_cheng_stationary_mean_sq_error(N, w) * N for w in wf], "k--", lw=1,
            label="He, Xu & Cheng")
    w_opt = theory.gaussian_weighted_optimal_weight(N)
    ax.axvline(w_opt, color="C3", lw=0.8, label=f"exact optimum w = {w_opt:.3f}")
    ax.axvline(1 / theory.GOLDEN_RATIO, color="0.5", lw=0.8, ls=":", label="1/phi = 0.618")
    ax.set(xlabel="weight w of the fresh real estimate", ylabel="stationary E||m - mu||^2 N / sigma^2",
           title=f"Weighted(w), N = {N}", ylim=(0.4, 2.5))
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    save(fig, "theory-gaussian-weighted.png")


def subsampling_laws():
    G = 30
    p = plt()
    fig, axes = p.subplots(1, 2, figsize=(10, 3.8))
    cases = [("accumulate-subsample", None, 5, 7), ("accumulate-subsample", None, 20, 7), ("mix", 0.5, 6, 21),
             ("mix", 0.8, 5, 7)]
    for (paradigm, alpha, N, seed), color in zip(cases, ("C0", "C1", "C2", "C3")):
        r = gaussian(N=N, generations=G, trials=40000, paradigm=paradigm, alpha=alpha, seed=seed)
        if paradigm == "mix":
            E, V = theory.gaussian_mix_moments(N, alpha, np.arange(1, G + 1))
            name = f"mix({alpha}), N={N}"
        else:
            E, V = theory.gaussian_accumulate_subsample_moments(N, np.arange(1, G + 1))
            name = f"accumulate-subsample, N={N}"
        mse, var = pivot(r, "mean_sq_error"), pivot(r, "variance_ratio")
        row(f"Gaussian {name.split(',')[0]}: exact E[sq. error of mean] (recursion)", "ours", f"N={N}, g={G}",
            mse[G], E[-1])
        row(f"Gaussian {name.split(',')[0]}: exact E[ML variance] (recursion)", "ours", f"N={N}, g={G}",
            var[G], V[-1])
        g = np.arange(1, G + 1)
        band(axes[0], mse * N, name, color, gens=g)
        axes[0].plot(g, E * N, "k-", lw=0.8)
        band(axes[1], var, name, color, gens=g)
        axes[1].plot(g, V, "k-", lw=0.8)
    axes[0].set(xlabel="generation g", ylabel="E||m_g - mu||^2 N / sigma^2",
                title="sample-level paradigms: mean (lines: exact)")
    axes[1].set(xlabel="generation g", ylabel="E[variance] / sigma^2", title="variance (lines: exact)")
    for ax in axes:
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    save(fig, "theory-gaussian-subsampling.png")


def categorical_laws():
    p0 = theory.make_p0("zipf", 10, 1.1)
    N, G = 50, 20
    r = collapse.simulate(p0=p0, N=N, generations=G, trials=20000, paradigm="replace", seed=11, keep_final_p=False)
    s2 = pivot(r, "sum_p2")
    row("Categorical Replace: 1 - E[sum p^2] = (1 - 1/N)^g (1 - sum p0^2)", "Seddik et al. 2024",
        f"K=10 Zipf(1.1), N={N}, g={G}", s2[G], theory.seddik_sum_p2(p0, N, G))
    p0w = theory.make_p0("zipf", 20)
    Nw, w, Gw = 15, 0.3, 30
    rw = collapse.simulate(p0=p0w, N=Nw, generations=Gw, trials=20000, paradigm="weighted", weight=w, seed=9,
                           keep_final_p=False)
    s2w = pivot(rw, "sum_p2")
    row("Categorical Weighted(w): E[sum p^2] (recursion)", "ours (after Seddik et al.)",
        f"K=20 Zipf(1), N={Nw}, w={w}, g={Gw}", s2w[Gw], theory.categorical_weighted_sum_p2(p0w, Nw, w, Gw))
    p = plt()
    fig, axes = p.subplots(1, 2, figsize=(10, 3.8))
    g = np.arange(0, G + 1)
    band(axes[0], 1 - s2, "simulation (20,000 trials, +-3 SE)", "C0")
    axes[0].plot(g, (1 - 1 / N) ** g * (1 - (p0 ** 2).sum()), "k-", lw=1, label="(1-1/N)^g (1 - sum p0^2)")
    axes[0].set(xlabel="generation g", ylabel="1 - E[sum p^2]", title=f"categorical Replace (Seddik), N = {N}")
    gw = np.arange(1, Gw + 1)
    band(axes[1], s2w, "simulation", "C1", gens=gw)
    axes[1].plot(gw, theory.categorical_weighted_sum_p2(p0w, Nw, w, gw), "k-", lw=1, label="exact recursion")
    axes[1].plot(gw, theory.seddik_sum_p2(p0w, Nw, gw), "k--", lw=1, label="w = 0 (Replace)")
    axes[1].set(xlabel="generation g", ylabel="E[sum p^2]", title=f"categorical Weighted(w = {w}), N = {Nw}",
                ylim=(0.15, 0.4))
    for ax in axes:
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    save(fig, "theory-categorical.png")


def wright_fisher_and_forgetting():
    p = plt()
    fig, axes = p.subplots(1, 2, figsize=(10, 3.8))
    N = 20
    for i in (1, 6, 10):
        p0 = np.array([i / N, 1 - i / N])
        r = collapse.simulate(p0=p0, N=N, generations=60 * N, trials=20000, paradigm="replace", seed=5,
                              record_every=60 * N, keep_final_p=False)
        ev = r.events
        t_abs = ev["collapse"].to_numpy(dtype=np.float64)
        if i == 6:
            row("Wright-Fisher: mean absorption time (exact chain)", "Wright-Fisher; exact (N+1)-state chain",
                f"N={N}, i={i}", t_abs, theory.wright_fisher_absorption_time(N, i))
            row("Wright-Fisher: fixation probability = i/N", "Kimura 1962", f"N={N}, i={i}",
                (ev["collapsed_to"] == 0).to_numpy(dtype=np.float64), theory.wright_fisher_fixation_probability(N, i))
        m, se = mean_se(t_abs)
        axes[0].errorbar([i], [m], yerr=[3 * se], fmt="o", color="C0", ms=4)
    ii = np.arange(1, N)
    axes[0].plot(ii, [theory.wright_fisher_absorption_time(N, i) for i in ii], "k-", lw=1,
                 label="exact: (I - Q)^-1 1")
    axes[0].set(xlabel="initial count i of N", ylabel="generations to absorption",
                title=f"Wright-Fisher (Replace, 2 outcomes), N = {N}")
    N2 = 50
    ks = (1, 2, 5, 10, 20)
    for k in ks:
        p0 = np.array([k / N2, 1 - k / N2])
        r = collapse.simulate(p0=p0, N=N2, generations=60 * N2, trials=20000, paradigm="replace", seed=9,
                              record_every=60 * N2, keep_final_p=False)
        ev = r.events
        lost = ev.loc[ev["collapsed_to"] == 1, "collapse"].to_numpy(dtype=np.float64)
        row("Time to forget an outcome seen k times among N (given it is lost)",
            "Suresh et al. 2025 (about linear in k); exact two-state chain (h-transform)", f"N={N2}, k={k}",
            lost, theory.time_to_forget(N2, k), theory.time_to_forget_diffusion(N2, k))
        m, se = mean_se(lost)
        axes[1].errorbar([k], [m], yerr=[3 * se], fmt="o", color="C1", ms=4)
    kk = np.arange(1, 31)
    axes[1].plot(kk, theory.time_to_forget(N2, kk), "k-", lw=1, label="exact (two-state chain)")
    axes[1].plot(kk, theory.time_to_forget_diffusion(N2, kk), "k--", lw=1, label="Kimura-Ohta: -2N p ln p/(1-p)")
    axes[1].plot(kk, kk * theory.time_to_forget(N2, 1), ":", color="0.5", lw=1, label="linear: k x T(1)")
    axes[1].set(xlabel="count k in the real sample", ylabel="generations until lost",
                title=f"time to forget (Replace), N = {N2}", ylim=(0, 80))
    for ax in axes:
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    save(fig, "theory-wright-fisher.png")


# -------------------------------------------------------------------- the paper's claim

def claim(quick):
    G = 400 if quick else 2000
    trials = 40 if quick else 200
    sweep = study.contribution_sweep(generations=G, trials=trials, seed=0)
    os.makedirs(RESULTS, exist_ok=True)
    sweep.to_csv(os.path.join(RESULTS, "theory_claim_sweep.csv"), index=False)
    kl1 = float(sweep.loc[sweep["generation"] == 1, "kl_mean"].mean())
    threshold = 0.7
    reach = study.generations_to_reach(sweep, threshold)
    p = plt()
    fig, axes = p.subplots(1, 4, figsize=(17, 4))
    colors = {c: f"C{i}" for i, c in enumerate(study.DEFAULT_CONTRIBUTIONS)}
    for ax, paradigm in zip(axes[:3], study.STUDY_PARADIGMS):
        for c, part in sweep[sweep["paradigm"] == paradigm].groupby("contribution", sort=False):
            part = part[part["generation"] >= 1]
            ax.plot(part["generation"], part["kl_mean"], color=colors[c], lw=1, label=f"{c:g}")
            ax.fill_between(part["generation"], part["kl_mean"] - 3 * part["kl_se"], part["kl_mean"] + 3 * part["kl_se"],
                            color=colors[c], alpha=0.15, lw=0)
        ax.axhline(threshold, color="0.4", ls=":", lw=0.8)
        ax.set(xscale="log", xlabel="generation", ylabel="KL(p_t || p0), nats", ylim=(0.3, 1.2 if paradigm != "mix" else 1.2),
               title={"accumulate-subsample": "Accumulate-Subsample: c N synthetic / generation",
                      "mix": "Mix(c): fraction c synthetic, rest from R",
                      "fresh": "Fresh(c): fraction c synthetic, rest new real"}[paradigm])
        ax.grid(alpha=0.3)
        ax.legend(title="contribution c", fontsize=7, title_fontsize=7)
    ax = axes[3]
    for paradigm, marker in zip(study.STUDY_PARADIGMS, "os^"):
        part = reach[reach["paradigm"] == paradigm]
        ok = part["generations"].notna()
        ax.plot(part.loc[ok, "contribution"], part.loc[ok, "generations"], marker + "-", ms=4, label=paradigm)
        if (~ok).any():
            ax.plot(part.loc[~ok, "contribution"], np.full((~ok).sum(), G * 1.5), marker, mfc="none", ms=5,
                    label=f"{paradigm}: not reached by {G}")
    ax.set(xscale="log", yscale="log", xlabel="synthetic contribution per generation c",
           ylabel=f"generations until mean KL >= {threshold}", title="time to reach a fixed divergence")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    save(fig, "theory-claim.png")
    slope = study.power_law_slope(*reach.loc[reach["paradigm"] == "accumulate-subsample",
                                             ["contribution", "generations"]].to_numpy().T)
    summary = dict(G=G, trials=trials, K=100, N=100, p0="zipf(1)", kl_generation1=kl1, threshold=threshold,
                   reach=reach.to_dict(orient="records"), accumulate_subsample_slope=slope,
                   final=sweep[sweep["generation"] == G][["paradigm", "contribution", "kl_mean", "kl_se",
                                                         "support_mean", "tail_mass_mean"]].to_dict(orient="records"))
    return summary


def table_markdown():
    lines = ["| law | source | setting | measured (SE) | predicted | z | published / approx. form | z (it) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in ROWS:
        pub = "" if r["published"] is None else f"{r['published']:.5g}"
        zp = "" if r["z_published"] is None else f"{r['z_published']:+.1f}"
        lines.append(f"| {r['law']} | {r['source']} | {r['setting']} | {r['measured']:.5g} ({r['se']:.2g}) | "
                     f"{r['predicted']:.5g} | {r['z']:+.2f} | {pub} | {zp} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a shorter claim sweep (the laws are unchanged)")
    ap.add_argument("--only", choices=["laws", "claim"], default=None)
    args = ap.parse_args()
    t0 = time.time()
    out = {}
    if args.only in (None, "laws"):
        for fn in (replace_laws, accumulate_laws, fresh_laws, weighted_laws, subsampling_laws, categorical_laws,
                   wright_fisher_and_forgetting):
            fn()
        md = table_markdown()
        print(md)
        os.makedirs(RESULTS, exist_ok=True)
        with open(os.path.join(RESULTS, "theory_table.md"), "w") as f:
            f.write(md)
        out["laws"] = ROWS
    if args.only in (None, "claim"):
        out["claim"] = claim(args.quick)
        print(json.dumps({k: v for k, v in out["claim"].items() if k != "final"}, indent=1, default=float))
        for r in out["claim"]["final"]:
            print(r)
    with open(os.path.join(RESULTS, "theory_laws.json" if args.only != "claim" else "theory_claim.json"), "w") as f:
        json.dump(out, f, indent=1, default=float)
    print(f"{time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
