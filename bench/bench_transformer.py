"""Training and generation throughput: collapse.transformer vs transformers' GPTNeoForCausalLM.

Same configuration, same weights (ours saved with save_pretrained, loaded by transformers),
same device, same batch, same number of new tokens, in one run. Generation: pure
ancestral sampling (temperature 1, no top-k, no top-p) from the end-of-text token, a fixed
number of new tokens (no early stop on either side, so both do the same work);
transformers via ``generate(do_sample=True, top_k=0, top_p=1.0)``. Training: forward +
backward + AdamW step on (batch, context) micro-batches. On CUDA both sides run under
bf16 autocast (precision "auto"), the 33M case uses GPU-sized batches and the training MFU is reported.

    PYTHONPATH=python python bench/bench_transformer.py [--quick] [--threads 1] [--out FILE]

Prints a table with the ratios and writes JSON (bench/results/ by default).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time

import torch

import _path  # noqa: E402,F401  (in-place build or installed package)

from collapse.transformer import GPTNeo, GPTNeoConfig  # noqa: E402
from collapse.transformer.generate import SamplingConfig, generate_batch, sequence_uniforms  # noqa: E402
from collapse.transformer.precision import autocast, autocast_dtype, resolve_precision  # noqa: E402


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def best_of(fn, repeats, device):
    times = []
    for _ in range(repeats):
        _sync(device)
        t = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t)
    return min(times)


def _autocast(fn, device, precision):
    def wrapped(x):
        with autocast(device, precision):
            fn(x)
    return wrapped


def bench_generation(ours, hf, batch, new_tokens, repeats, device, eot, precision="auto"):
    cfg = SamplingConfig(max_new_tokens=new_tokens, batch_size=batch, stop_at_eot=False)
    u = sequence_uniforms(0, range(batch), new_tokens)
    precision = resolve_precision(precision, device)

    def run_ours():
        out = generate_batch(ours, eot, u, cfg, cache_dtype=autocast_dtype(precision))
        assert all(len(s) == new_tokens for s in out)

    prompt = torch.full((batch, 1), eot, dtype=torch.long, device=device)
    mask = torch.ones_like(prompt)

    def run_hf():
        out = hf.generate(prompt, attention_mask=mask, do_sample=True, top_k=0, top_p=1.0, temperature=1.0,
                          max_new_tokens=new_tokens, min_new_tokens=new_tokens, pad_token_id=eot)
        assert out.shape == (batch, new_tokens + 1)

    with torch.no_grad(), autocast(device, precision):
        run_ours(), run_hf()  # warm-up
        # interleaved, best of each: the machine's load changes between runs
        t_ours = t_hf = float("inf")
        for _ in range(repeats):
            t_ours = min(t_ours, best_of(run_ours, 1, device))
            t_hf = min(t_hf, best_of(run_hf, 1, device))
    tokens = batch * new_tokens
    return tokens / t_ours, tokens / t_hf


def bench_training(ours, hf, batch, context, steps, device, vocab, precision="auto"):
    """Forward + backward + AdamW steps on both sides under the same autocast; ours through
    its training loss (the chunked head + cross-entropy), HF through ``labels=``."""
    precision = resolve_precision(precision, device)
    g = torch.Generator().manual_seed(0)
    data = torch.randint(0, vocab, (steps + 1, batch, context + 1), generator=g).to(device)
    opt_ours = torch.optim.AdamW(ours.parameters(), lr=5e-4, betas=(0.9, 0.95), weight_decay=0.1)
    opt_hf = torch.optim.AdamW(hf.parameters(), lr=5e-4, betas=(0.9, 0.95), weight_decay=0.1)
    ours.train(), hf.train()

    def step_ours(x):
        loss = ours(x[:, :-1], targets=x[:, 1:], loss_dtype=autocast_dtype(precision)) / x[:, 1:].numel()
        loss.backward()
        opt_ours.step()
        opt_ours.zero_grad(set_to_none=True)

    def step_hf(x):
        loss = hf(input_ids=x, labels=x).loss  # transformers shifts the labels itself
        loss.backward()
        opt_hf.step()
        opt_hf.zero_grad(set_to_none=True)

    step_ours = _autocast(step_ours, device, precision)
    step_hf = _autocast(step_hf, device, precision)
    step_ours(data[0]), step_hf(data[0])  # warm-up
    best = [float("inf"), float("inf")]
    for i in range(steps):  # interleaved, best step of each
        for j, step in enumerate((step_ours, step_hf)):
            _sync(device)
            t = time.perf_counter()
            step(data[i + 1])
            _sync(device)
            best[j] = min(best[j], time.perf_counter() - t)
    out = [batch * context / b for b in best]
    ours.eval(), hf.eval()
    return out[0], out[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (the dev machine is shared)")
    ap.add_argument("--quick", action="store_true", help="a smaller run (CI-sized)")
    ap.add_argument("--skip-33m", action="store_true")
    ap.add_argument("--peak-tflops", type=float, default=989.0,
                    help="accelerator peak for MFU (H100 SXM dense bf16: 989); CUDA only")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                                  "bench_transformer.json"))
    args = ap.parse_args()
    import transformers

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    cases = [
        # (name, config, gen batch, new tokens, train batch, context, train steps)
        ("1m", GPTNeoConfig.tinystories_1m(), 32, 16 if args.quick else 64, 8, 128, 3 if args.quick else 6),
        ("1m-b1", GPTNeoConfig.tinystories_1m(), 1, 16 if args.quick else 64, 8, 128, 0),
    ]
    if not args.skip_33m:
        if device.type == "cuda":  # GPU-sized: the paper's context, a sampling batch worth a GPU
            cases.append(("33m", GPTNeoConfig.tinystories_33m(), 256, 128, 32, 512, 10))
        else:
            cases.append(("33m", GPTNeoConfig.tinystories_33m(), 4, 8 if args.quick else 16, 2, 64, 2))
    rows = []
    for name, cfg, gbatch, new_tokens, tbatch, context, tsteps in cases:
        torch.manual_seed(0)
        ours = GPTNeo(cfg).to(device).eval()
        with tempfile.TemporaryDirectory() as tmp:
            ours.save_pretrained(tmp)
            hf = transformers.GPTNeoForCausalLM.from_pretrained(tmp, attn_implementation="eager").to(device).eval()
        eot = cfg.eos_token_id
        gen_ours, gen_hf = bench_generation(ours, hf, gbatch, new_tokens, 2 if args.quick else 3, device, eot)
        row = {"config": name, "params": ours.num_parameters(), "gen_batch": gbatch, "new_tokens": new_tokens,
               "gen_tok_s_ours": gen_ours, "gen_tok_s_hf": gen_hf, "gen_ratio": gen_ours / gen_hf}
        if tsteps:
            tr_ours, tr_hf = bench_training(ours, hf, tbatch, context, tsteps, device, cfg.vocab_size)
            row.update({"train_batch": tbatch, "context": context, "train_tok_s_ours": tr_ours,
                        "train_tok_s_hf": tr_hf, "train_ratio": tr_ours / tr_hf})
            if device.type == "cuda":
                # 6 flops per weight per token in the matrix products (tied head included), plus
                # attention scores and values: 6 * 2 * layers * context * hidden (causal, counted full)
                matmul_weights = ours.num_parameters() - cfg.max_position_embeddings * cfg.hidden_size
                flops = 6 * matmul_weights + 12 * cfg.num_layers * context * cfg.hidden_size
                row["train_mfu_ours"] = tr_ours * flops / (args.peak_tflops * 1e12)
        rows.append(row)
        del ours, hf

    print(f"device {device} ({platform.processor() or platform.machine()}), torch {torch.__version__}, "
          f"transformers {transformers.__version__}, threads {args.threads}")
    head = f"{'config':7} {'gen batch x new':>15} {'gen tok/s ours':>15} {'gen tok/s HF':>13} {'ratio':>6}   " \
           f"{'train BxT':>9} {'train tok/s ours':>16} {'train tok/s HF':>14} {'ratio':>6}"
    print(head)
    print("-" * len(head))
    for r in rows:
        tr = (f"{r['train_batch']}x{r['context']:<5} {r['train_tok_s_ours']:16,.0f} {r['train_tok_s_hf']:14,.0f} "
              f"{r['train_ratio']:6.2f}") if "train_ratio" in r else f"{'-':>9}"
        print(f"{r['config']:7} {str(r['gen_batch']) + ' x ' + str(r['new_tokens']):>15} "
              f"{r['gen_tok_s_ours']:15,.0f} {r['gen_tok_s_hf']:13,.0f} {r['gen_ratio']:6.2f}   {tr}")
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    for r in rows:
        if "train_mfu_ours" in r:
            print(f"{r['config']}: training MFU (ours) {100 * r['train_mfu_ours']:.1f}% of {args.peak_tflops:g} TFLOP/s")
        if r["config"] == "33m" and device.type == "cuda":
            # one paper generation: 1M stories of ~224 BPE tokens, 3 epochs of training, 1M sampled
            # stories (~224 tokens each; batches stop early once their stories end)
            tokens = 1_000_000 * 224
            r["paper_generation_hours_extrapolated"] = (3 * tokens / r["train_tok_s_ours"]
                                                        + tokens / r["gen_tok_s_ours"]) / 3600
            print(f"33m: one paper generation, extrapolated from these throughputs: "
                  f"{r['paper_generation_hours_extrapolated']:.2f} h (training + sampling, metrics excluded)")
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump({"device": str(device), "threads": args.threads, "torch": torch.__version__,
                   "transformers": transformers.__version__, "quick": args.quick, "rows": rows}, f, indent=2)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
