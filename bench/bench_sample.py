"""Sampling speed: collapse's exact n-gram sampler against NLTK's ``generate``.

Corpora
- train-head: ../shared/data/tinystories/train-head.txt (2,316 stories, ~404k tokens),
  one story per line, whitespace tokens.
- synth-10M: about 10M tokens drawn (seed 1) from the interpolated modified Kneser-Ney
  5-gram of train-head (our NGramModel.fit), i.e. TinyStories-like text with a larger
  n-gram inventory than train-head. Made here, in the same run.

Models: interpolated modified Kneser-Ney of orders 2, 3, 5 estimated on each corpus by
``NGramModel.fit`` (``--estimator fit``, the default; it matches lmplz, see
tests/test_kenlm_parity.py) or by lmplz (``--estimator lmplz``).

Measured: whole sequences from <s> to </s> at temperature 1 (the fast exact path), with
1 and 2 threads; tokens/s = sampled tokens (</s> not counted) / wall-clock seconds of
``model.sample``; best of ``--repeats`` runs. The forward-structure build is timed
separately (it happens once per model).

Anchor: NLTK ``nltk.lm`` MLE and KneserNeyInterpolated trigram models trained on
train-head (padded_everygram_pipeline), generating sentences word by word with
``generate(1, text_seed=last two words)`` from <s> <s> until </s>, for a fixed time
budget. NLTK is measured at order 3 only, and on train-head only (its training and
generation are too slow for the 10M-token corpus).

Prints a table with ratios and writes JSON (bench/results/bench_sample.json by default).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import random
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
import _path  # noqa: E402,F401  (in-place build or installed package)


import collapse  # noqa: E402
from collapse.ngram.sampler import sampler_for  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "tinystories" / "train-head.txt"


def fit_model(corpus, order, estimator, workdir):
    if estimator == "fit":
        return collapse.NGramModel.fit(corpus, order=order, smoothing="mkn")
    lines = pathlib.Path(workdir) / "corpus.txt"
    if not lines.exists():
        corpus.write_text(str(lines))
    arpa = pathlib.Path(workdir) / f"model{order}.arpa"
    lmplz = os.environ.get("LMPLZ", "/work/lmplz/bin/lmplz")
    with open(lines, "rb") as f:
        subprocess.run([lmplz, "-o", str(order), "-S", "20%", "-T", str(workdir), "--arpa", str(arpa)], stdin=f,
                       check=True, capture_output=True)
    return collapse.NGramModel.from_arpa(str(arpa))


def bench_collapse(model, threads, target_tokens, repeats):
    t0 = time.perf_counter()
    sampler_for(model, 1.0)  # build the forward structure (timed apart)
    build_s = time.perf_counter() - t0
    # Sequences per run: enough for about target_tokens.
    probe = model.sample(200, seed=0, threads=threads)
    per_seq = max(probe.num_tokens / 200, 1.0)
    n = max(int(target_tokens / per_seq), 1)
    best = None
    for rep in range(repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        c = model.sample(n, seed=100 + rep, threads=threads)
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
        rate = c.num_tokens / dt
        if best is None or rate > best["tokens_per_s"]:
            best = {"tokens": c.num_tokens, "sequences": n, "seconds": dt, "cpu_seconds": cpu, "tokens_per_s": rate,
                    "tokens_per_cpu_s": c.num_tokens / cpu}
    best["build_s"] = build_s
    return best


def nltk_train(lines, order, kind):
    from nltk.lm import MLE, KneserNeyInterpolated
    from nltk.lm.preprocessing import padded_everygram_pipeline

    sents = [ln.split() for ln in lines]
    train, vocab = padded_everygram_pipeline(order, sents)
    lm = MLE(order) if kind == "mle" else KneserNeyInterpolated(order)
    t0 = time.perf_counter()
    lm.fit(train, vocab)
    return lm, time.perf_counter() - t0


def bench_nltk(lm, order, budget_s, max_tokens):
    rng = random.Random(0)
    tokens = 0
    c0, t0 = time.process_time(), time.perf_counter()
    while time.perf_counter() - t0 < budget_s and tokens < max_tokens:
        context = ["<s>"] * (order - 1)
        for _ in range(200):
            w = lm.generate(1, text_seed=context[-(order - 1):], random_seed=rng)
            tokens += 1
            if w == "</s>" or time.perf_counter() - t0 >= budget_s or tokens >= max_tokens:
                break
            context.append(w)
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"tokens": tokens, "seconds": dt, "cpu_seconds": cpu, "tokens_per_s": tokens / dt,
            "tokens_per_cpu_s": tokens / cpu}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "bench_sample.json"))
    ap.add_argument("--estimator", choices=["fit", "lmplz"], default="fit")
    ap.add_argument("--orders", default="2,3,5")
    ap.add_argument("--big-tokens", type=float, default=10e6, help="size of the synthetic corpus (tokens)")
    ap.add_argument("--sample-tokens", type=float, default=3e6, help="tokens sampled per timed run")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--nltk-budget", type=float, default=20.0, help="seconds of NLTK generation per model")
    ap.add_argument("--skip-big", action="store_true")
    args = ap.parse_args(argv)
    orders = [int(x) for x in args.orders.split(",")]

    if not DATA.exists():
        sys.exit(f"train-head.txt not found at {DATA}")
    train = collapse.load_corpus(str(DATA), format="tinystories")
    corpora = {"train-head": train}
    notes = {}
    if not args.skip_big:
        t0 = time.perf_counter()
        gen = collapse.NGramModel.fit(train, order=5, smoothing="mkn")
        per_seq = gen.sample(500, seed=1).num_tokens / 500
        big = gen.sample(int(args.big_tokens / per_seq), seed=1)
        corpora["synth-10M"] = big
        notes["synth-10M"] = (f"{big.num_tokens} tokens, {big.num_documents} sequences sampled (seed 1) from the MKN "
                              f"5-gram of train-head in {time.perf_counter() - t0:.1f}s")

    rows = []
    with tempfile.TemporaryDirectory() as work:
        for name, corpus in corpora.items():
            wd = pathlib.Path(work) / name
            wd.mkdir()
            for order in orders:
                t0 = time.perf_counter()
                model = fit_model(corpus, order, args.estimator, wd)
                fit_s = time.perf_counter() - t0
                for threads in (1, 2):
                    r = bench_collapse(model, threads, args.sample_tokens, args.repeats)
                    r.update(corpus=name, corpus_tokens=corpus.num_tokens, order=order, threads=threads,
                             ngrams=list(model.num_ngrams()), fit_s=fit_s, system="collapse")
                    rows.append(r)
                    print(f"  collapse {name} order {order} threads {threads}: {r['tokens_per_s']:,.0f} tokens/s",
                          flush=True)

        # Like for like with NLTK's MLE: our MLE trigram of the same text (no backoff mass,
        # so every draw is one alias-table lookup).
        mle_model = collapse.NGramModel.fit(train, order=3, smoothing="mle")
        for threads in (1, 2):
            r = bench_collapse(mle_model, threads, args.sample_tokens, args.repeats)
            r.update(corpus="train-head", corpus_tokens=train.num_tokens, order=3, threads=threads,
                     ngrams=list(mle_model.num_ngrams()), fit_s=0.0, system="coll-mle")
            rows.append(r)
            print(f"  collapse MLE train-head order 3 threads {threads}: {r['tokens_per_s']:,.0f} tokens/s", flush=True)

        lines = list(train.texts())
        nltk_rows = []
        for kind in ("mle", "kn"):
            lm, train_s = nltk_train(lines, 3, kind)
            r = bench_nltk(lm, 3, args.nltk_budget, 10**6)
            r.update(corpus="train-head", order=3, threads=1, system=f"nltk-{kind}", fit_s=train_s)
            nltk_rows.append(r)
            print(f"  nltk {kind} order 3: {r['tokens_per_s']:,.2f} tokens/s ({r['tokens']} tokens in "
                  f"{r['seconds']:.1f}s; training {train_s:.1f}s)", flush=True)

    mle = next(r for r in nltk_rows if r["system"] == "nltk-mle")["tokens_per_s"]
    kn = next(r for r in nltk_rows if r["system"] == "nltk-kn")["tokens_per_s"]
    print()
    print(f"load average at the end: {os.getloadavg()}; ratios are of wall-clock tokens/s")
    print(f"{'system':10} {'corpus':11} {'order':>5} {'thr':>3} {'n-grams':>22} {'build s':>8} "
          f"{'tokens/s':>14} {'tok/CPU-s':>14} {'x NLTK MLE-3':>13} {'x NLTK KN-3':>13}")
    for r in rows + nltk_rows:
        ngrams = "/".join(str(x) for x in r.get("ngrams", [])) or "-"
        build = f"{r['build_s']:.2f}" if "build_s" in r else "-"
        print(f"{r['system']:10} {r['corpus']:11} {r['order']:>5} {r['threads']:>3} {ngrams:>22} {build:>8} "
              f"{r['tokens_per_s']:>14,.1f} {r['tokens_per_cpu_s']:>14,.1f} {r['tokens_per_s'] / mle:>13,.0f} {r['tokens_per_s'] / kn:>13,.0f}")
    for k, v in notes.items():
        print(f"{k}: {v}")
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    out = {"rows": rows + nltk_rows, "notes": notes, "estimator": args.estimator,
           "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "loadavg": load}}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(out, f, indent=2)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
