"""Benchmark: the categorical simulator (Replace, Zipf p0) against a numpy reference.

The reference does, per trial and generation, what the simulator does: a multinomial
draw (numpy's Generator.multinomial) and the same statistics (entropy, support, sum p^2,
KL(p_t || p0), total variation, tail mass). Both run in this process, one after the
other, best of --repeats; throughput is trials x generations per second. numpy runs on
one core; the simulator on 1 and on 2 threads. "cpu ratio" compares CPU seconds (numpy vs
ours on 1 thread): the per-core efficiency, which a loaded machine does not distort.

    PYTHONPATH=python python bench/bench_simulate.py [--out bench/results/bench_simulate.json]
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
from collapse import _core
from collapse.theory.categorical import make_p0

# (K, N, trials, generations): sized for ~1 s of numpy work each
CASES = [
    (10**3, 10**4, 200, 50),
    (10**5, 10**6, 8, 10),
    (10**5, 10**3, 40, 25),  # N << K: the sparse path
]


def numpy_reference(p0, N, trials, generations, seed):
    rng = np.random.default_rng(seed)
    log_p0 = np.log(p0)
    tail = _core.simulation_tail_set(p0, 0.1)
    final_entropy = []
    for _ in range(trials):
        p = p0
        for _ in range(generations):
            p = rng.multinomial(N, p) / N
            nz = p > 0
            pn = p[nz]
            log_pn = np.log(pn)
            entropy = -(pn * log_pn).sum()
            support = int(nz.sum())  # noqa: F841  (computed as the simulator does)
            sum_p2 = (pn * pn).sum()  # noqa: F841
            kl = (pn * (log_pn - log_p0[nz])).sum()  # noqa: F841
            tv = 0.5 * np.abs(p - p0).sum()  # noqa: F841
            tail_mass = p[tail].sum()  # noqa: F841
        final_entropy.append(entropy)
    return float(np.mean(final_entropy))


def ours(p0, N, trials, generations, seed, threads):
    r = _core.simulate_categorical(p0, N, generations, "replace", 1.0, seed, 0, trials, threads, 0.1, False)
    return float(r["entropy"][:, -1].mean())


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
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "bench_simulate.json"))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="a tenth of the trials (smoke run)")
    args = ap.parse_args()

    rows = []
    header = (f"{'K':>7} {'N':>8} {'trials x gens':>13} {'numpy/s':>10} {'ours 1t/s':>10} {'ours 2t/s':>10} "
              f"{'ratio 1t':>8} {'ratio 2t':>8} {'cpu ratio':>9}  {'H_G numpy':>9} {'H_G ours':>9}")
    print(header)
    print("-" * len(header))
    for K, N, trials, generations in CASES:
        if args.quick:
            trials = max(2, trials // 10)
        p0 = make_p0("zipf", K, 1.0)
        work = trials * generations
        t_np, c_np, h_np = best_of(args.repeats, lambda: numpy_reference(p0, N, trials, generations, 1))
        t_1, c_1, h_1 = best_of(args.repeats, lambda: ours(p0, N, trials, generations, 1, 1))
        t_2, c_2, h_2 = best_of(args.repeats, lambda: ours(p0, N, trials, generations, 1, 2))
        assert h_1 == h_2  # same seed, any thread count
        row = dict(K=K, N=N, trials=trials, generations=generations, numpy_per_s=work / t_np,
                   ours_1thread_per_s=work / t_1, ours_2threads_per_s=work / t_2, ratio_1thread=t_np / t_1,
                   ratio_2threads=t_np / t_2, cpu_ratio_1thread=c_np / c_1, final_entropy_numpy=h_np,
                   final_entropy_ours=h_1, seconds=dict(numpy=t_np, ours_1thread=t_1, ours_2threads=t_2),
                   cpu_seconds=dict(numpy=c_np, ours_1thread=c_1, ours_2threads=c_2))
        rows.append(row)
        print(f"{K:>7} {N:>8} {work:>13} {row['numpy_per_s']:>10.1f} {row['ours_1thread_per_s']:>10.1f} "
              f"{row['ours_2threads_per_s']:>10.1f} {row['ratio_1thread']:>7.2f}x {row['ratio_2threads']:>7.2f}x {row['cpu_ratio_1thread']:>8.2f}x  "
              f"{h_np:>9.4f} {h_1:>9.4f}")
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(dict(benchmark="simulate_categorical_replace_zipf", cpu_count=os.cpu_count(),
                       load_average=os.getloadavg(),
                       machine=platform.machine(), numpy=np.__version__, collapse=collapse.__version__,
                       repeats=args.repeats, rows=rows), f, indent=2)
    print(f"load average (1, 5, 15 min): {', '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
