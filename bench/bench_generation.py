"""Sampling schedules at the paper's settings: batch after batch, continuous refill, the compiled step, HF.

For each configuration (the paper's 33M preset, a custom tiny one) the same documents
(same seed, same indices) are sampled by: today's sampler batch after batch
(``SamplingConfig(refill=False)``), continuous refill (eager), continuous refill with the
torch.compile'd decode step, and transformers' ``generate`` on the same weights (one
batch, stopping when its rows have all drawn end-of-text). Reported: documents/s, decode
steps per 1,000 documents (what bounds sampling on a GPU, where a step costs about the
same at any batch size), and tokens computed per token kept (rows x steps over the
documents' draws: the padding waste). Compilation time is excluded and reported apart.

Realistic lengths without a trained model: the weights are random, but the end-of-text
logit gets a bias (a hidden dimension held constant by the final LayerNorm, read only by
end-of-text's embedding) so that a document stops with probability about 1/225 at each
step: geometric lengths of mean ~224 BPE tokens (TinyStories' mean), cut at the paper's
600. Real stories are less spread than geometric ones (few are 3x the mean), so the
refill advantage measured here is, if anything, smaller than with a trained model.

The GPU figure is a PROJECTION: decode steps per 1,000 documents at the GPU batch
(``--gpu-batch``, 512 = the paper's; a shard of 16 x that many documents, sampled by the
real sampler on a narrow model: the steps depend only on the lengths)
times a per-step time (``--gpu-step-ms``; default 3.5 ms = batch 256 / 73,011 tok/s, the
eager sampler measured on an H200 in bf16), for 1,000,000 stories.

    PYTHONPATH=python python bench/bench_generation.py [--quick] [--threads 1] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import tempfile
import time

import torch

import _path  # noqa: E402,F401  (in-place build or installed package)

from collapse.transformer import GPTNeo, GPTNeoConfig  # noqa: E402
from collapse.transformer.generate import SamplingConfig, generate, refill_sampler  # noqa: E402

EOT = 0
MEAN_LENGTH = 224
PAPER_NEW_TOKENS = 600


def biased_model(config: GPTNeoConfig, seed: int) -> GPTNeo:
    """Random weights whose end-of-text has probability ~1/(MEAN_LENGTH+1) at every step."""
    torch.manual_seed(seed)
    model = GPTNeo(config).eval()
    with torch.no_grad():
        model.ln_f.weight[0], model.ln_f.bias[0] = 0.0, 1.0   # hidden dim 0 is the constant 1
        model.wte.weight[:, 0] = 0.0
        x = torch.full((1, 1), EOT, dtype=torch.long)
        logits = model(x)[0, -1]
        others = torch.logsumexp(torch.cat([logits[:EOT], logits[EOT + 1:]]), 0)
        model.wte.weight[EOT, 0] = float(others - math.log(MEAN_LENGTH) - logits[EOT])
    return model


def old_steps(lengths, batch, cap):
    """Decode steps of batch after batch: each batch runs until its longest document's stop."""
    return sum(min(cap, max(lengths[s:s + batch]) + 1) for s in range(0, len(lengths), batch))


def run_ours(model, n, cfg):
    t = time.perf_counter()
    seqs = generate(model, n, 1, EOT, cfg)
    return seqs, time.perf_counter() - t


def run_refill(model, n, cfg, rows):
    """Refill through its sampler, to count its decode steps."""
    sampler = refill_sampler(model, cfg, rows, EOT)
    t = time.perf_counter()
    with torch.no_grad():
        docs = dict(sampler.run(range(n), seed=1))
    return [docs[k] for k in range(n)], time.perf_counter() - t, sampler.decode_steps


def run_hf(model, n, batch, cap):
    import transformers

    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)
        hf = transformers.GPTNeoForCausalLM.from_pretrained(tmp, attn_implementation="eager").eval()
    prompt = torch.full((batch, 1), EOT, dtype=torch.long)
    t = time.perf_counter()
    with torch.no_grad():
        out = hf.generate(prompt, attention_mask=torch.ones_like(prompt), do_sample=True, top_k=0, top_p=1.0,
                          max_new_tokens=cap, eos_token_id=EOT, pad_token_id=EOT)
    return batch / (time.perf_counter() - t), out.shape[1] - 1


def _same(a, b):
    return f"{sum(x.tolist() == y.tolist() for x, y in zip(a, b))}/{len(b)}"


def bench_config(name, config, n, batch, cap, hf_batch, compile_step=True):
    model = biased_model(config, seed=0)
    rows = {}
    old_cfg = SamplingConfig(max_new_tokens=cap, batch_size=batch, refill=False)
    old, t_old = run_ours(model, n, old_cfg)
    lengths = [len(s) for s in old]
    draws = sum(min(cap, k + 1) for k in lengths)                # what the documents need
    steps_old = old_steps(lengths, batch, cap)
    rows["batch after batch"] = dict(seconds=t_old, steps=steps_old)
    cfg = SamplingConfig(max_new_tokens=cap, batch_size=batch, refill=True)
    new, t_new, steps_new = run_refill(model, n, cfg, batch)
    # equal up to a draw within float rounding of a token boundary (docs/transformer.md)
    rows["refill"] = dict(seconds=t_new, steps=steps_new, identical_documents=_same(new, old))
    compile_seconds = None
    if compile_step:
        ccfg = SamplingConfig(max_new_tokens=cap, batch_size=batch, compile=True)
        t = time.perf_counter()
        run_refill(model, min(n, batch), ccfg, batch)              # compiles (same shapes)
        compile_seconds = time.perf_counter() - t
        comp, t_comp, steps_comp = run_refill(model, n, ccfg, batch)
        rows["refill, compiled step"] = dict(seconds=t_comp, steps=steps_comp)
        rows["refill, compiled step"]["identical_documents"] = _same(comp, old)
    hf_docs_per_s, hf_steps = run_hf(model, n, hf_batch, cap)
    for r in rows.values():
        r["documents_per_second"] = n / r["seconds"]
        r["steps_per_1000_documents"] = 1000 * r["steps"] / n
        r["computed_per_kept"] = r["steps"] * batch / draws
    rows["transformers generate"] = dict(documents_per_second=hf_docs_per_s,
                                         steps_per_1000_documents=1000 * hf_steps / hf_batch,
                                         note=f"one batch of {hf_batch}, until all rows stop")
    return dict(config=name, documents=n, batch=batch, max_new_tokens=cap, mean_length=sum(lengths) / n,
                capped=sum(k >= cap for k in lengths), compile_seconds=compile_seconds, samplers=rows)


def time_refill(model, rows, documents, *, compile=True, cuda_graph=True, precision="bf16", seed=1,
                max_new_tokens=PAPER_NEW_TOKENS, refill=True):
    """For bench/gpu_check.py: time ``generate`` (continuous refill) on ``model``'s device,
    ``documents`` documents (take 16 x rows: one family shard, its drain included) through
    ``rows`` rows. A first call of ``rows`` documents compiles the step and captures the
    graph at this shape and is not timed. With biased_model's weights the lengths are
    TinyStories-like. Returns documents/s, decode steps, ms per step, the minutes 1M
    stories would take at this rate, and the peak GPU memory. ``refill=False``: today's
    batch-after-batch sampler at the same rows (no compile, no graph)."""
    device = model.wte.weight.device
    cuda = device.type == "cuda"
    cfg = SamplingConfig(max_new_tokens=max_new_tokens, batch_size=rows, refill=refill, compile=compile and refill,
                         cuda_graph=cuda_graph and cuda and refill)
    generate(model, rows, 0, EOT, cfg, precision=precision)
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    stats = {}
    t = time.perf_counter()
    seqs = generate(model, documents, seed, EOT, cfg, precision=precision, stats=stats)
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t
    return {"rows": rows, "documents": documents, "seconds": seconds, "documents_per_second": documents / seconds,
            "decode_steps": stats.get("decode_steps"),
            "ms_per_step": 1e3 * seconds / stats["decode_steps"] if stats.get("decode_steps") else None,
            "steps_per_1000_documents": 1e3 * stats["decode_steps"] / documents if stats.get("decode_steps") else None,
            "mean_length": sum(len(q) for q in seqs) / documents,
            "projected_minutes_1M": 1e6 / (documents / seconds) / 60,
            "peak_memory_gb": torch.cuda.max_memory_allocated() / 2 ** 30 if cuda else None,
            "refill": refill, "compile": cfg.compile, "cuda_graph": cfg.cuda_graph, "precision": precision}


def gpu_projection(gpu_batch, step_ms, n_docs, seed=0):
    """Steps per 1,000 documents at the GPU batch for both schedules (tiny model: the steps
    depend only on the lengths), and minutes for 1M stories at ``step_ms`` per step."""
    model = biased_model(GPTNeoConfig(vocab_size=512, max_position_embeddings=PAPER_NEW_TOKENS + 1, hidden_size=16,
                                      num_layers=2, num_heads=2, window_size=256), seed)
    cfg = SamplingConfig(max_new_tokens=PAPER_NEW_TOKENS, batch_size=gpu_batch, check_every=8, refill=True)
    docs, _, steps_new = run_refill(model, n_docs, cfg, gpu_batch)
    lengths = [len(s) for s in docs]
    steps_old = old_steps(lengths, gpu_batch, PAPER_NEW_TOKENS)
    out = {"batch": gpu_batch, "documents": n_docs, "step_ms_assumed": step_ms, "check_every": 8}
    for name, steps in (("batch after batch", steps_old), ("refill", steps_new)):
        per_1000 = 1000 * steps / n_docs
        out[name] = {"steps_per_1000_documents": per_1000, "projected_minutes_1M": per_1000 * 1000 * step_ms / 6e4}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer documents (a smoke run)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--gpu-batch", type=int, default=512, help="rows on the GPU (the paper's sampling batch: 512)")
    ap.add_argument("--gpu-step-ms", type=float, default=3.5)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                                  "bench_generation.json"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    q = args.quick
    tiny = GPTNeoConfig(vocab_size=512, max_position_embeddings=PAPER_NEW_TOKENS + 1, hidden_size=64, num_layers=2,
                        bos_token_id=EOT, eos_token_id=EOT,
                        num_heads=4, window_size=256)
    results = [bench_config("tiny (custom)", tiny, 64 if q else 512, 32 if q else 64, PAPER_NEW_TOKENS,
                            hf_batch=16 if q else 32)]
    results.append(bench_config("33m (paper preset)", GPTNeoConfig.tinystories_33m(), 8 if q else 12,
                                4, 60 if q else PAPER_NEW_TOKENS, hf_batch=4, compile_step=not q))
    # a shard of 16 x the rows, as the family's 16,384 documents at 1,024 rows
    proj = gpu_projection(64 if q else args.gpu_batch, args.gpu_step_ms, 16 * (64 if q else args.gpu_batch))
    print(f"device cpu ({platform.machine()}), torch {torch.__version__}, threads {args.threads}")
    head = (f"{'config':20s} {'sampler':24s} {'docs/s':>8s} {'ratio':>6s} {'steps/1k docs':>14s} {'ratio':>6s} "
            f"{'computed/kept':>13s} {'same docs':>10s}")
    print(head + "\n" + "-" * len(head))
    for r in results:
        base = r["samplers"]["batch after batch"]
        for name, s in r["samplers"].items():
            kept = f"{s['computed_per_kept']:.2f}" if "computed_per_kept" in s else "-"
            print(f"{r['config']:20s} {name:24s} {s['documents_per_second']:8.2f} "
                  f"{s['documents_per_second'] / base['documents_per_second']:6.2f} "
                  f"{s['steps_per_1000_documents']:14.0f} "
                  f"{s['steps_per_1000_documents'] / base['steps_per_1000_documents']:6.2f} {kept:>13s} "
                  f"{s.get('identical_documents', '-'):>10s}")
        print(f"{'':20s} {r['documents']} documents, batch {r['batch']}, max_new_tokens {r['max_new_tokens']}, "
              f"mean length {r['mean_length']:.0f}, {r['capped']} capped, compile {r['compile_seconds'] or 0:.0f} s")
    print(f"\nPROJECTION (not a measurement), 1M stories at batch {proj['batch']}, "
          f"{proj['step_ms_assumed']} ms per decode step:")
    for name in ("batch after batch", "refill"):
        p = proj[name]
        print(f"  {name:20s} {p['steps_per_1000_documents']:8.0f} steps/1k docs  "
              f"{p['projected_minutes_1M']:6.1f} min")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"torch": torch.__version__, "threads": args.threads, "configs": results, "gpu_projection": proj},
                  f, indent=2)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
