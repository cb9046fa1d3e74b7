"""Continuous-refill sampling: a fixed set of rows, a new document in each row that frees up.

The batch keeps ``rows`` live documents until the shard is drained: when a document ends
(end-of-text drawn, or max_new_tokens reached) the next document of the shard takes its
row, starting at its own position 0 with its own Philox stream. Every row carries its own
position; the KV cache has one static shape per layer, (rows, heads, slots, head_dim):
max_new_tokens slots for a global layer, a ring of ``window`` slots for a local one (it
sees only the last ``window`` positions). Each row attends to its own slots holding
positions 0..pos through a per-row mask, so a slot left by the previous document is
never seen and is overwritten as the new one goes on.

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


def local_slots(model: GPTNeo, steps: int) -> int:
    """Slots of a local layer's cache: a ring of ``window`` slots (position p in slot
    p mod window) when the window is shorter than the documents, else one slot a position."""
    return min(model.config.window_size, steps)


def new_state(model: GPTNeo, rows: int, steps: int, cache_dtype: Optional[torch.dtype] = None) -> Tensors:
    """The static buffers of a refill sampler: every tensor the decode step reads or
    writes, allocated once. Global layers keep every position (``steps`` slots), local
    layers a ring of ``window`` slots (all they can see). The cache is zeroed: a masked
    slot must hold a finite value (0 x -inf would be NaN in the attention's sum)."""
    cfg, p = model.config, model.wte.weight
    if steps > cfg.max_position_embeddings:
        raise CollapseError(f"sampling: {steps} new tokens do not fit the model's "
                            f"{cfg.max_position_embeddings} positions")
    dev, dtype = p.device, cache_dtype or p.dtype
    state = {
        "tokens": torch.zeros(rows, dtype=torch.long, device=dev),      # the token fed at `pos`
        "pos": torch.zeros(rows, dtype=torch.long, device=dev),         # its position in its document
        "live": torch.zeros(rows, dtype=torch.bool, device=dev),        # the row's document is still drawing
        "length": torch.zeros(rows, dtype=torch.long, device=dev),      # its new tokens, once it ended
        "uniforms": torch.zeros(rows, steps, dtype=torch.float64, device=dev),
        "out": torch.zeros(rows, steps, dtype=torch.long, device=dev),  # the drawn tokens
    }
    for layer, kind in enumerate(cfg.attention_layers):
        slots = local_slots(model, steps) if kind == "local" else steps
        for name in ("k", "v"):
            state[f"{name}{layer}"] = torch.zeros(rows, cfg.num_heads, slots, cfg.head_dim, device=dev, dtype=dtype)
    return state


def cache_bytes(model: GPTNeo, rows: int, steps: int, bytes_per_value: int = 2) -> int:
    """Bytes of new_state's KV cache (2: bf16 / fp16, 4: float32)."""
    cfg = model.config
    slots = sum(local_slots(model, steps) if k == "local" else steps for k in cfg.attention_layers)
    return 2 * rows * slots * cfg.hidden_size * bytes_per_value


def _attention(attn: torch.nn.Module, x: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor,
               slot: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """One query per row at its own position: write its key and value into the row's slot
    ``slot``, attend over the row's slots allowed by ``mask`` (rows, 1, 1, slots)."""
    B, C = x.shape
    H, S, D = k_cache.shape[1:]
    q, k, v = attn.qkv(x).view(B, 3, H, D).unbind(1)                    # (B, H, D) each
    # flat row (b, h, slot_b) of the (B * H * S, D) view: one index_copy_, no scatter of views
    at = ((torch.arange(B, device=x.device) * H)[:, None] + torch.arange(H, device=x.device)) * S + slot[:, None]
    k_cache.view(B * H * S, D).index_copy_(0, at.reshape(-1), k.reshape(B * H, D).to(k_cache.dtype))
    v_cache.view(B * H * S, D).index_copy_(0, at.reshape(-1), v.reshape(B * H, D).to(v_cache.dtype))
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
    ring = local_slots(model, steps)
    # a global layer's slot j holds position j; a local layer's ring slot j holds the
    # latest position p <= pos with p mod ring = j, which is in the window once written
    masks = {"global": (torch.arange(steps, device=pos.device)[None, :] <= pos[:, None])[:, None, None],
             "local": (torch.arange(ring, device=pos.device)[None, :] <= pos[:, None])[:, None, None]}
    slots = {"global": pos, "local": pos % ring}
    for layer, block in enumerate(model.h):
        kind = block.attn.kind
        x = x + _attention(block.attn, block.ln_1(x), state[f"k{layer}"], state[f"v{layer}"], slots[kind],
                           masks[kind])
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
        """Warm up on a side stream (compilation, allocator, autocast's cast weights), then
        record one step. The warm-up steps change the state; it is saved and put back, so
        they draw nothing. The cache is not saved (it is the big tensor): this runs at the
        first step, every row at position 0, so the slots the warm-up wrote (positions
        1..3, ring slots included) are written again before any step reads them."""
        if bool((self.state["pos"] != 0).any()):
            raise CollapseError("sampling: the CUDA graph must be captured at the first step (every row at 0)")
        saved = {k: v.clone() for k, v in self.state.items() if k[0] not in "kv"}
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
        owner = np.full(self.rows, -1, dtype=np.int64)   # ordinal of each row's document, -1: none
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
                owner[free[:len(docs)]] = [k for k, _ in docs]
            if (owner < 0).all():
                return
            for _ in range(self.check_every):
                self.step()
            ended = np.flatnonzero((owner >= 0) & ~s["live"].cpu().numpy())
            if ended.size:
                at = torch.from_numpy(ended).to(s["pos"].device)
                out, length = s["out"].index_select(0, at).cpu().numpy(), s["length"].index_select(0, at).cpu().numpy()
                for i, r in enumerate(ended):
                    yield int(owner[r]), out[i, :length[i]].copy()
                owner[ended] = -1
            free = np.flatnonzero(owner < 0).tolist()
