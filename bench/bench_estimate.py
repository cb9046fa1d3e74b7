"""Benchmark: n-gram estimation (count + modified Kneser-Ney + write ARPA) against KenLM's
lmplz, and scoring against a kenlm.Model.score loop.

Corpora:
  train-head  ../shared/data/tinystories/train-head.txt, one story per line (~0.4M tokens)
  10M         built from train-head: copies of its stories, each copy in a fresh random
              order; in every copy but the first, 5% of the tokens are replaced by tokens
              drawn from train-head's unigram distribution (seeded), so that the number of
              distinct higher-order n-grams grows with size as in real text instead of
              staying that of train-head. Truncated to the first 10M tokens.

Every measurement runs in its own subprocess: wall time of the work itself and the
process's peak RSS (getrusage). Ours is timed from an in-memory Corpus (.npz) to the ARPA
on disk; lmplz from the text file to the ARPA on disk (it reads and tokenizes the text,
which our number excludes: the `ours e2e` row includes loading the text in Python).
Scoring: per-line kenlm.Model.score in Python vs NGramModel.evaluate (threads 1 and 2)
over the same documents; model loading is reported separately.

  python bench/bench_estimate.py [--quick] [--out bench/results/estimate.json]
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import resource
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
import _path  # noqa: E402,F401  (in-place build or installed package)
sys.path.insert(0, str(ROOT / "tests"))
DATA = ROOT.parent / "shared" / "data" / "tinystories"


def peak_rss_mb() -> float:
    """This process's peak RSS: VmHWM (reset by exec, unlike getrusage's ru_maxrss, which
    keeps the parent's RSS at fork time)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# ----------------------------------------------------------------------------------------
# Children: each does one thing and prints one JSON line.

def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def child_fit(npz: str, order: int, arpa: str, threads: int) -> dict:
    import numpy as np

    import collapse

    z = np.load(npz, allow_pickle=False)
    corpus = collapse.Corpus(z["tokens"], z["offsets"], collapse.Vocab(z["words"].tolist()[3:]))
    del z
    c0 = cpu_s()
    t = time.perf_counter()
    model = collapse.NGramModel.fit(corpus, order=order, threads=threads)
    t_fit = time.perf_counter() - t
    model.to_arpa(arpa, threads=threads)
    wall = time.perf_counter() - t
    return {"wall_s": wall, "cpu_s": cpu_s() - c0, "fit_s": t_fit, "write_s": wall - t_fit,
            "peak_rss_mb": peak_rss_mb(),
            "ngrams": model.num_ngrams()}


def child_e2e(text: str, order: int, arpa: str, threads: int) -> dict:
    import collapse

    t = time.perf_counter()
    corpus = collapse.load_corpus(text, format="lines")
    t_load = time.perf_counter() - t
    collapse.NGramModel.fit(corpus, order=order, threads=threads).to_arpa(arpa, threads=threads)
    return {"wall_s": time.perf_counter() - t, "load_s": t_load, "peak_rss_mb": peak_rss_mb()}


def child_lmplz(lmplz: str, text: str, order: int, arpa: str, memory: str) -> dict:
    # os.wait4 gives this one child's rusage (its ru_maxrss starts from this small
    # wrapper's RSS at fork, a few MB).
    t = time.perf_counter()
    with open(text, "rb") as f:
        proc = subprocess.Popen([lmplz, "-o", str(order), "-S", memory, "-T", "/tmp", "--arpa", arpa], stdin=f,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    if status:
        raise RuntimeError(f"lmplz failed with status {status}")
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss_mb": usage.ru_maxrss / 1024.0}


def child_score_ours(arpa: str, text: str, threads: int) -> dict:
    import collapse

    t = time.perf_counter()
    model = collapse.NGramModel.from_arpa(arpa)
    model._scorer()  # build the index (once per model)
    t_load = time.perf_counter() - t
    corpus = collapse.load_corpus(text, format="lines", vocab=model.vocab, grow=False)
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        res = model.evaluate(corpus, threads=threads)
        best = min(best, time.perf_counter() - t)
    return {"wall_s": best, "load_s": t_load, "peak_rss_mb": peak_rss_mb(), "log10_prob": res["log10_prob"],
            "tokens": res["tokens"]}


def child_score_kenlm(arpa: str, text: str) -> dict:
    import kenlm

    t = time.perf_counter()
    model = kenlm.Model(arpa)
    t_load = time.perf_counter() - t
    with open(text, encoding="utf-8") as f:
        lines = f.read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        total = 0.0
        for line in lines:
            total += model.score(line, bos=True, eos=True)
        best = min(best, time.perf_counter() - t)
    return {"wall_s": best, "load_s": t_load, "peak_rss_mb": peak_rss_mb(), "log10_prob": total}


def run_child(*args) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(args)], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": f"{ROOT / 'python'}:{os.environ.get('PYTHONPATH', '')}"})
    if proc.returncode:
        raise RuntimeError(f"child {args[0]} failed: {proc.stderr[-1500:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def child_corpora(workdir: str, tokens: int) -> dict:
    return {k: [str(p) for p in v] for k, v in make_corpora(pathlib.Path(workdir), tokens).items()}


CHILDREN = {"corpora": child_corpora, "fit": child_fit, "e2e": child_e2e, "lmplz": child_lmplz, "score_ours": child_score_ours,
            "score_kenlm": child_score_kenlm}


# ----------------------------------------------------------------------------------------
# Corpora.

def make_corpora(workdir: pathlib.Path, target_tokens: int, seed: int = 0):
    import numpy as np

    import collapse

    workdir.mkdir(parents=True, exist_ok=True)
    base = collapse.load_corpus(str(DATA / "train-head.txt"), format="tinystories")
    out = {}

    def save(name, corpus):
        text, npz = workdir / f"{name}.txt", workdir / f"{name}.npz"
        if not text.exists():
            corpus.write_text(str(text))
            np.savez(npz, tokens=corpus.tokens, offsets=corpus.offsets, words=np.array(corpus.vocab.words))
        out[name] = (text, npz)

    save("train-head", base)
    name = f"{target_tokens // 1_000_000}M"
    if not (workdir / f"{name}.txt").exists():
        rng = np.random.default_rng(seed)
        parts, offs, total = [], [np.zeros(1, np.int64)], 0
        copy = 0
        while total < target_tokens:
            sub = base.select(rng.permutation(base.num_documents))
            toks = sub.tokens.copy()
            if copy:
                mask = rng.random(toks.size) < 0.05
                toks[mask] = base.tokens[rng.integers(0, base.num_tokens, size=int(mask.sum()))]
            lens = sub.lengths()
            keep = np.searchsorted(np.cumsum(lens), target_tokens - total, side="right") + 1
            keep = min(keep, lens.size)
            n_tok = int(lens[:keep].sum())
            parts.append(toks[:n_tok])
            offs.append(np.cumsum(lens[:keep]) + total)
            total += n_tok
            copy += 1
        big = collapse.Corpus(np.concatenate(parts), np.concatenate(offs), base.vocab)
        save(name, big)
    else:
        save(name, None)
    return out


def fmt_row(cols, widths):
    return "  ".join(str(c).ljust(w) for c, w in zip(cols, widths))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "estimate.json"))
    ap.add_argument("--workdir", default="/tmp/collapse-bench")
    ap.add_argument("--tokens", type=int, default=10_000_000)
    ap.add_argument("--orders", default="3,5")
    ap.add_argument("--threads", type=int, default=2, help="threads for our estimator (default 2)")
    ap.add_argument("--lmplz-memory", default="1G", help="lmplz -S (default 1G)")
    ap.add_argument("--quick", action="store_true", help="train-head only")
    args = ap.parse_args()
    if args.child:
        name, *rest = json.loads(args.child)
        print(json.dumps(CHILDREN[name](*rest)))
        return 0

    from lmplz import find_lmplz

    lmplz = find_lmplz()
    if lmplz is None:
        print("lmplz not available (tests/lmplz.py could not find or build it)", file=sys.stderr)
        return 1
    workdir = pathlib.Path(args.workdir)
    # Built in a child so that this process stays small (children inherit nothing big).
    corpora = {k: tuple(map(pathlib.Path, v)) for k, v in run_child("corpora", str(workdir), args.tokens).items()}
    names = ["train-head"] + ([] if args.quick else [n for n in corpora if n != "train-head"])
    orders = [int(o) for o in args.orders.split(",")]
    results = {"config": {"lmplz": lmplz, "lmplz_flags": f"-o N -S {args.lmplz_memory} -T /tmp --arpa",
                          "our_threads": args.threads, "cpus": os.cpu_count(),
                          "loadavg": os.getloadavg()}, "estimate": [], "score": []}
    widths = [10, 5, 8, 7, 8, 9, 8, 8, 7, 8, 8, 7, 9]
    print(fmt_row(["corpus", "order", "lmplz s", "ours s", "speedup", "lmplz cpu", "ours cpu", "cpu ratio",
                   "e2e s", "lmplz MB", "ours MB", "e2e MB", "mem ratio"], widths))
    for name in names:
        text, npz = corpora[name]
        for order in orders:
            ref = run_child("lmplz", lmplz, str(text), order, str(workdir / "lmplz.arpa"), args.lmplz_memory)
            ours = run_child("fit", str(npz), order, str(workdir / "ours.arpa"), args.threads)
            e2e = run_child("e2e", str(text), order, str(workdir / "ours-e2e.arpa"), args.threads)
            row = {"corpus": name, "order": order, "lmplz": ref, "ours": ours, "ours_e2e": e2e,
                   "speedup": ref["wall_s"] / ours["wall_s"], "speedup_e2e": ref["wall_s"] / e2e["wall_s"],
                   "memory_ratio": ours["peak_rss_mb"] / ref["peak_rss_mb"]}
            results["estimate"].append(row)
            print(fmt_row([name, order, f"{ref['wall_s']:.2f}", f"{ours['wall_s']:.2f}", f"{row['speedup']:.1f}x",
                           f"{ref['cpu_s']:.2f}", f"{ours['cpu_s']:.2f}", f"{ref['cpu_s'] / ours['cpu_s']:.1f}x",
                           f"{e2e['wall_s']:.2f}", f"{ref['peak_rss_mb']:.0f}", f"{ours['peak_rss_mb']:.0f}",
                           f"{e2e['peak_rss_mb']:.0f}", f"{row['memory_ratio']:.2f}"], widths))

    # Scoring: an order-5 model of train-head, valid-head repeated 8 times.
    score_text = workdir / "valid-x8.txt"
    if not score_text.exists():
        score_text.write_text((DATA / "valid-head.txt").read_text(encoding="utf-8") * 8, encoding="utf-8")
    arpa = workdir / "score-model.arpa"
    run_child("fit", str(corpora["train-head"][1]), 5, str(arpa), args.threads)
    kl = run_child("score_kenlm", str(arpa), str(score_text))
    print()
    print(fmt_row(["scoring", "threads", "kenlm s", "ours s", "speedup", "kenlm load", "ours load", "kenlm MB",
                   "ours MB"], [12, 8, 9, 9, 9, 11, 10, 9, 9]))
    for threads in (1, 2):
        ours = run_child("score_ours", str(arpa), str(score_text), threads)
        row = {"threads": threads, "kenlm": kl, "ours": ours, "speedup": kl["wall_s"] / ours["wall_s"],
               "log10_prob_rel_diff": abs(ours["log10_prob"] - kl["log10_prob"]) / abs(kl["log10_prob"])}
        results["score"].append(row)
        print(fmt_row(["order 5", threads, f"{kl['wall_s']:.3f}", f"{ours['wall_s']:.3f}", f"{row['speedup']:.1f}x",
                       f"{kl['load_s']:.2f}", f"{ours['load_s']:.2f}", f"{kl['peak_rss_mb']:.0f}",
                       f"{ours['peak_rss_mb']:.0f}"], [12, 8, 9, 9, 9, 11, 10, 9, 9]))
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
