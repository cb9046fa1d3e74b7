"""Continuous-refill sampling: a fixed set of rows, a new document in each row that frees up.

The batch keeps ``rows`` live documents until the shard is drained: when a document ends
(end-of-text drawn, or max_new_tokens reached) the next document of the shard takes its
row, starting at its own position 0 with its own Philox stream. Every row carries its own
position; the KV cache has one static shape, (layers, rows, heads, max_new_tokens,
head_dim), and each row attends to its own slots 0..pos (GPT-Neo's local layers: the
last ``window`` of them) through a per-row mask, so a slot left by the previous
document is never seen and is overwritten as the new one goes on.

The decode step (``decode_step``) therefore has one shape for the whole shard: it reads
the tokens, positions and uniforms of the rows, writes the cache, computes the logits,
the sampling distribution and the inverse-CDF draw, and records the token, all on the
device. It can be compiled (``torch.compile``) and, on CUDA, captured once as a CUDA
graph and replayed. The host looks at the rows every ``check_every`` steps to collect
finished documents and hand their rows to new ones.

A document's tokens depend only on its own prefix and its own uniforms, so the samples
are those of generate.generate_batch for any number of rows, up to the rounding of the
logits (a masked attention over the static cache sums in another order than the
growing cache): a uniform within that rounding of a boundary between two tokens could
fall on the other side.
"""

from __future__ import annotations

from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import CollapseError
from .distribution import document_uniforms, draw, sampling_probs
from .model import GPTNeo

Tensors = Dict[str, torch.Tensor]


def new_state(model: GPTNeo, rows: int, steps: int, cache_dtype: Optional[torch.dtype] = None) -> Tensors:
    """The static buffers of a refill sampler: every tensor the decode step reads or
    writes, allocated once. The cache is zeroed: a masked slot must hold a finite value
    (0 x -inf would be NaN in the attention's sum)."""
    cfg, p = model.config, model.wte.weight
    if steps > cfg.max_position_embeddings:
        raise CollapseError(f"sampling: {steps} new tokens do not fit the model's "
                            f"{cfg.max_position_embeddings} positions")
    dev = p.device
    shape = (cfg.num_layers, rows, cfg.num_heads, steps, cfg.head_dim)
    return {
        "k": torch.zeros(shape, device=dev, dtype=cache_dtype or p.dtype),
        "v": torch.zeros(shape, device=dev, dtype=cache_dtype or p.dtype),
        "tokens": torch.zeros(rows, dtype=torch.long, device=dev),      # the token fed at `pos`
        "pos": torch.zeros(rows, dtype=torch.long, device=dev),         # its position in its document
        "live": torch.zeros(rows, dtype=torch.bool, device=dev),        # the row's document is still drawing
        "length": torch.zeros(rows, dtype=torch.long, device=dev),      # its new tokens, once it ended
        "uniforms": torch.zeros(rows, steps, dtype=torch.float64, device=dev),
        "out": torch.zeros(rows, steps, dtype=torch.long, device=dev),  # the drawn tokens
    }


def _attention(attn: torch.nn.Module, x: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor,
               rows: torch.Tensor, pos: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """One query per row at its own position: write its key and value into the row's slot
    ``pos``, attend over the row's slots allowed by ``mask`` (rows, 1, 1, slots)."""
    B, C = x.shape
    q, k, v = attn.qkv(x).view(B, 3, attn.num_heads, attn.head_dim).unbind(1)   # (B, H, D) each
    k_cache[rows, :, pos] = k.to(k_cache.dtype)
    v_cache[rows, :, pos] = v.to(v_cache.dtype)
    y = F.scaled_dot_product_attention(q[:, :, None], k_cache, v_cache, attn_mask=mask, scale=1.0)
    return attn.out_proj(y.reshape(B, C))


def decode_step(model: GPTNeo, state: Tensors, *, temperature: float, top_k: int, top_p: float,
                eot_id: int, stop_at_eot: bool) -> None:
    """One token for every row, in place on ``state`` (new_state's buffers), with shapes
    that never change: feed each row's token at its position, draw the next from the
    row's own uniform at that position, record it, and advance the rows still live. A
    row that has ended repeats its last step without recording anything until the host
    gives it a new document."""
    pos, live, steps = state["pos"], state["live"], state["out"].size(1)
    rows = torch.arange(pos.size(0), device=pos.device)
    x = model.wte(state["tokens"]) + model.wpe(pos)
    slot = torch.arange(steps, device=pos.device)
    back = pos[:, None] - slot[None, :]                                  # (rows, slots): distance to the query
    seen = back >= 0
    masks = {"global": seen[:, None, None], "local": (seen & (back < model.config.window_size))[:, None, None]}
    for layer, block in enumerate(model.h):
        x = x + _attention(block.attn, block.ln_1(x), state["k"][layer], state["v"][layer], rows, pos,
                           masks[block.attn.kind])
        x = x + block.mlp(block.ln_2(x))
    logits = F.linear(model.ln_f(x), model.wte.weight)
    u = state["uniforms"].gather(1, pos[:, None]).squeeze(1)
    tok = draw(sampling_probs(logits, temperature, top_k, top_p), u)
    out = state["out"]
    out[rows, pos] = torch.where(live, tok, out[rows, pos])
    ended = live & (pos + 1 >= steps)
    if stop_at_eot:
        ended = ended | (live & (tok == eot_id))
    state["length"].copy_(torch.where(ended, torch.where(tok == eot_id, pos, pos + 1) if stop_at_eot else pos + 1,
                                      state["length"]))
    going = live & ~ended
    state["tokens"].copy_(torch.where(going, tok, state["tokens"]))
    state["pos"].copy_(torch.where(going, pos + 1, pos))
    live.copy_(going)


class RefillSampler:
    """Documents ``indices`` through ``rows`` rows with continuous refill. ``step`` runs
    decode_step (eager, ``compile=True``: torch.compile'd, ``cuda_graph=True``: replayed
    from one CUDA graph captured on the first use)."""

    def __init__(self, model: GPTNeo, rows: int, steps: int, *, start_id: int, eot_id: int,
                 temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0, stop_at_eot: bool = True,
                 check_every: int = 1, cache_dtype: Optional[torch.dtype] = None, compile: bool = False,
                 cuda_graph: bool = False) -> None:
        self.model, self.rows, self.steps = model, rows, steps
        self.start_id, self.eot_id = start_id, eot_id
        self.check_every = max(1, check_every)
        self.state = new_state(model, rows, steps, cache_dtype)
        options = dict(temperature=temperature, top_k=top_k, top_p=top_p, eot_id=eot_id, stop_at_eot=stop_at_eot)
        fn: Callable[..., None] = decode_step
        if compile:
            fn = torch.compile(decode_step, dynamic=False, fullgraph=True)
        self._fn = lambda: fn(model, self.state, **options)
        if cuda_graph and self.state["pos"].device.type != "cuda":
            raise CollapseError("sampling: cuda_graph needs the model on a CUDA device")
        self._graph: Optional["torch.cuda.CUDAGraph"] = None
        self._use_graph = cuda_graph
        self.decode_steps = 0

    def step(self) -> None:
        if self._use_graph:
            if self._graph is None:
                self._capture()
            assert self._graph is not None
            self._graph.replay()
        else:
            self._fn()
        self.decode_steps += 1

    def _capture(self) -> None:
        """Warm up on a side stream (compilation, allocator), then record one step. The
        warm-up steps change the state; it is saved and put back, so they draw nothing."""
        saved = {k: v.clone() for k, v in self.state.items() if k not in ("k", "v")}
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(3):
                self._fn()
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self._fn()
        for k, v in saved.items():
            self.state[k].copy_(v)
        self._graph = graph

    def _start(self, free: List[int], docs: Sequence[Tuple[int, np.ndarray]]) -> None:
        """Documents (ordinal, uniforms) into rows ``free``: position 0, the start token."""
        s = self.state
        at = torch.tensor(free[:len(docs)], dtype=torch.long, device=s["pos"].device)
        u = torch.from_numpy(np.stack([d[1] for d in docs])).to(s["uniforms"].device)
        s["uniforms"].index_copy_(0, at, u)
        s["tokens"].index_fill_(0, at, self.start_id)
        s["pos"].index_fill_(0, at, 0)
        s["live"].index_fill_(0, at, True)

    def run(self, indices: Sequence[int], seed: int) -> Iterator[Tuple[int, np.ndarray]]:
        """(ordinal in ``indices``, new tokens) for each document, as documents end (not
        in order). The stopping end-of-text is not among the tokens."""
        pending = iter(enumerate(indices))
        owner: List[int] = [-1] * self.rows          # ordinal of each row's document, -1: none
        s = self.state
        free = list(range(self.rows))
        while True:
            docs = []
            for _ in range(len(free)):
                nxt = next(pending, None)
                if nxt is None:
                    break
                docs.append((nxt[0], document_uniforms(seed, nxt[1], self.steps)))
            if docs:
                self._start(free, docs)
                for r, (k, _) in zip(free, docs):
                    owner[r] = k
            if all(o < 0 for o in owner):
                return
            for _ in range(self.check_every):
                self.step()
            live = s["live"].cpu().numpy()
            free = [r for r in range(self.rows) if owner[r] >= 0 and not live[r]]
            if free:
                at = torch.tensor(free, dtype=torch.long, device=s["pos"].device)
                out, length = s["out"].index_select(0, at).cpu().numpy(), s["length"].index_select(0, at).cpu()
                for i, r in enumerate(free):
                    yield owner[r], out[i, :int(length[i])].copy()
                    owner[r] = -1
            free = [r for r in range(self.rows) if owner[r] < 0]
