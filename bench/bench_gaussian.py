"""Benchmark: the Gaussian simulator (Replace) against a vectorised numpy reference.

The goal (issue 12): ``collapse.simulate(process="gaussian", ...)`` with 10^4 trials x 100
generations x N = 100 in 1-D in under 2 s on 2 cores. The numpy reference does the same
work the best way numpy can: every generation, all trials at once, N draws per trial
(Generator.standard_normal, scaled by the fitted standard deviation, or by the Cholesky
factor in d > 1), the ML mean and variance (or covariance), and the same two metrics
(squared error of the mean, variance ratio). Ours is timed through the public API
(DataFrame included) on 1 and 2 threads, both ways it can draw: ``draws="samples"`` (every
item, like numpy) and ``draws="statistics"`` (the default: each batch's mean and scatter
drawn from their exact joint law, O(d^2) instead of O(N d^2) per generation). Best of --repeats, in one process; "cpu ratio"
compares CPU seconds (numpy vs ours on 1 thread), which a loaded machine distorts less.

    PYTHONPATH=python python bench/bench_gaussian.py [--out bench/results/bench_gaussian.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time

import numpy as np

import _path  # noqa: E402,F401  (in-place build or installed package)
import collapse

# (dim, N, trials, generations)
CASES = [
    (1, 100, 10**4, 100),  # the goal
    (4, 50, 2000, 50),
]
GOAL_SECONDS = 2.0


def numpy_reference(dim, N, trials, generations, seed):
    """Mean over trials of generation G's squared error of the mean and variance ratio."""
    rng = np.random.default_rng(seed)
    mean = np.zeros((trials, dim))
    if dim == 1:
        sd = np.ones(trials)
        for _ in range(generations):
            x = mean[:, :1] + sd[:, None] * rng.standard_normal((trials, N))
            m = x.mean(axis=1, keepdims=True)
            sd = np.sqrt(((x - m) ** 2).mean(axis=1))
            mean = m
            mse = (mean[:, 0] ** 2)  # noqa: F841  (the per-generation metrics, as ours records them)
            ratio = sd ** 2  # noqa: F841
        return float((mean[:, 0] ** 2).mean()), float((sd ** 2).mean())
    chol = np.broadcast_to(np.eye(dim), (trials, dim, dim)).copy()
    for _ in range(generations):
        z = rng.standard_normal((trials, N, dim))
        x = mean[:, None, :] + np.einsum("tij,tnj->tni", chol, z)
        mean = x.mean(axis=1)
        c = x - mean[:, None, :]
        cov = np.einsum("tni,tnj->tij", c, c) / N
        mse = (mean ** 2).sum(axis=1)
        ratio = np.trace(cov, axis1=1, axis2=2) / dim
        chol = np.linalg.cholesky(cov)
    return float(mse.mean()), float(ratio.mean())


def ours(dim, N, trials, generations, seed, threads, draws):
    r = collapse.simulate(process="gaussian", dim=dim, N=N, generations=generations, trials=trials,
                          paradigm="replace", seed=seed, threads=threads, draws=draws)
    last = r.metrics[r.metrics["generation"] == generations]
    return float(last["mean_sq_error"].mean()), float(last["variance_ratio"].mean())


def cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_SELF)  # all threads of this process
    return r.ru_utime + r.ru_stime


def best_of(repeats, fn):
    """(best wall seconds, CPU seconds of that repeat, value)."""
    best, best_cpu, value = float("inf"), float("nan"), None
    for _ in range(repeats):
        c, t = cpu_seconds(), time.perf_counter()
        value = fn()
        wall, cpu = time.perf_counter() - t, cpu_seconds() - c
        if wall < best:
            best, best_cpu = wall, cpu
    return best, best_cpu, value


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "bench_gaussian.json"))
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    rows = []
    header = (f"{'dim':>3} {'N':>5} {'trials':>6} {'gens':>5} {'draws':>10} {'numpy s':>8} {'ours 1t s':>9} "
              f"{'ours 2t s':>9} {'ratio 1t':>8} {'ratio 2t':>8} {'cpu ratio':>9}  {'mse_G numpy':>11} "
              f"{'mse_G ours':>10} {'var_G numpy':>11} {'var_G ours':>10}")
    print(header)
    print("-" * len(header))
    for dim, N, trials, generations in CASES:
        t_np, c_np, v_np = best_of(args.repeats, lambda: numpy_reference(dim, N, trials, generations, 1))
        for draws in ("samples", "statistics"):
            t_1, c_1, v_1 = best_of(args.repeats, lambda: ours(dim, N, trials, generations, 1, 1, draws))
            t_2, c_2, v_2 = best_of(args.repeats, lambda: ours(dim, N, trials, generations, 1, 2, draws))
            assert v_1 == v_2  # same seed, any thread count
            row = dict(dim=dim, N=N, trials=trials, generations=generations, draws=draws,
                       seconds=dict(numpy=t_np, ours_1thread=t_1, ours_2threads=t_2),
                       cpu_seconds=dict(numpy=c_np, ours_1thread=c_1, ours_2threads=c_2),
                       ratio_1thread=t_np / t_1, ratio_2threads=t_np / t_2, cpu_ratio_1thread=c_np / c_1,
                       final_mean_sq_error=dict(numpy=v_np[0], ours=v_1[0]),
                       final_variance_ratio=dict(numpy=v_np[1], ours=v_1[1]),
                       goal_seconds=GOAL_SECONDS if (dim, N, trials, generations) == CASES[0] else None)
            rows.append(row)
            print(f"{dim:>3} {N:>5} {trials:>6} {generations:>5} {draws:>10} {t_np:>8.3f} {t_1:>9.3f} {t_2:>9.3f} "
                  f"{row['ratio_1thread']:>7.2f}x {row['ratio_2threads']:>7.2f}x {row['cpu_ratio_1thread']:>8.2f}x  "
                  f"{v_np[0]:>11.4f} {v_1[0]:>10.4f} {v_np[1]:>11.4f} {v_1[1]:>10.4f}")
    for row in rows[:2]:
        goal = row["seconds"]["ours_2threads"]
        print(f"goal: 10^4 trials x 100 generations x N = 100 (1-D) in < {GOAL_SECONDS} s on 2 threads, "
              f"draws={row['draws']}: {goal:.3f} s ({'met' if goal < GOAL_SECONDS else 'NOT met'})")
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(dict(benchmark="simulate_gaussian_replace", cpu_count=os.cpu_count(),
                       load_average=os.getloadavg(), machine=platform.machine(), numpy=np.__version__,
                       collapse=collapse.__version__, repeats=args.repeats, rows=rows), f, indent=2)
    print(f"load average (1, 5, 15 min): {', '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
