"""One command for a GPU: is collapse.transformer right and fast enough for the paper's protocol?

On a CUDA machine, in at most about 8 minutes, it measures and prints (table + JSON):

1. logit agreement under bf16 and fp16 autocast: on random weights of the 33M
   configuration, the largest logit error of ours and of transformers' GPTNeoForCausalLM
   (eager attention), each against its own float32 logits, on 4 x 512 tokens (past the
   local window); pass = ours <= 2 x theirs + 1e-3 (the CPU test's criterion);
2. sampling, one row per ``--sampling`` entry (bench_generation.time_refill on the 33M
   configuration with an end-of-text bias that gives TinyStories-like lengths, mean 224
   tokens, at most 600): today's batch-after-batch sampler (``old``) and continuous refill
   eager, compiled, and compiled + captured as a CUDA graph (``graph``), documents/s, ms
   per decode step, peak memory, and the minutes 1M stories take at that rate; then
   (unless --no-hf) tokens/s of today's sampler (generate_batch) and of transformers
   ``generate`` at batch 256 x 256 new tokens;
3. training tokens/s of the 33M preset through collapse's own train() (the paper's
   recipe: batch 320 of 512 tokens, AdamW), one row per ``--training`` entry: eager or
   ``compile = true``, micro-batches of 64 or 320, bf16 by default (fp16 with loss scaling
   and ``deterministic = true`` on request), each timed over 12 steps after a warm-up
   train() of 2 steps whose extra time is reported as the compilation's, and the MFU
   against --peak-tflops (default from the GPU's name: H100/H200 989, A100 312 dense bf16
   TFLOP/s); the minutes of one paper generation's training (3 epochs over 1M stories)
   at the best measured rate;
4. minutes per paper generation: that training + sampling 1M stories at the best
   measured sampling rate (measured rates extrapolated from timed slices), beside the
   older PROJECTION from the fixed-length rate.

The JSON is rewritten after each section, so a run cut short keeps what it measured.

Without CUDA it says so and exits 0. ``--device cpu --tiny`` runs every step of the CUDA
path on CPU with tiny sizes (CPU autocast for bf16/fp16), so the script is exercised
before it first meets a GPU.

    python bench/gpu_check.py [--out bench/results/gpu_check.json] [--peak-tflops 989]
    python bench/gpu_check.py --device cpu --tiny          # dry run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time

import _path  # noqa: F401  (in-place build or installed package)

# One paper generation (README / docs/transformer.md): 1,000,000 stories of about 224 BPE
# tokens each (TinyStories with GPT-2's tokenizer), trained 3 epochs, and 1,000,000
# stories sampled (the synthetic set has the real one's size under Replace).
PAPER_STORIES = 1_000_000
TOKENS_PER_STORY = 224
PAPER_EPOCHS = 3
PEAKS = {"H100": 989.0, "H200": 989.0, "H800": 989.0, "GH200": 989.0, "A100": 312.0, "A800": 312.0,
         "L40S": 362.0, "L4": 121.0, "A10": 125.0}


def model_config(tiny):
    from collapse.transformer import GPTNeoConfig

    if not tiny:
        return GPTNeoConfig.tinystories_33m()
    return GPTNeoConfig(vocab_size=512, max_position_embeddings=64, hidden_size=64, num_layers=2, num_heads=4,
                        window_size=8, bos_token_id=0, eos_token_id=0)


def _sync(device):
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


def peak_tflops(device, given):
    if given:
        return given
    if device.type != "cuda":
        return None
    import torch

    name = torch.cuda.get_device_name(device)
    for key, value in PEAKS.items():
        if key in name:
            return value
    return None


def check_logits(device, tiny):
    import torch
    import transformers

    from collapse.transformer import GPTNeo
    from collapse.transformer.precision import autocast

    torch.manual_seed(0)
    cfg = model_config(tiny)
    seq = 512 if not tiny else 40
    ours = GPTNeo(cfg).eval()
    with tempfile.TemporaryDirectory() as tmp:
        ours.save_pretrained(tmp)
        hf = transformers.GPTNeoForCausalLM.from_pretrained(tmp, attn_implementation="eager").eval()
    ours, hf = ours.to(device), hf.to(device)
    ids = torch.randint(0, cfg.vocab_size, (4, seq), generator=torch.Generator().manual_seed(1)).to(device)
    rows = []
    with torch.no_grad():
        ref_ours, ref_hf = ours(ids).float(), hf(ids).logits.float()
        fp32_diff = float((ref_ours - ref_hf).abs().max())
        for precision in ("bf16", "fp16"):
            with autocast(device, precision):
                got_ours, got_hf = ours(ids).float(), hf(ids).logits.float()
            err_ours = float((got_ours - ref_ours).abs().max())
            err_hf = float((got_hf - ref_hf).abs().max())
            rows.append({"precision": precision, "err_ours": err_ours, "err_hf": err_hf,
                         "fp32_ours_vs_hf": fp32_diff, "logit_scale": float(ref_hf.abs().max()),
                         "pass": bool(err_ours <= 2 * err_hf + 1e-3) and fp32_diff < 1e-3})
    del ours, hf
    return rows


# training rows: PRECISION[-det]:MODE:MICRO (MODE eager | compile; -det: deterministic = true)
DEFAULT_SAMPLING = "old:512,eager:1024,graph:1024,graph:4096"
TINY_SAMPLING = "old:4,eager:4,compile:4"
DEFAULT_TRAINING = "bf16:eager:64,bf16:eager:320,bf16:compile:320"
TINY_TRAINING = "bf16:eager:4,bf16:eager:8,bf16:compile:8"


def parse_training(spec):
    """The training rows asked for: a list of (precision, deterministic, compile, micro)."""
    out = []
    for item in filter(None, (x.strip() for x in spec.split(","))):
        try:
            precision, mode, micro = item.split(":")
            micro = int(micro)
        except ValueError:
            raise SystemExit(f"gpu_check: training row {item!r} is not PRECISION[-det]:eager|compile:MICRO")
        deterministic = precision.endswith("-det")
        precision = precision[:-4] if deterministic else precision
        if precision not in ("bf16", "fp16", "fp32") or mode not in ("eager", "compile") or micro < 1:
            raise SystemExit(f"gpu_check: training row {item!r} is not PRECISION[-det]:eager|compile:MICRO")
        out.append((precision, deterministic, mode == "compile", micro))
    # deterministic last: torch.use_deterministic_algorithms is process-wide
    return sorted(out, key=lambda r: r[1])


def check_training(device, tiny, peak, rows_spec):
    import numpy as np
    import torch

    from collapse.transformer import GPTNeo

    cfg = model_config(tiny)
    context, batch, steps, warm_steps = (512, 320, 12, 2) if not tiny else (32, 8, 3, 2)
    rng = np.random.default_rng(0)
    rows_data = rng.integers(1, cfg.vocab_size, size=(batch * steps, context + 1)).astype(np.int32)
    # flops per trained token: 6 per weight in the matrix products (the tied head included,
    # position embeddings not), plus the attention products 12 * layers * context * hidden
    # (every layer counted causal-global, so local layers are over-counted a little)
    weights = GPTNeo(cfg).num_parameters() - cfg.max_position_embeddings * cfg.hidden_size
    flops_per_token = 6 * weights + 12 * cfg.num_layers * context * cfg.hidden_size
    out = []
    for precision, deterministic, compiled, micro in parse_training(rows_spec):
        row = {"precision": precision, "deterministic": deterministic, "compile": compiled, "batch": batch,
               "micro_batch": micro, "context": context, "flops_per_token": flops_per_token}
        try:
            row.update(_time_training(cfg, rows_data, device, precision, deterministic, compiled, micro,
                                      batch, context, warm_steps))
        except RuntimeError as e:  # a row that fails (out of memory, compilation) is reported; the others run
            row.update({"error": f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}",
                        "tokens_per_second": None, "steps": 0, "final_loss": None, "compile_seconds": 0.0})
            if device.type == "cuda":
                torch.cuda.empty_cache()
        row["mfu"] = row["tokens_per_second"] * flops_per_token / (peak * 1e12) \
            if peak and row["tokens_per_second"] else None
        out.append(row)
    return out


def _time_training(cfg, rows_data, device, precision, deterministic, compiled, micro, batch, context, warm_steps):
    import torch

    from collapse.transformer.train import TrainConfig, train

    tc = TrainConfig(batch_size=batch, micro_batch_size=micro, epochs=1, context_length=context,
                     device=str(device), precision=precision, deterministic=deterministic, compile=compiled)
    # warm-up (allocator, kernels; torch.compile's compilation, timed apart): a later
    # train() of the same shapes reuses the compiled code. Each compiled row starts
    # afresh, so that it compiles for its own shapes (a second shape would otherwise
    # get torch.compile's graph for any batch size)
    if compiled:
        torch._dynamo.reset()
    t = time.perf_counter()
    train(cfg, rows_data[:batch * warm_steps], 0, tc, seed=0)
    _sync(device)
    warm_seconds = time.perf_counter() - t
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    model, stats = train(cfg, rows_data, 0, tc, seed=0)
    rate = stats.tokens / stats.seconds
    row = {"steps": stats.steps, "tokens_per_second": rate, "final_loss": stats.losses[-1],
           # the warm-up's time beyond what its steps take at the measured rate: compilation
           "first_call_seconds": warm_seconds,
           "compile_seconds": max(0.0, warm_seconds - batch * warm_steps * context / rate) if compiled else 0.0}
    if device.type == "cuda":
        row["max_memory_gib"] = torch.cuda.max_memory_allocated(device) / 2 ** 30
    del model
    return row


def training_generation(training):
    """One paper generation's training (3 epochs) at the best measured rate: a measured rate
    extrapolated, not a timed generation."""
    ran = [r for r in training if r["tokens_per_second"]]
    if not ran:
        return {"kind": "NOT MEASURED (every training row failed)", "row": None, "slice": "", "minutes": float("nan"),
                "tokens_per_second": None, "compile_minutes": float("nan")}
    best = max([r for r in ran if not r["deterministic"]] or ran, key=lambda r: r["tokens_per_second"])
    tokens = PAPER_EPOCHS * PAPER_STORIES * TOKENS_PER_STORY
    return {"kind": "MEASURED rate, extrapolated", "row": _training_label(best),
            "slice": f"{best['steps']} optimizer steps of {best['batch']} x {best['context']} tokens "
                     f"({best['steps'] * best['batch'] * best['context']:,} tokens) after a warm-up train() "
                     f"of the same shapes",
            "tokens": tokens, "tokens_per_second": best["tokens_per_second"],
            "minutes": tokens / best["tokens_per_second"] / 60,
            "compile_minutes": best["compile_seconds"] / 60}


def _training_label(r):
    return (f"{r['precision']}{' det' if r['deterministic'] else ''} "
            f"{'compiled' if r['compile'] else 'eager'} micro {r['micro_batch']}")


def check_sampling(device, tiny):
    import torch
    import transformers

    from bench_transformer import bench_generation
    from collapse.transformer import GPTNeo

    torch.manual_seed(0)
    cfg = model_config(tiny)
    batch, new_tokens, repeats = (256, 256, 2) if not tiny else (4, 8, 1)
    ours = GPTNeo(cfg).eval()
    with tempfile.TemporaryDirectory() as tmp:
        ours.save_pretrained(tmp)
        hf = transformers.GPTNeoForCausalLM.from_pretrained(tmp, attn_implementation="eager").eval()
    ours, hf = ours.to(device), hf.to(device)
    tok_ours, tok_hf = bench_generation(ours, hf, batch, new_tokens, repeats, device, cfg.eos_token_id,
                                        precision="bf16")
    return {"precision": "bf16", "batch": batch, "new_tokens": new_tokens, "tokens_per_second_ours": tok_ours,
            "tokens_per_second_hf": tok_hf, "ratio": tok_ours / tok_hf}


def parse_sampling(spec):
    """The sampling rows asked for: a list of (mode, rows), mode old | eager | compile | graph."""
    out = []
    for item in filter(None, (x.strip() for x in spec.split(","))):
        mode, _, rows = item.partition(":")
        if mode not in ("old", "eager", "compile", "graph") or not rows.isdigit() or int(rows) < 1:
            raise SystemExit(f"gpu_check: sampling row {item!r} is not old|eager|compile|graph:ROWS")
        out.append((mode, int(rows)))
    return out


def check_sampling_rows(device, tiny, spec):
    """Each row: bench_generation.time_refill (a warm-up call of ``rows`` documents, which
    compiles and captures, then 16 x rows documents timed; 8 x rows for ``old``)."""
    import torch

    from bench_generation import biased_model, time_refill

    model = biased_model(model_config(tiny), seed=0).to(device)
    new_tokens = 40 if tiny else 600
    out = []
    for mode, rows in parse_sampling(spec):
        row = {"mode": mode, "rows": rows}
        try:
            row.update(time_refill(model, rows, (8 if mode == "old" else 16) * rows, refill=mode != "old",
                                   compile=mode in ("compile", "graph"), cuda_graph=mode == "graph",
                                   precision="bf16", max_new_tokens=new_tokens))
        except RuntimeError as e:  # out of memory, a failed compile or capture: reported, the others run
            row.update({"error": f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}",
                        "documents_per_second": None})
            if device.type == "cuda":
                torch.cuda.empty_cache()
        out.append(row)
        print(_sampling_line(row), flush=True)
    return out


def _sampling_line(r):
    label = f"{r['mode']} x {r['rows']}"
    if r.get("error"):
        return f"{label:16} FAILED: {r['error']}"
    mem = f"{r['peak_memory_gb']:7.1f}" if r.get("peak_memory_gb") is not None else f"{'-':>7}"
    ms = f"{r['ms_per_step']:8.2f}" if r.get("ms_per_step") else f"{'-':>8}"
    return (f"{label:16} {r['documents']:8,d} {r['documents_per_second']:10,.0f} {r['mean_length']:7.0f} {ms} "
            f"{mem} {r['projected_minutes_1M']:9.1f}")


def measured_generation(training, sampling_rows):
    """Minutes of one paper generation from measured rates: training (training_generation)
    + 1M stories at the fastest sampling row, each extrapolated from its timed slice."""
    g = training_generation(training)
    ran = [r for r in sampling_rows if r.get("documents_per_second")]
    if g["row"] is None or not ran:
        return {"kind": "NOT MEASURED (no training or no sampling row ran)"}
    best = max(ran, key=lambda r: r["documents_per_second"])
    sample_min = PAPER_STORIES / best["documents_per_second"] / 60
    return {"kind": "MEASURED rates, extrapolated", "training_minutes": g["minutes"], "training_row": g["row"],
            "sampling_minutes": sample_min, "sampling_row": f"{best['mode']} x {best['rows']}",
            "sampling_slice": f"{best['documents']:,} documents (mean {best['mean_length']:.0f} tokens) after a "
                              f"warm-up of {best['rows']:,}",
            "generation_minutes": g["minutes"] + sample_min,
            "compile_minutes": g["compile_minutes"], "goal_minutes": 20.0}


def _save(result, path):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(result, f, indent=2)
        f.write("\n")


def projection(training, sampling):
    train_s = 60 * training_generation(training)["minutes"]
    tokens = PAPER_STORIES * TOKENS_PER_STORY
    # sampled stories end at their own end-of-text (rows are dropped from the batch as they
    # finish) but the cache grows to the longest story's length: the fixed-length rate is
    # taken as the rate of the real sampling
    sample_s = tokens / sampling["tokens_per_second_ours"]
    return {"kind": "PROJECTION (not a measured generation)",
            "basis": f"{PAPER_STORIES:,} stories x {TOKENS_PER_STORY} BPE tokens; {PAPER_EPOCHS} epochs at the "
                     f"best measured training rate; sampling at the measured batch-{sampling['batch']} rate "
                     f"of {sampling['new_tokens']} new tokens; tokenisation, metrics and writing excluded",
            "training_minutes": train_s / 60, "sampling_minutes": sample_s / 60,
            "generation_minutes": (train_s + sample_s) / 60, "goal_minutes": 20.0}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--tiny", action="store_true", help="tiny sizes (a dry run of every step, e.g. on CPU)")
    ap.add_argument("--peak-tflops", type=float, default=0.0, help="dense bf16 peak for MFU (default: by GPU name)")
    ap.add_argument("--training", default="", help="training rows, PRECISION[-det]:eager|compile:MICRO,... "
                    f"(default {DEFAULT_TRAINING}; tiny: {TINY_TRAINING}; e.g. add bf16:compile:64, "
                    "fp16:compile:320, bf16-det:eager:64)")
    ap.add_argument("--sampling", default="", help=f"sampling rows, old|eager|compile|graph:ROWS,... "
                    f"(default {DEFAULT_SAMPLING}; tiny: {TINY_SAMPLING})")
    ap.add_argument("--no-hf", action="store_true", help="skip the fixed-length comparison with transformers' generate")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                                  "gpu_check.json"))
    args = ap.parse_args(argv)
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(f"gpu_check: no CUDA device here (torch {torch.__version__}); nothing measured. "
              f"Run it on a GPU machine, or try the dry run: --device cpu --tiny")
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    import transformers

    t_start = time.perf_counter()
    peak = peak_tflops(device, args.peak_tflops)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
    result = {"device": str(device), "device_name": name, "torch": torch.__version__,
              "transformers": transformers.__version__, "tiny": args.tiny, "peak_tflops": peak,
              "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    print(f"{name}: torch {torch.__version__}, transformers {transformers.__version__}"
          f"{', TINY dry run' if args.tiny else ''}", flush=True)

    result["logits"] = check_logits(device, args.tiny)
    print("\nlogit agreement (max |logit - own float32 logit|, 4 x %s tokens, random weights)" %
          (40 if args.tiny else 512))
    print(f"{'precision':9} {'ours':>10} {'transformers':>13} {'fp32 ours-HF':>13} {'pass':>5}")
    for r in result["logits"]:
        print(f"{r['precision']:9} {r['err_ours']:10.4g} {r['err_hf']:13.4g} {r['fp32_ours_vs_hf']:13.3g} "
              f"{'yes' if r['pass'] else 'NO':>5}")

    _save(result, args.out)

    print("\nsampling, bf16, 33M preset unless tiny, TinyStories-like lengths (bench_generation.biased_model)")
    print(f"{'row':16} {'docs':>8} {'docs/s':>10} {'mean len':>7} {'ms/step':>8} {'mem GB':>7} {'min / 1M':>9}")
    result["sampling_rows"] = check_sampling_rows(device, args.tiny, args.sampling or
                                                  (TINY_SAMPLING if args.tiny else DEFAULT_SAMPLING))
    _save(result, args.out)
    s = None
    if not args.no_hf:
        result["sampling"] = s = check_sampling(device, args.tiny)
        print(f"\nsampling, bf16, batch {s['batch']} x {s['new_tokens']} new tokens: ours (today's sampler) "
              f"{s['tokens_per_second_ours']:,.0f} tok/s, transformers generate {s['tokens_per_second_hf']:,.0f} "
              f"tok/s, ratio {s['ratio']:.2f}")
        _save(result, args.out)

    result["training"] = check_training(device, args.tiny, peak, args.training or
                                        (TINY_TRAINING if args.tiny else DEFAULT_TRAINING))
    print("\ntraining, collapse.transformer.train (33M preset unless tiny)")
    print(f"{'row':30} {'steps':>5} {'batch x ctx':>12} {'tokens/s':>12} {'MFU':>7} {'loss':>7} {'compile s':>9}")
    for r in result["training"]:
        if r.get("error"):
            print(f"{_training_label(r):30} FAILED: {r['error']}")
            continue
        mfu = f"{100 * r['mfu']:6.1f}%" if r["mfu"] is not None else "    n/a"
        comp = f"{r['compile_seconds']:9.1f}" if r["compile"] else f"{'-':>9}"
        print(f"{_training_label(r):30} {r['steps']:5d} {str(r['batch']) + ' x ' + str(r['context']):>12} "
              f"{r['tokens_per_second']:12,.0f} {mfu:>7} {r['final_loss']:7.3f} {comp}")
    result["training_generation"] = g = training_generation(result["training"])
    if g["row"] is None:
        print(f"\ntraining of one paper generation: {g['kind']}")
    else:
        print(f"\ntraining of one paper generation ({g['kind']}): {g['minutes']:.1f} min at "
              f"{g['tokens_per_second']:,.0f} tok/s ({g['row']}; + {g['compile_minutes']:.1f} min compiling); "
              f"slice: {g['slice']}")

    _save(result, args.out)
    result["generation"] = m = measured_generation(result["training"], result["sampling_rows"])
    if "generation_minutes" in m:
        print(f"\none paper generation ({m['kind']}): {m['training_minutes']:.1f} min training ({m['training_row']}) "
              f"+ {m['sampling_minutes']:.1f} min sampling ({m['sampling_row']}; slice: {m['sampling_slice']}) = "
              f"{m['generation_minutes']:.1f} min (goal <= 20; + {m['compile_minutes']:.1f} min compiling once)")
    else:
        print(f"\none paper generation: {m['kind']}")
    if s is not None:
        result["projection"] = p = projection(result["training"], s)
        print(f"{p['kind']}, today's sampler at fixed length: {p['training_minutes']:.1f} min training + "
              f"{p['sampling_minutes']:.1f} min sampling = {p['generation_minutes']:.1f} min")
        print(f"  basis: {p['basis']}")
    result["seconds"] = time.perf_counter() - t_start
    _save(result, args.out)
    print(f"\n{result['seconds']:.0f} s; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
