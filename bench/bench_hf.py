"""Training and generation throughput of the hf family against transformers' own plain loop and generate.

Same tiny random models (collapse.hf.tiny.make_tiny: gpt2, llama, gpt_neox, opt), same
weights, same device, same batch, in one run. Training: the family's training loop
(train.train_lm through the HFCausalLM backend: AdamW with the paper's parameter groups,
gradient clipping, per-step dropout seeds) against a plain transformers loop (forward with
labels, backward, clip, AdamW step) on the same (batch, context) rows, target tokens per
second. Generation: the shared per-document-stream sampler (pure sampling, DynamicCache,
finished rows dropped) against ``model.generate(do_sample=True, top_k=0, top_p=1)``, a fixed
number of new tokens on both sides (no stop at end-of-text), new tokens per second.

    PYTHONPATH=python python bench/bench_hf.py [--quick] [--threads 1] [--out FILE]

Prints a table and writes JSON (bench/results/bench_hf.json by default).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time

import numpy as np
import torch

import _path  # noqa: E402,F401  (in-place build or installed package)

from collapse.hf.model import load_model  # noqa: E402
from collapse.hf.tiny import grammar_tokenizer, make_tiny  # noqa: E402
from collapse.transformer.generate import SamplingConfig, generate  # noqa: E402
from collapse.transformer.train import TrainConfig, train_lm  # noqa: E402

TYPES = ("gpt2", "llama", "gpt_neox", "opt")


def train_ours(path, rows, eot, steps, batch, context):
    cfg = TrainConfig(epochs=1, batch_size=batch, micro_batch_size=batch, context_length=context, lr=1e-3,
                      device="cpu", precision="fp32")
    _, stats = train_lm(lambda: load_model(path), rows[:steps * batch], eot, cfg, seed=0)
    return stats.tokens / stats.seconds


def train_reference(path, rows, steps, batch):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True).float().train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95), weight_decay=0.1)
    data = torch.from_numpy(np.ascontiguousarray(rows[:steps * batch]).astype(np.int64))
    t0 = time.perf_counter()
    tokens = 0
    for s in range(steps):
        x = data[s * batch:(s + 1) * batch]
        loss = model(input_ids=x, labels=x).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        tokens += x.numel() - x.size(0)
    return tokens / (time.perf_counter() - t0)


def generate_ours(path, eot, docs, new_tokens, batch):
    lm = load_model(path)
    cfg = SamplingConfig(max_new_tokens=new_tokens, batch_size=batch, stop_at_eot=False)
    t0 = time.perf_counter()
    out = generate(lm, docs, seed=0, start_id=eot, cfg=cfg, precision="fp32")
    return sum(o.size for o in out) / (time.perf_counter() - t0)


def generate_reference(path, eot, docs, new_tokens, batch):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True).float().eval()
    torch.manual_seed(0)
    t0 = time.perf_counter()
    made = 0
    with torch.no_grad():
        for s in range(0, docs, batch):
            n = min(batch, docs - s)
            ids = torch.full((n, 1), eot, dtype=torch.long)
            out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=True, top_k=0,
                                 top_p=1.0, max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                                 pad_token_id=eot, eos_token_id=eot)
            made += (out.size(1) - 1) * n
    return made / (time.perf_counter() - t0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (the dev machine is shared)")
    ap.add_argument("--quick", action="store_true", help="a smaller run")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                                  "bench_hf.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    hidden, context, batch = (32, 64, 8) if args.quick else (64, 128, 16)
    steps, docs, new_tokens = (5, 16, 32) if args.quick else (20, 64, 96)
    tok = grammar_tokenizer(vocab_size=500, documents=1000)
    rng = np.random.default_rng(0)
    rows = rng.integers(0, tok.vocab_size, size=(steps * batch, context + 1), dtype=np.int32)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for t in TYPES:
            path = make_tiny(os.path.join(tmp, t), t, hidden_size=hidden, layers=2, heads=4, positions=256,
                             tokenizer=tok)
            r = {"model_type": t, "parameters": load_model(path).num_parameters(),
                 "train_ours": train_ours(path, rows, tok.eot_id, steps, batch, context),
                 "train_transformers": train_reference(path, rows, steps, batch),
                 "generate_ours": generate_ours(path, tok.eot_id, docs, new_tokens, batch),
                 "generate_transformers": generate_reference(path, tok.eot_id, docs, new_tokens, batch)}
            results.append(r)
    header = (f"{'model':<10} {'params':>8} {'train ours':>11} {'train HF':>10} {'ratio':>6} "
              f"{'gen ours':>9} {'gen HF':>9} {'ratio':>6}")
    print(f"CPU, {args.threads} thread(s); training: batch {batch} x context {context}, {steps} steps "
          f"(target tokens/s); generation: {docs} documents x {new_tokens} new tokens, batch {batch} (tokens/s)")
    print(header)
    for r in results:
        print(f"{r['model_type']:<10} {r['parameters']:>8,} {r['train_ours']:>11,.0f} {r['train_transformers']:>10,.0f} "
              f"{r['train_ours'] / r['train_transformers']:>6.2f} {r['generate_ours']:>9,.0f} "
              f"{r['generate_transformers']:>9,.0f} {r['generate_ours'] / r['generate_transformers']:>6.2f}")
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump({"threads": args.threads, "torch": torch.__version__, "machine": platform.machine(),
                   "quick": args.quick, "hidden_size": hidden, "context": context, "batch": batch, "steps": steps,
                   "documents": docs, "new_tokens": new_tokens, "results": results}, f, indent=2)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
