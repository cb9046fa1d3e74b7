"""The hf family's generation: real-document prompts, and beam search / repetition penalty through ``model.generate``.

Pure sampling (num_beams = 1, repetition_penalty = 1) goes through the shared sampler
(collapse.transformer.generate): document i draws from its own Philox stream, so its
tokens do not depend on the batch it lands in or on the number of ranks.

Beam search (num_beams > 1: deterministic, transformers' beam search with its defaults:
length_penalty 1, no early stopping) and a repetition penalty go through transformers'
``model.generate``: a document is then what ``generate`` gives for its prompt in its batch
(documents of one batch share a prompt length, so nothing is padded). With a repetition
penalty and num_beams = 1 the tokens are drawn by ``generate``'s sampling from torch's
generator seeded by (seed, the batch's first document): reproducible for the same seed
and sample_batch_size, but a document then depends on its batch.

Prompts (prompt = "real-prefix"): document i continues the first ``prefix_tokens``
tokens of real document j(i), j drawn uniformly from R by uniform i of the stream
derive_seed(seed, PROMPT_TAG) (the same for every rank, shard and batch size).
"""

from __future__ import annotations

from typing import Callable, List, Optional, Sequence

import numpy as np
import torch

from .. import _core
from ..transformer.backend import HFCausalLM
from ..transformer.generate import SamplingConfig
from ..transformer.precision import autocast, resolve_precision

PROMPT_TAG = 0x50524F4D5054  # "PROMPT": the purpose tag for derive_seed
BEAM_TAG = 0x4245414D        # "BEAM": the seed of generate()'s sampling for a batch


def prompt_documents(seed: int, indices: Sequence[int], num_real: int) -> np.ndarray:
    """The real document each generated document ``indices[k]`` is prompted with."""
    key = _core.derive_seed(int(seed) & 0xFFFFFFFFFFFFFFFF, PROMPT_TAG)
    u = np.fromiter((_core.philox_uniform(key, int(i), 1)[0] for i in indices), dtype=np.float64,
                    count=len(indices))
    return np.minimum((u * num_real).astype(np.int64), num_real - 1)


def generation_config(cfg: SamplingConfig, eot_id: int, num_beams: int, repetition_penalty: float) -> "object":
    """The transformers GenerationConfig of the hf family's decoding settings (given in
    full, so a folder's generation_config.json changes nothing)."""
    from transformers import GenerationConfig

    sample = num_beams == 1
    return GenerationConfig(max_new_tokens=cfg.max_new_tokens, do_sample=sample, num_beams=num_beams,
                            repetition_penalty=float(repetition_penalty),
                            temperature=cfg.temperature if sample else 1.0, top_k=cfg.top_k if sample else 0,
                            top_p=cfg.top_p if sample else 1.0, eos_token_id=eot_id, pad_token_id=eot_id,
                            bos_token_id=eot_id)


@torch.no_grad()
def generate_with_transformers(lm: HFCausalLM, indices: List[int], seed: int, start_id: int, cfg: SamplingConfig,
                               num_beams: int, repetition_penalty: float,
                               prefixes: Optional[Callable[[int], np.ndarray]] = None,
                               precision: str = "auto") -> List[np.ndarray]:
    """The new tokens of documents ``indices`` (the stopping end-of-text excluded) by
    ``model.generate``, cfg.batch_size documents a batch, each batch split by prompt
    length (start_id + the document's prefix)."""
    model = lm.module
    was_training = model.training
    model.eval()
    device = lm.device
    gen = generation_config(cfg, start_id, num_beams, repetition_penalty)
    out: List[np.ndarray] = []
    try:
        with autocast(device, resolve_precision(precision, device)):
            for s in range(0, len(indices), cfg.batch_size):
                chunk = indices[s:s + cfg.batch_size]
                prompts = [np.concatenate([[start_id], np.asarray(prefixes(i) if prefixes else [], dtype=np.int64)])
                           for i in chunk]
                done: List[Optional[np.ndarray]] = [None] * len(chunk)
                for size in sorted({p.size for p in prompts}):
                    rows = [r for r, p in enumerate(prompts) if p.size == size]
                    ids = torch.from_numpy(np.stack([prompts[r] for r in rows])).to(device)
                    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
                        torch.manual_seed(_core.derive_seed(_core.derive_seed(int(seed) & 0xFFFFFFFFFFFFFFFF, BEAM_TAG),
                                                            chunk[rows[0]]) & 0x7FFFFFFFFFFFFFFF)
                        seqs = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                                              generation_config=gen)
                    new = seqs[:, size:].cpu().numpy()
                    for r, row in zip(rows, new):
                        stop = np.flatnonzero(row == start_id)
                        done[r] = row[:stop[0] if stop.size else row.size].astype(np.int64)
                out.extend(d for d in done if d is not None)
    finally:
        model.train(was_training)
    return out
