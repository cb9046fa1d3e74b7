"""Cross-entropy of the tied output head, a chunk of tokens at a time.

The plain way, ``F.cross_entropy(model(x).float(), y)``, holds the logits of the whole
micro-batch, a float32 copy of them and the softmax saved for backward: for the 33M model
(vocabulary 50,257) and 64 x 512 tokens that is 3.3 GB of bf16 logits plus 2 x 6.6 GB of
float32. Here the head (hidden states x embedding^T) and the loss are computed for
``chunk`` tokens at a time (about 2^25 logits, 128 MB of float32), and, when gradients are
wanted, the gradients with respect to the hidden states and the embedding are computed in
the same pass (softmax minus one-hot, times the chunk's operands) and kept, so backward
does not recompute anything: the same matrix products as the plain way, and only one
chunk's logits in memory at once.

The matrix products run in ``compute_dtype`` (the autocast dtype: bf16 / fp16, or None for
the weight's float32), the log-softmax in float32, as autocast does for the plain way.
Gradients are those of the summed loss (entries of softmax - one-hot are in [-1, 1], so
they are safe in fp16); the caller's scale (1 / tokens, the GradScaler's factor) is applied
in backward.

``fused=True`` (training with ``compile = true``) does a chunk's elementwise work (float32
log-sum-exp, the picked logit, softmax minus one-hot, the cast back) in one kernel that
torch.compile generates: the eager way makes about ten passes over the chunk's float32
logits, the fused one reads the matrix product's output twice and writes the gradient
once. The matrix products stay cuBLAS's (or the CPU's). The two ways agree within
float32 rounding (tests/test_train_compile.py).
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Optional, Tuple

import torch

IGNORE = -100
CHUNK_ELEMENTS = 1 << 25  # logits per chunk
# the fused way keeps no float32 copy of a chunk (its logits and gradient in the matrix
# products' dtype: 1 GB for 2^28 bf16 logits), so its chunks are larger: fewer passes
# adding a chunk's embedding gradient into the float32 total (each reads and writes it)
FUSED_CHUNK_ELEMENTS = 1 << 28


def _chunk_rows(vocab: int, chunk: Optional[int], fused: bool = False) -> int:
    per_chunk = FUSED_CHUNK_ELEMENTS if fused else CHUNK_ELEMENTS
    return max(1, int(chunk) if chunk else per_chunk // max(1, vocab))


def _chunk_logits(h: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return (h.to(w.dtype) @ w.t()).float()


def _chunk_nll(logits: torch.Tensor, targets: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-token NLL (0 where ignored), the log-sum-exp and the clamped targets."""
    lse = torch.logsumexp(logits, dim=-1)
    valid = targets != IGNORE
    tgt = targets.clamp(min=0)
    picked = logits.gather(1, tgt[:, None]).squeeze(1)
    return torch.where(valid, lse - picked, torch.zeros_like(lse)), lse, tgt


def _fused_chunk_step(logits: torch.Tensor, targets: torch.Tensor,
                      grad_dtype: torch.dtype) -> Tuple[torch.Tensor, torch.Tensor]:
    """The chunk's summed NLL and d(sum NLL)/d logits in ``grad_dtype``, written for
    torch.compile to fuse (no in-place steps, the one-hot as a comparison)."""
    x = logits.float()
    lse = torch.logsumexp(x, dim=-1, keepdim=True)
    valid = (targets != IGNORE)[:, None]
    tgt = targets.clamp(min=0)[:, None]
    picked = x.gather(1, tgt)
    nll = torch.where(valid, lse - picked, torch.zeros_like(lse)).sum()
    one_hot = torch.arange(x.size(1), device=x.device)[None, :] == tgt
    g = torch.where(valid, torch.exp(x - lse) - one_hot.to(x.dtype), torch.zeros_like(x))
    return nll, g.to(grad_dtype)


@functools.lru_cache(maxsize=None)
def compiled_chunk_step() -> Callable[..., Tuple[torch.Tensor, torch.Tensor]]:
    """_fused_chunk_step through torch.compile, built once per process (the first chunk
    shape compiles a static kernel, a second one a kernel for any number of rows)."""
    return torch.compile(_fused_chunk_step)


class _LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, h: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor,  # type: ignore[override]
                compute_dtype: Optional[torch.dtype], chunk: int, fused: bool) -> torch.Tensor:
        with torch.autocast(h.device.type, enabled=False):
            w = weight.to(compute_dtype) if compute_dtype is not None else weight
            total = torch.zeros((), dtype=torch.float32, device=h.device)
            grad_h = torch.empty(h.shape, dtype=torch.float32, device=h.device) if ctx.needs_input_grad[0] else None
            grad_w = torch.zeros(weight.shape, dtype=torch.float32, device=h.device) if ctx.needs_input_grad[1] else None
            rows = torch.arange(min(chunk, h.size(0)), device=h.device)
            fused_step = compiled_chunk_step() if fused and (grad_h is not None or grad_w is not None) else None
            for s in range(0, h.size(0), chunk):
                hc, tc = h[s:s + chunk], targets[s:s + chunk]
                if fused_step is not None:
                    nll_sum, g = fused_step(hc.to(w.dtype) @ w.t(), tc, w.dtype)
                    total += nll_sum
                    _add_chunk_grads(grad_h, grad_w, g, hc, w, s, chunk)
                    continue
                logits = _chunk_logits(hc, w)
                nll, lse, tgt = _chunk_nll(logits, tc)
                total += nll.sum()
                if grad_h is None and grad_w is None:
                    continue
                # d(sum nll)/d logits = softmax - one-hot, zero on ignored positions
                g = torch.exp_(logits.sub_(lse[:, None]))
                g[rows[:hc.size(0)], tgt] -= 1.0
                g.mul_((tc != IGNORE).to(g.dtype)[:, None])
                _add_chunk_grads(grad_h, grad_w, g.to(w.dtype), hc, w, s, chunk)
        ctx.save_for_backward(grad_h if grad_h is not None else torch.empty(0),
                              grad_w if grad_w is not None else torch.empty(0))
        ctx.has = (grad_h is not None, grad_w is not None)
        ctx.dtypes = (h.dtype, weight.dtype)
        return total

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> Tuple[Optional[torch.Tensor], ...]:  # type: ignore[override]
        grad_h, grad_w = ctx.saved_tensors
        gh = (grad_h * grad_out).to(ctx.dtypes[0]) if ctx.has[0] else None
        gw = (grad_w * grad_out).to(ctx.dtypes[1]) if ctx.has[1] else None
        return gh, gw, None, None, None, None


def _add_chunk_grads(grad_h: Optional[torch.Tensor], grad_w: Optional[torch.Tensor], g: torch.Tensor,
                     hc: torch.Tensor, w: torch.Tensor, s: int, chunk: int) -> None:
    """The chunk's share of the gradients: g @ W into grad_h's rows, g^T @ h into grad_w."""
    if grad_h is not None:
        grad_h[s:s + chunk] = (g @ w).float()
    if grad_w is not None:
        grad_w += (g.t() @ hc.to(w.dtype)).float()


def linear_cross_entropy(h: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor,
                         compute_dtype: Optional[torch.dtype] = None, chunk: Optional[int] = None,
                         fused: bool = False) -> torch.Tensor:
    """Summed NLL (nats, float32 scalar) of ``targets`` under logits h @ weight^T.

    h: (..., hidden); targets: (...) ids, IGNORE (-100) for positions not scored.
    ``fused``: the chunk's elementwise work through torch.compile (module docstring)."""
    h2 = h.reshape(-1, h.size(-1))
    t2 = targets.reshape(-1).to(h.device)
    return _LinearCrossEntropy.apply(h2, weight, t2, compute_dtype, _chunk_rows(weight.size(0), chunk, fused), fused)


@torch.no_grad()
def token_nll(h: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor,
              compute_dtype: Optional[torch.dtype] = None, chunk: Optional[int] = None) -> torch.Tensor:
    """Per-token NLL (float32, shaped like targets; 0 where ignored), chunk by chunk."""
    h2 = h.reshape(-1, h.size(-1))
    t2 = targets.reshape(-1).to(h.device)
    n = _chunk_rows(weight.size(0), chunk)
    out = torch.empty(t2.shape, dtype=torch.float32, device=h.device)
    with torch.autocast(h.device.type, enabled=False):
        w = weight.to(compute_dtype) if compute_dtype is not None else weight
        for s in range(0, h2.size(0), n):
            out[s:s + n] = _chunk_nll(_chunk_logits(h2[s:s + n], w), t2[s:s + n])[0]
    return out.view(targets.shape)
