"""Training at the hardware's speed, proven equal on CPU: the compiled training step
(torch.compile of the model, the loss's fused chunk kernel) against the eager one within
the tolerance docs/transformer.md states, and the GPU-resident micro-batches against the
host ones (bit-identical)."""

import hashlib
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the transformer family needs torch (collapse[torch])")
import torch.nn.functional as F  # noqa: E402

from collapse.transformer import GPTNeoConfig  # noqa: E402
from collapse.transformer import train as train_module  # noqa: E402
from collapse.transformer.loss import linear_cross_entropy  # noqa: E402
from collapse.transformer.train import PAD, Batches, TrainConfig, make_rows, train  # noqa: E402

TINY = GPTNeoConfig(vocab_size=40, max_position_embeddings=32, hidden_size=16, num_layers=2, num_heads=2,
                    window_size=4, bos_token_id=0, eos_token_id=0)
# the documented tolerance of compiled against eager training (float32, CPU)
LOSS_RTOL = 1e-5
WEIGHT_RTOL = 1e-4


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _rows(packing, n_docs=40, context=16, seed=0):
    rng = np.random.default_rng(seed)  # counting runs: learnable (next = previous + 1)
    docs = [(rng.integers(0, 39) + np.arange(rng.integers(3, 30))) % 39 + 1 for _ in range(n_docs)]
    flat = np.concatenate([np.append(d, 0) for d in docs])
    offsets = np.concatenate([[0], np.cumsum([d.size + 1 for d in docs])])
    return make_rows(flat, offsets, 0, context, packing)


def _weights_hash(model):
    return hashlib.sha256(b"".join(t.detach().numpy().tobytes() for t in model.state_dict().values())).hexdigest()


def test_compiled_training_equals_eager_within_the_documented_tolerance():
    rows = _rows("pack")[:32]  # 32 full rows: one micro-batch shape, one compilation
    tc = dict(batch_size=16, micro_batch_size=8, epochs=2, context_length=16, device="cpu", precision="fp32")
    eager, s_eager = train(TINY, rows, 0, TrainConfig(**tc), seed=5)
    compiled, s_compiled = train(TINY, rows, 0, TrainConfig(**tc, compile=True), seed=5)
    assert len(s_compiled.losses) == len(s_eager.losses) == 4
    assert s_compiled.losses[-1] < s_compiled.losses[0]  # it trains
    np.testing.assert_allclose(s_compiled.losses, s_eager.losses, rtol=LOSS_RTOL)
    for name, w in eager.state_dict().items():
        got = compiled.state_dict()[name]
        scale = float(w.abs().max())
        assert float((got - w).abs().max()) <= WEIGHT_RTOL * scale, name
    # the model handed back is the plain one, ready for sampling
    assert "hidden_states" not in vars(compiled)


@pytest.mark.parametrize("compute_dtype", [None, torch.bfloat16])
def test_fused_chunk_loss_equals_the_eager_chunks(compute_dtype):
    g = torch.Generator().manual_seed(3)
    h = torch.randn(5, 9, 16, generator=g, requires_grad=True)
    w = (torch.randn(50, 16, generator=g) * 0.5).requires_grad_()
    targets = torch.randint(0, 50, (5, 9), generator=g)
    targets[0, :4] = -100
    eager = linear_cross_entropy(h, w, targets, compute_dtype=compute_dtype, chunk=7)
    eh, ew = torch.autograd.grad(eager * 0.37, (h, w))
    fused = linear_cross_entropy(h, w, targets, compute_dtype=compute_dtype, chunk=7, fused=True)
    fh, fw = torch.autograd.grad(fused * 0.37, (h, w))
    fused, eager = fused.detach(), eager.detach()
    full = F.cross_entropy((h @ w.t()).reshape(-1, 50), targets.reshape(-1), ignore_index=-100, reduction="sum").detach()
    tol = 1e-5 if compute_dtype is None else 2e-2
    assert abs(float(fused) - float(eager)) <= 1e-6 * abs(float(eager))
    assert abs(float(fused) - float(full)) <= tol * abs(float(full))
    assert float((fh - eh).abs().max()) <= 1e-5 * float(eh.abs().max())
    assert float((fw - ew).abs().max()) <= 1e-5 * float(ew.abs().max())


@pytest.mark.parametrize("packing", ["pack", "truncate"])
def test_resident_micro_batches_equal_host_ones(packing):
    rows = _rows(packing)
    if packing == "pack":
        assert (rows[-1] == PAD).any()  # the last packed row is padded
    host = Batches(rows, 0, torch.device("cpu"), resident=False)
    resident = Batches(rows, 0, torch.device("cpu"), resident=True)
    order = np.random.default_rng(1).permutation(rows.shape[0])
    for b in (host, resident):
        b.new_epoch(order)
    for positions in (range(0, 7), range(3, 20, 3), range(rows.shape[0] - 5, rows.shape[0]), range(9, 10)):
        hi, ht = host.micro(positions)
        ri, rt = resident.micro(positions)
        assert hi.dtype == ri.dtype == torch.int64 and torch.equal(hi, ri) and torch.equal(ht, rt)
        index = order[positions.start:positions.stop:positions.step]
        assert host.targets(positions) == int((rows[index, 1:] != PAD).sum())
        # the columns kept: up to the last one any row fills
        assert hi.shape[1] + 1 == max(2, max(np.nonzero(r != PAD)[0].max() + 1 for r in rows[index]))


def test_training_from_resident_rows_is_bit_identical(monkeypatch):
    rows = _rows("truncate")
    tc = TrainConfig(batch_size=12, micro_batch_size=5, epochs=2, context_length=16, device="cpu", precision="fp32")
    host, s_host = train(TINY, rows, 0, tc, seed=2)
    monkeypatch.setattr(train_module, "rows_on_device", lambda rows, device: True)
    resident, s_resident = train(TINY, rows, 0, tc, seed=2)
    assert s_resident.losses == s_host.losses and s_resident.tokens == s_host.tokens
    assert _weights_hash(resident) == _weights_hash(host)


@pytest.mark.parametrize("key", ["compile", "deterministic"])
def test_compile_and_deterministic_must_be_booleans(key):
    from collapse.errors import CollapseError
    from collapse.transformer.family import TransformerFamily

    for bad in ("yes", 1, "false"):
        with pytest.raises(CollapseError, match=f"{key} must be true or false"):
            TrainConfig(**{key: bad})
    with pytest.raises(CollapseError, match=key):
        TransformerFamily.from_config({"family": "transformer", "preset": "custom", "hidden_size": 16,
                                       "num_layers": 1, "num_heads": 2, key: "true"}, check_only=True)
    assert getattr(TrainConfig(**{key: True}), key) is True


def test_step_losses_are_read_back_once_not_at_every_step(monkeypatch):
    """Reading a loss back (float, item, tolist) makes the host wait for the GPU; train()
    reads them all at once at the end (no log line, checkpoint or progress display asked)."""
    rows = _rows("pack")
    tc = TrainConfig(batch_size=8, micro_batch_size=4, epochs=2, context_length=16, device="cpu", precision="fp32")
    _, reference = train(TINY, rows, 0, tc, seed=4)
    reads = []
    for name in ("__float__", "item", "tolist"):
        original = getattr(torch.Tensor, name)

        def counted(self, *a, _original=original, _name=name, **k):
            # train()'s own reads (CPU AdamW, not fused, reads its step count: not train()'s)
            if sys._getframe(1).f_code.co_filename == train_module.__file__:
                reads.append(_name)
            return _original(self, *a, **k)

        monkeypatch.setattr(torch.Tensor, name, counted)
    _, stats = train(TINY, rows, 0, tc, seed=4)
    assert stats.steps >= 10
    assert reads == ["tolist"]
    assert stats.losses == reference.losses and len(stats.losses) == stats.steps
    # a log line every 3 steps reads back at those steps only: the same losses
    monkeypatch.undo()
    _, logged = train(TINY, rows, 0, TrainConfig(**{**vars(tc), "log_every": 3}), seed=4)
    assert logged.losses == reference.losses
