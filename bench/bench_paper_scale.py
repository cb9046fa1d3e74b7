"""Benchmark: the paper's scale in the n-gram family (issue 13).

The story grammar at --stories stories per generation (the paper: 1,000,000) for
--generations generations (the paper: 40), orders 3 and 5, paradigms Replace,
Accumulate-Subsample and Accumulate. Each (paradigm, order) runs in its own subprocess
and drives the experiment loop's own stages, timed one by one:

  paradigm  D_t from R and S_0 .. S_{t-1} (collapse.experiment.paradigms.training_corpus;
            Accumulate: nothing here, the n-gram family's pool takes in S_{t-1} in fit)
  fit       NGramFamily.fit(D_t), the loop's n-gram family (Accumulate: fit_accumulated, the pool)
  sample    S_t = --stories stories from M_t (temperature 1)
  metrics   collapse.experiment.metrics.generation_metrics (held-out perplexity, self
            perplexity, S_t under M_0, self-BLEU, entropy, diversity, KL to the grammar, ...)

and the peak RSS (VmHWM) of each stage (reset between stages) and of the process so far. Anchor: at the generations of
--lmplz-at, the same D_t is written as text and estimated by lmplz (-S --lmplz-memory);
the table gives lmplz's wall time against our fit (lmplz reads text, we start from ids;
samples can hold <unk>, which lmplz refuses: --skip_symbols drops those few tokens; and
--discount_fallback, the policy our estimator applies where lmplz would stop).
--prune: every fit pruned as lmplz's --prune (issue 22). --pool: Accumulate-Subsample's
S_k kept as memory-mapped files under --workdir (disk, the loop's way: bounded memory) or
in memory (the old way, for the before/after figure).
Corpora are not written to disk (the loop would also gzip them each generation: see
bench_experiment.py for the loop with its files), except with --checkpoint DIR: then each
generation's row and the S_k later generations read are kept there (exact ids, .npz), and
a rerun with the same DIR goes on from the last kept generation, bit for bit.

    python bench/bench_paper_scale.py [--stories 1000000] [--generations 40] [--orders 3,5]
        [--paradigms replace,accumulate-subsample,accumulate] [--lmplz-at 1,2] [--out FILE.json]
        [--prune 0,1,1] [--pool disk|memory]
        [--figure FILE.png] [--checkpoint DIR]
    python bench/bench_paper_scale.py --plot-only FILE.json [MORE.json ...] [--plot-runs replace:5]
        --figure FILE.png   (redraw only; several files: their runs in one figure)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
import _path  # noqa: E402,F401  (in-place build or installed package)
sys.path.insert(0, os.path.join(ROOT, "tests"))


def vm_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def stage_peak_mb() -> float:
    """Peak RSS since the last call, in MB: VmHWM, then reset (clear_refs 5, Linux >= 4.0;
    where that fails the peak stays the process's, which only overstates a stage)."""
    peak = vm_kb("VmHWM") / 1024
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass
    return peak


def write_text(path: str, corpora) -> None:  # noqa: ANN001
    """The corpora's documents, one per line, in order (no concatenated corpus built)."""
    from collapse.experiment.loop import corpus_text_bytes

    with open(path, "wb") as f:
        for c in corpora:
            f.write(corpus_text_bytes(c))


def run_lmplz(lmplz: str, text: str, order: int, memory: str, workdir: str) -> float:
    t = time.perf_counter()
    with open(text, "rb") as f:
        proc = subprocess.run([lmplz, "-o", str(order), "-S", memory, "-T", workdir, "--skip_symbols",
                               "--discount_fallback", "--arpa",
                               os.path.join(workdir, "lmplz.arpa")], stdin=f, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
    if proc.returncode:
        raise RuntimeError(proc.stderr.decode(errors="replace")[-500:])
    return time.perf_counter() - t


def save_sample(path: str, corpus) -> None:  # noqa: ANN001
    """S_t with its exact ids and vocabulary (a resumed run then samples what an unbroken one does)."""
    import numpy as np
    from collapse.files import atomic_path

    words = np.frombuffer("\n".join(corpus.vocab.words[3:]).encode(), dtype=np.uint8)
    with atomic_path(path, ".npz") as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, tokens=corpus.tokens, offsets=corpus.offsets, words=words)


def load_sample(path: str):  # noqa: ANN201
    import numpy as np
    from collapse.data.corpus import Corpus, Vocab

    with np.load(path) as z:
        text = z["words"].tobytes().decode()
        return Corpus(z["tokens"], z["offsets"], Vocab(text.split("\n") if text else []))


def child(args) -> None:  # noqa: ANN001
    """One (paradigm, order): prints one JSON line per generation. With --checkpoint, each
    generation's row and the S_k later generations read are kept there, and a rerun goes on
    from the last generation kept (the rows before it are printed again, marked resumed)."""
    from collapse import _core
    from collapse.data.corpus import CorpusSummary
    from collapse.data.storygrammar import get_grammar
    from collapse.experiment.metrics import Reference, generation_metrics
    from collapse.experiment.paradigms import needed_synthetic, training_corpus
    from collapse.experiment.tails import TailReference
    from collapse.files import fsync_directory
    from collapse.ngram.family import NGramFamily

    from lmplz import find_lmplz

    paradigm, order, n = args.paradigm, args.order, args.stories
    grammar = get_grammar()
    t = time.perf_counter()
    real, _ = grammar.sample(n, 1)
    heldout, heldout_lp = grammar.sample(args.heldout, 2)
    ref = Reference.build(real, heldout, grammar=grammar, heldout_logprobs=heldout_lp)
    tail_ref = TailReference.build(real) if args.time_new_metrics else None
    print(json.dumps({"setup_s": time.perf_counter() - t, "real_tokens": real.num_tokens}), flush=True)
    prune = [int(v) for v in args.prune.split(",")] if args.prune else None
    family = NGramFamily(order, threads=args.threads, prune=prune)
    # Accumulate-Subsample's S_k on disk, memory-mapped when drawn from (as the loop keeps them)
    store = None
    if paradigm == "accumulate-subsample" and args.pool == "disk":
        from collapse.experiment.synthetic_store import SyntheticStore
        store_dir = tempfile.mkdtemp(prefix="synthetic-pool-", dir=args.workdir)
        store = SyntheticStore(store_dir)
    lmplz = find_lmplz(build=False)
    lmplz_at = {int(g) for g in args.lmplz_at.split(",") if g}
    synthetic = [None] * (args.generations + 1)
    ckpt = rows_path = None
    first, elapsed_before, peak_before = 0, 0.0, 0.0
    if args.checkpoint:
        ckpt = os.path.join(args.checkpoint, f"{paradigm}-o{order}-n{n}")
        os.makedirs(ckpt, exist_ok=True)
        rows_path = os.path.join(ckpt, "rows.jsonl")
        done = []
        if os.path.exists(rows_path):
            with open(rows_path) as f:
                done = [json.loads(line) for line in f if line.endswith("\n")]  # a torn last line is redone
        for row in done[:args.generations + 1]:
            print(json.dumps({**row, "resumed": True}), flush=True)
        first = min(len(done), args.generations + 1)
        if first:
            elapsed_before = done[first - 1]["elapsed_s"]
            peak_before = done[first - 1]["peak_rss_mb"]
            for k in needed_synthetic(paradigm, first):
                synthetic[k] = load_sample(os.path.join(ckpt, f"S_{k}.npz"))
                if store is not None:
                    synthetic[k] = store.put(k, synthetic[k])
    t_start = time.perf_counter()
    m0 = None
    process_peak = max(peak_before, stage_peak_mb())  # the setup's (and resumed S_k's); over every session
    for g in range(first, args.generations + 1):
        stage_peak_mb()
        t0 = time.perf_counter()
        if paradigm == "accumulate":
            train_parts = [real] + synthetic[:g]
            t1 = time.perf_counter()
            model, train = family.fit_accumulated(g + 1, lambda k: train_parts[k], seed=0)  # noqa: F821 (bound above; ruff reads the del below)
        else:
            train = training_corpus(paradigm, None, g, real, synthetic,
                                    lambda purpose: _core.derive_seed(_core.derive_seed(7, g), purpose))
            train_parts = [train]
            t1 = time.perf_counter()
            model = family.fit(train, seed=0)
        t2 = time.perf_counter()
        fit_peak = stage_peak_mb()
        lmplz_s = None
        if lmplz and g in lmplz_at:
            with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
                text = os.path.join(tmp, "train.txt")
                write_text(text, train_parts)
                lmplz_s = run_lmplz(lmplz, text, order, args.lmplz_memory, tmp)
        # What later stages read of D_t is its summary: free the text before sampling
        # (Replace's S_{t-1}, Accumulate-Subsample's draw), and every S_k no later D reads.
        if not isinstance(train, CorpusSummary):
            train = CorpusSummary.of(train)
        keep = set(needed_synthetic(paradigm, g + 1))
        if paradigm == "accumulate" and not any(a > g for a in lmplz_at):
            keep = set()  # the pool holds the counts; S_k stay only while lmplz still needs the text
        for k in range(g):
            if k not in keep:
                synthetic[k] = None
        del train_parts
        t2b = time.perf_counter()
        stage_peak_mb()
        synth = model.sample(n, seed=_core.derive_seed(11, g))
        sample_peak = stage_peak_mb()
        model.end_sampling()  # the sampler goes before scoring builds its index
        t3 = time.perf_counter()
        if g == 0:
            m0 = model  # generation 0's model scores every S_t (ref_ppl), as in the loop
        elif m0 is None:  # resumed from a checkpoint: refit M_0 (deterministic)
            m0 = family.fit(real, seed=0)
        metrics = generation_metrics(model, train, synth, ref, args.threads, reference_model=m0,
                                     seed=_core.derive_seed(13, g))
        t4 = time.perf_counter()
        metrics_peak = stage_peak_mb()
        new_metrics = time_new_metrics(model, m0, synth, ref, tail_ref, args.workdir, _core.derive_seed(13, g)) \
            if args.time_new_metrics else {}
        process_peak = max(process_peak, fit_peak, sample_peak, metrics_peak)
        row = {"generation": g, "paradigm_s": t1 - t0, "fit_s": t2 - t1, "sample_s": t3 - t2b, "metrics_s": t4 - t3,
               "train_tokens": train.num_tokens, "ngrams": model.model.num_ngrams(), "peak_rss_mb": process_peak,
               "fit_peak_mb": fit_peak, "sample_peak_mb": sample_peak, "metrics_peak_mb": metrics_peak,
               "rss_mb": vm_kb("VmRSS") / 1024, "heldout_ppl": metrics["heldout_ppl"],
               "kl_truth": metrics["kl_truth"], "distinct_4": metrics["distinct_4"],
               "ref_ppl": metrics["ref_ppl"], "self_bleu4": metrics["self_bleu4"],
               "loadavg_1min": os.getloadavg()[0], "elapsed_s": elapsed_before + time.perf_counter() - t_start,
               **new_metrics}
        if lmplz_s is not None:
            row["lmplz_s"] = lmplz_s
        if ckpt and g in needed_synthetic(paradigm, g + 1):  # kept past the last generation: a rerun may go further
            save_sample(os.path.join(ckpt, f"S_{g}.npz"), synth)
        synthetic[g] = store.put(g, synth) if store is not None else synth
        del model, train, metrics, synth
        if ckpt:
            with open(rows_path, "a") as f:  # the row after its S_g: a kept row's sample is on disk
                f.write(json.dumps(row) + "\n")
                f.flush()
                os.fsync(f.fileno())
            for k in range(g + 1):
                stale = os.path.join(ckpt, f"S_{k}.npz")
                if k not in needed_synthetic(paradigm, g + 1) and os.path.exists(stale):
                    os.remove(stale)
            fsync_directory(ckpt)
        print(json.dumps(row), flush=True)
    if store is not None:
        import shutil
        shutil.rmtree(store.directory, ignore_errors=True)


PARADIGM_COLOURS = {"replace": "tab:red", "accumulate-subsample": "tab:blue", "accumulate": "tab:green"}


def run_label(run: dict, config: dict) -> str:
    """"paradigm, order N"; for a run whose fits were pruned, its thresholds; for
    Accumulate-Subsample, where its S_k were kept (results from before --pool: memory)."""
    prune = config.get("prune") or ""
    label = f"{run['paradigm']}, order {run['order']}" + (f", --prune {prune}" if prune else "")
    if run["paradigm"] == "accumulate-subsample":
        label += ", S_k on disk" if config.get("pool", "memory") == "disk" else ", S_k in memory"
    return label


def merge_results(results: list, keep: str = "") -> dict:
    """Several results files as one for plot(): their runs side by side, each labelled with
    its own file's pruning (keep: "paradigm:order,..." selects runs; "" keeps all)."""
    wanted = {tuple(k.split(":")) for k in keep.split(",") if k}
    runs = [{**run, "label": run_label(run, r["config"])} for r in results for run in r["runs"]
            if not wanted or (run["paradigm"], str(run["order"])) in wanted]
    first = results[0]["config"]
    return {**results[0], "runs": runs,
            "config": {**first, "generations": max(r["config"]["generations"] for r in results)}}


def plot(results: dict, path: str) -> None:
    """Six panels over generations, one line per (paradigm, order): seconds per generation
    (all stages), the fit alone, held-out perplexity, KL to the grammar (nats/story), the
    model's size (n-grams, all orders) and the peak RSS so far; a run that stopped early
    ends with an x. A pruned run (--prune) is drawn dotted."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 2, figsize=(11, 10.5), constrained_layout=True)
    panels = [("seconds per generation (fit + sample + paradigm + metrics)",
               lambda r: r["fit_s"] + r["sample_s"] + r["paradigm_s"] + r["metrics_s"]),
              ("fit seconds", lambda r: r["fit_s"]),
              ("held-out perplexity (per word + </s>)", lambda r: r["heldout_ppl"]),
              ("KL(grammar || model), nats per story", lambda r: r["kl_truth"]),
              ("model size: n-grams of all orders (millions)", lambda r: sum(r["ngrams"]) / 1e6),
              ("peak RSS so far (GiB)", lambda r: r["peak_rss_mb"] / 1024)]
    last = results["config"]["generations"]
    for ax, (title, value) in zip(axes.flat, panels):
        for run in results["runs"]:
            gens = run["generations"]
            if not gens:
                continue
            label = run.get("label") or run_label(run, results["config"])
            style = ":" if "--prune" in label else "-" if run["order"] == 3 else "--"
            colour = "tab:purple" if label.endswith("S_k on disk") else PARADIGM_COLOURS.get(run["paradigm"], "black")
            ax.plot([g["generation"] for g in gens], [value(g) for g in gens], style, color=colour,
                    label=label)
            if gens[-1]["generation"] < last:  # stopped before the last generation (memory, or not yet done)
                ax.plot([gens[-1]["generation"]], [value(gens[-1])], "x", color=colour, markersize=8)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("generation")
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8)
    cfg = results["config"]
    fig.suptitle(f"n-gram family at the paper's scale: {cfg['stories']:,} grammar stories per generation, "
                 f"{cfg['threads']} threads", fontsize=11)
    for ext in (".png", ".svg"):
        with matplotlib.rc_context({"svg.hashsalt": "collapse"}):
            fig.savefig(os.path.splitext(path)[0] + ext, dpi=110)
    plt.close(fig)


def stage_peaks(rec: dict) -> str:
    if "fit_peak_mb" not in rec:  # rows of runs before the stages were measured apart
        return ""
    return f"{rec['fit_peak_mb']:.0f} / {rec['sample_peak_mb']:.0f} / {rec['metrics_peak_mb']:.0f}"


NEW_METRIC_COLUMNS = ("ref_ppl_s", "self_bleu4_s", "zipf_s", "tails_s", "tails_write_s")


def time_new_metrics(model, m0, synth, ref, tail_ref, workdir: str, seed: int) -> dict:  # noqa: ANN001
    """With --time-new-metrics: issue 20's metrics of this generation timed again one by one,
    as the loop computes them (inside metrics_s already, except the tail): ref_ppl (S_t's
    first REF_PPL_DOCUMENTS documents under M_0), self_bleu4, zipf_exponent, and the tail
    (tails.generation_tails, and writing its two files as the loop does with each generation).
    rep_2..4 and diversity derive from distinct_n, which the metrics computed before."""
    import numpy as np

    from collapse.experiment.fieldstats import self_bleu4, self_bleu_subset, zipf_exponent
    from collapse.experiment.metrics import REF_PPL_DOCUMENTS, documents
    from collapse.experiment.tails import generation_tails, write_generation

    out = {}
    t = time.perf_counter()
    if model is not m0:
        n = min(synth.num_documents, REF_PPL_DOCUMENTS)
        m0.perplexity(synth if n == synth.num_documents else synth.select(np.arange(n)))
    out["ref_ppl_s"] = time.perf_counter() - t
    t = time.perf_counter()
    self_bleu4(documents(synth, self_bleu_subset(synth.num_documents, seed)))
    out["self_bleu4_s"] = time.perf_counter() - t
    own = np.bincount(synth.tokens, minlength=len(synth.vocab))  # the metrics count these anyway (vocab_size)
    t = time.perf_counter()
    zipf_exponent(own[3:])
    out["zipf_s"] = time.perf_counter() - t
    t = time.perf_counter()
    columns, present = generation_tails(synth, ref.real.vocab, tail_ref)
    out["tails_s"] = time.perf_counter() - t
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        t = time.perf_counter()
        write_generation(tmp, columns, present)
        out["tails_write_s"] = time.perf_counter() - t
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--paradigm", help=argparse.SUPPRESS)
    ap.add_argument("--order", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--stories", type=int, default=1_000_000)
    ap.add_argument("--generations", type=int, default=40)
    ap.add_argument("--orders", default="3,5")
    ap.add_argument("--paradigms", default="replace,accumulate-subsample,accumulate")
    ap.add_argument("--heldout", type=int, default=5000, help="held-out stories for the metrics")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--lmplz-at", default="1,2", help="generations at which lmplz estimates the same D_t")
    ap.add_argument("--lmplz-memory", default="1G")
    ap.add_argument("--prune", default="", help="lmplz's --prune for every fit, comma-separated (e.g. 0,1,1)")
    ap.add_argument("--pool", choices=("disk", "memory"), default="disk",
                    help="Accumulate-Subsample's S_k: memory-mapped files under --workdir (the loop's way) or in memory")
    ap.add_argument("--workdir", default=tempfile.gettempdir())
    ap.add_argument("--checkpoint", help="directory that keeps each generation's row and the S_k later ones "
                    "read; a rerun with the same directory goes on where the last one stopped")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "paper_scale.json"))
    ap.add_argument("--figure", help="also draw the figure (PNG + SVG) to this path")
    ap.add_argument("--time-new-metrics", action="store_true",
                    help="also time issue 20's metrics one by one (ref_ppl, self_bleu4, zipf_exponent, the tail): "
                         "columns ref_ppl_s, self_bleu4_s, zipf_s, tails_s, tails_write_s")
    ap.add_argument("--plot-only", metavar="JSON", nargs="+",
                    help="draw --figure from the results files of earlier runs (several: their runs side by side)")
    ap.add_argument("--plot-runs", default="", metavar="PARADIGM:ORDER,...",
                    help="with --plot-only: only these runs (e.g. replace:5)")
    args = ap.parse_args()
    if args.plot_only:
        loaded = []
        for name in args.plot_only:
            with open(name) as f:
                loaded.append(json.load(f))
        plot(merge_results(loaded, args.plot_runs), args.figure or os.path.splitext(args.plot_only[0])[0] + ".png")
        return 0
    if args.child:
        child(args)
        return 0
    results = {"config": {k: v for k, v in vars(args).items() if k not in ("child", "paradigm", "order")},
               "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "loadavg": os.getloadavg()},
               "commit": subprocess.run(["git", "-C", ROOT, "rev-parse", "HEAD"], capture_output=True,
                                        text=True).stdout.strip(),
               "runs": []}
    def save() -> None:  # after every generation, so a benchmark stopped early keeps what it measured
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out + ".tmp", "w") as f:
            json.dump(results, f, indent=1)
        os.replace(args.out + ".tmp", args.out)

    for order in (int(o) for o in args.orders.split(",")):  # every paradigm at order 3 first
        for paradigm in args.paradigms.split(","):
            cmd = [sys.executable, os.path.abspath(__file__), "--child", "--paradigm", paradigm, "--order", str(order),
                   "--stories", str(args.stories), "--generations", str(args.generations), "--heldout",
                   str(args.heldout), "--threads", str(args.threads), "--lmplz-at", args.lmplz_at,
                   "--lmplz-memory", args.lmplz_memory, "--workdir", args.workdir, "--pool", args.pool]
            if args.prune:
                cmd += ["--prune", args.prune]
            if args.time_new_metrics:
                cmd.append("--time-new-metrics")
            if args.checkpoint:
                cmd += ["--checkpoint", args.checkpoint]
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
            run = {"paradigm": paradigm, "order": order, "returncode": None, "wall_s": None, "setup": None,
                   "generations": []}
            results["runs"].append(run)
            print(f"\n{paradigm} order {order}, {args.stories} stories")
            print(f"{'gen':>4} {'tokens':>12} {'paradigm s':>10} {'fit s':>8} {'sample s':>9} {'metrics s':>9} "
                  f"{'peak MB':>8} {'fit/sample/metrics peak MB':>26} {'lmplz s':>8} {'lmplz/fit':>9} {'ppl':>7} {'KL nats':>8}")
            for line in proc.stdout:
                rec = json.loads(line)
                if "generation" not in rec:
                    run["setup"] = rec
                else:
                    run["generations"].append(rec)
                    run["wall_s"] = rec["elapsed_s"] + run["setup"]["setup_s"]
                    save()
                    lm = rec.get("lmplz_s")
                    lm_s = "" if lm is None else f"{lm:.2f}"
                    ratio = "" if lm is None else f"{lm / rec['fit_s']:.2f}x"
                    print(f"{rec['generation']:>4} {rec['train_tokens']:>12} {rec['paradigm_s']:>10.2f} "
                          f"{rec['fit_s']:>8.2f} {rec['sample_s']:>9.2f} {rec['metrics_s']:>9.2f} "
                          f"{rec['peak_rss_mb']:>8.0f} {stage_peaks(rec):>26} {lm_s:>8} {ratio:>9} {rec['heldout_ppl']:>7.3f} "
                          f"{rec['kl_truth']:>8.2f}", flush=True)
                    if "tails_s" in rec:
                        new = sum(rec[c] for c in NEW_METRIC_COLUMNS)
                        step = sum(rec[c] for c in ("fit_s", "sample_s", "paradigm_s", "metrics_s", "tails_s", "tails_write_s"))
                        print("     issue 20's metrics: " + ", ".join(f"{c} {rec[c]:.2f}" for c in NEW_METRIC_COLUMNS)
                              + f"; {new:.2f} s of the generation's {step:.2f} s ({100 * new / step:.1f}%)", flush=True)
            rc = proc.wait()
            run["returncode"] = rc
            print(f"total {run['wall_s'] or 0:.1f} s (return code {rc}; with --checkpoint: over every session)")
            save()
    if args.figure:
        plot(results, args.figure)
        print(f"figure: {args.figure}")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
