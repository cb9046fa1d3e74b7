"""Mixed precision (CPU autocast: bf16 and fp16) against transformers' GPT-Neo under the
same autocast, the chunked cross-entropy against the plain one, and fp16 training with
loss scaling."""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the transformer family needs torch (collapse[torch])")
transformers = pytest.importorskip("transformers", reason="parity tests need transformers (test extra)")
import torch.nn.functional as F  # noqa: E402

from collapse.errors import CollapseError  # noqa: E402
from collapse.transformer import GPTNeo, GPTNeoConfig  # noqa: E402
from collapse.transformer.generate import SamplingConfig, generate  # noqa: E402
from collapse.transformer.loss import linear_cross_entropy, token_nll  # noqa: E402
from collapse.transformer.precision import autocast, grad_scaler, resolve_precision  # noqa: E402
from collapse.transformer.score import sliding_window_nll  # noqa: E402
from collapse.transformer.train import TrainConfig, make_rows, train  # noqa: E402

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def _cpu_autocast_works(dtype):
    with torch.autocast("cpu", dtype=dtype):
        return (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == dtype


# CPU fp16 autocast is in the torch this project pins (2.13); older ones only had bf16
CPU_FP16 = pytest.mark.skipif(not _cpu_autocast_works(torch.float16),
                              reason=f"torch {torch.__version__} has no CPU float16 autocast")
PRECISIONS = ["bf16", pytest.param("fp16", marks=CPU_FP16)]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _pair(noise, hidden, heads, seed=0):
    torch.manual_seed(seed)
    cfg = transformers.GPTNeoConfig(
        vocab_size=97, max_position_embeddings=64, hidden_size=hidden, num_layers=4, num_heads=heads,
        attention_types=[[["global", "local"], 2]], window_size=8, embed_dropout=0.0, attention_dropout=0.0,
        resid_dropout=0.0, bos_token_id=0, eos_token_id=0)
    hf = transformers.GPTNeoForCausalLM(cfg).eval()
    with torch.no_grad():
        for p in hf.parameters():
            p.add_(torch.randn_like(p) * noise)
    ours = GPTNeo(GPTNeoConfig.from_hf_dict(hf.config.to_dict())).eval()
    ours.load_hf_state_dict(hf.state_dict())
    return hf, ours


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("noise,hidden,heads", [(0.2, 32, 4), (0.0, 64, 4), (0.05, 128, 8)])
def test_autocast_logit_error_at_most_twice_transformers(precision, noise, hidden, heads):
    """Under CPU autocast, |ours - ours in float32| <= 2 |HF - HF in float32| + 1e-3 (max
    over all logits), on the same weights; GPT-Neo's unscaled attention scores make this
    worth checking. (CPU fp16 autocast exists in the torch this project pins.)"""
    hf, ours = _pair(noise, hidden, heads)
    ids = torch.randint(0, 97, (3, 40), generator=torch.Generator().manual_seed(1))  # past the window
    dev = torch.device("cpu")
    with torch.no_grad():
        ref_hf, ref_ours = hf(ids).logits.float(), ours(ids).float()
        assert (ref_hf - ref_ours).abs().max() < 1e-4
        with autocast(dev, precision):
            got_hf, got_ours = hf(ids).logits.float(), ours(ids)
    assert got_ours.dtype == DTYPES[precision]  # autocast really ran
    err_hf = float((got_hf - ref_hf).abs().max())
    err_ours = float((got_ours.float() - ref_ours).abs().max())
    assert err_hf > 0
    assert err_ours <= 2 * err_hf + 1e-3, (err_ours, err_hf)


@pytest.mark.parametrize("chunk", [1, 7, 1000])
def test_chunked_cross_entropy_equals_full_in_float32(chunk):
    g = torch.Generator().manual_seed(3)
    h = torch.randn(5, 9, 16, generator=g, requires_grad=True)
    w = (torch.randn(50, 16, generator=g) * 0.5).requires_grad_()
    targets = torch.randint(0, 50, (5, 9), generator=g)
    targets[0, :4] = -100
    targets[3, 8] = -100
    full = F.cross_entropy((h @ w.t()).reshape(-1, 50), targets.reshape(-1), ignore_index=-100, reduction="sum")
    gh, gw = torch.autograd.grad(full * 0.37, (h, w))
    ours = linear_cross_entropy(h, w, targets, chunk=chunk)
    oh, ow = torch.autograd.grad(ours * 0.37, (h, w))
    assert torch.allclose(ours, full, rtol=1e-6, atol=1e-5)
    assert torch.allclose(oh, gh, rtol=1e-5, atol=1e-6)
    assert torch.allclose(ow, gw, rtol=1e-5, atol=1e-6)
    per_token = token_nll(h, w, targets, chunk=chunk)
    ref = F.cross_entropy((h @ w.t()).reshape(-1, 50), targets.reshape(-1), ignore_index=-100, reduction="none")
    assert torch.allclose(per_token.reshape(-1), ref, rtol=1e-6, atol=1e-6)
    assert float(per_token[0, :4].abs().sum()) == 0.0


@pytest.mark.parametrize("precision", PRECISIONS)
def test_chunked_cross_entropy_under_autocast_matches_plain_autocast(precision):
    """The loss as the plain way computes it under autocast (the head in the autocast
    dtype, the log-softmax in float32), and gradients close to it."""
    g = torch.Generator().manual_seed(4)
    h = torch.randn(64, 32, generator=g, requires_grad=True)
    w = (torch.randn(300, 32, generator=g) * 0.1).requires_grad_()
    targets = torch.randint(0, 300, (64,), generator=g)
    dev = torch.device("cpu")
    with autocast(dev, precision):
        logits = F.linear(h, w)
        full = F.cross_entropy(logits.float(), targets, reduction="sum")
        ours = linear_cross_entropy(h, w, targets, compute_dtype=DTYPES[precision], chunk=10)
    gh, gw = torch.autograd.grad(full, (h, w))
    oh, ow = torch.autograd.grad(ours, (h, w))
    assert logits.dtype == DTYPES[precision]
    assert abs(float(ours.detach()) - float(full.detach())) <= 1e-5 * abs(float(full.detach())) + 1e-3
    tol = 2e-2 if precision == "bf16" else 3e-3
    assert float((oh - gh).abs().max()) <= tol * float(gh.abs().max())
    assert float((ow - gw).abs().max()) <= tol * float(gw.abs().max())


def _tiny_rows(n_docs=60, seed=0):
    rng = np.random.default_rng(seed)  # counting runs: learnable (next = previous + 1)
    docs = [(rng.integers(0, 39) + np.arange(rng.integers(3, 30))) % 39 + 1 for _ in range(n_docs)]
    flat = np.concatenate([np.append(d, 0) for d in docs])
    offsets = np.concatenate([[0], np.cumsum([d.size + 1 for d in docs])])
    return make_rows(flat, offsets, 0, 16, "pack")


TINY = dict(vocab_size=40, max_position_embeddings=32, hidden_size=16, num_layers=2, num_heads=2,
            window_size=4, bos_token_id=0, eos_token_id=0)


@pytest.mark.parametrize("precision", ["fp32"] + PRECISIONS)
def test_training_in_each_precision_learns(precision):
    rows = _tiny_rows()
    cfg = TrainConfig(batch_size=8, micro_batch_size=4, epochs=3, context_length=16, device="cpu", lr=5e-3,
                      precision=precision)
    model, stats = train(GPTNeoConfig(**TINY), rows, 0, cfg, seed=1)
    assert all(math.isfinite(x) for x in stats.losses)
    assert np.mean(stats.losses[-5:]) < np.mean(stats.losses[:5]) - 0.3
    assert all(p.dtype == torch.float32 for p in model.parameters())  # master weights stay float32


def test_fp16_uses_loss_scaling_and_skips_overflowing_steps():
    dev = torch.device("cpu")
    assert grad_scaler(dev, "fp16").is_enabled()
    assert not grad_scaler(dev, "bf16").is_enabled() and not grad_scaler(dev, "fp32").is_enabled()
    assert resolve_precision("auto", dev) == "fp32"
    assert resolve_precision("auto", torch.device("cuda")) == "bf16"
    # a step whose scaled gradients overflow is skipped and the scale halves
    p = torch.nn.Parameter(torch.ones(3))
    opt = torch.optim.SGD([p], lr=0.1)
    scaler = grad_scaler(dev, "fp16")
    scale0 = scaler.get_scale()
    scaler.scale(p.sum() * float("inf")).backward()
    scaler.step(opt)
    scaler.update()
    assert torch.equal(p.detach(), torch.ones(3)) and scaler.get_scale() == scale0 / 2
    with pytest.raises(CollapseError):
        TrainConfig(precision="fp8")
    from collapse.transformer.family import TransformerFamily

    with pytest.raises(CollapseError, match="precision"):
        TransformerFamily.from_config({"family": "transformer", "bf16": True})


@pytest.mark.parametrize("precision", PRECISIONS)
def test_sampling_and_scoring_under_autocast(precision):
    torch.manual_seed(0)
    model = GPTNeo(GPTNeoConfig(**TINY)).eval()
    stream = np.random.default_rng(1).integers(0, 40, size=120)
    exact = sliding_window_nll(model, stream, max_length=32, stride=16, precision="fp32")
    low = sliding_window_nll(model, stream, max_length=32, stride=16, precision=precision)
    assert low.num_tokens == exact.num_tokens == 119
    assert abs(low.perplexity / exact.perplexity - 1) < 0.02
    cfg = SamplingConfig(max_new_tokens=12, batch_size=4)
    seqs = generate(model, 6, 5, 0, cfg, precision=precision)
    assert len(seqs) == 6 and all(s.size <= 12 and (s < 40).all() for s in seqs)
    assert all(np.array_equal(a, b) for a, b in zip(seqs, generate(model, 6, 5, 0, cfg, precision=precision)))
