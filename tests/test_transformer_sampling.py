"""The sampler against the distribution it should sample, and sliding-window perplexity
against a direct token-by-token computation."""

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the transformer family needs torch (collapse[torch])")
stats = pytest.importorskip("scipy.stats")

from collapse.errors import CollapseError  # noqa: E402
from collapse.transformer import GPTNeo, GPTNeoConfig  # noqa: E402
from collapse.transformer.generate import (SamplingConfig, draw, generate, sampling_probs,  # noqa: E402
                                           sequence_uniforms)
from collapse.transformer.score import sliding_window_nll, windows  # noqa: E402

V, EOT = 12, 0


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # the CI machine has 2 shared cores: one thread per test is faster than two contending
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)



@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(11)
    model = GPTNeo(GPTNeoConfig(vocab_size=V, max_position_embeddings=64, hidden_size=16, num_layers=2,
                                num_heads=2, window_size=4, bos_token_id=EOT, eos_token_id=EOT)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.5)  # a peaked, uneven next-token distribution
    return model


def _first_token_probs(model):
    with torch.no_grad():
        return torch.softmax(model(torch.tensor([[EOT]]))[0, -1], -1).double()


def _first_token_counts(model, cfg, n=6000, seed=5):
    seqs = generate(model, n, seed=seed, start_id=EOT, cfg=cfg)
    first = np.array([s[0] if s.size else EOT for s in seqs])
    return np.bincount(first, minlength=V)


def _chisquare_p(counts, probs):
    probs = np.asarray(probs, dtype=np.float64)
    keep = probs > 0
    assert counts[~keep].sum() == 0, "a token of probability 0 was drawn"
    expected = probs[keep] / probs[keep].sum() * counts.sum()
    return stats.chisquare(counts[keep], expected).pvalue


def test_first_token_matches_softmax(tiny):
    p = _first_token_probs(tiny).numpy()
    assert p.max() < 0.9 and (p > 0.01).sum() >= 4  # the test distribution is not degenerate
    cfg = SamplingConfig(max_new_tokens=1, batch_size=1000, stop_at_eot=False)
    counts = _first_token_counts(tiny, cfg)
    assert _chisquare_p(counts, p) > 1e-3
    # the same test rejects a wrong distribution: the counts are informative
    assert _chisquare_p(counts, torch.softmax(torch.log(torch.tensor(p)) / 2, -1).numpy()) < 1e-6


@pytest.mark.parametrize("temperature,top_k,top_p", [(0.7, 0, 1.0), (1.5, 0, 1.0), (1.0, 4, 1.0),
                                                     (1.0, 0, 0.7), (0.8, 5, 0.9)])
def test_truncated_sampling_matches_renormalised(tiny, temperature, top_k, top_p):
    with torch.no_grad():
        logits = tiny(torch.tensor([[EOT]]))[0, -1].double().numpy()
    # numpy reference: temperature, then keep the top-k, then the smallest top set of mass >= top_p
    z = logits / temperature
    order = np.argsort(-z, kind="stable")
    keep = np.zeros(V, dtype=bool)
    keep[order[:top_k or V]] = True
    q = np.where(keep, np.exp(z - z.max()), 0.0)
    q /= q.sum()
    cum = np.cumsum(q[order]) - q[order]
    keep2 = np.zeros(V, dtype=bool)
    keep2[order[cum < top_p]] = True
    ref = np.where(keep & keep2, q, 0.0)
    ref /= ref.sum()
    got = sampling_probs(torch.tensor(logits)[None], temperature, top_k, top_p)[0].double().numpy()
    assert np.allclose(got, ref, atol=1e-6)
    cfg = SamplingConfig(temperature=temperature, top_k=top_k, top_p=top_p, max_new_tokens=1,
                         batch_size=1000, stop_at_eot=False)
    counts = _first_token_counts(tiny, cfg, seed=int(temperature * 10) + top_k)
    assert _chisquare_p(counts, ref) > 1e-3


def test_draw_inverts_the_cdf_exactly():
    probs = torch.tensor([[0.0, 0.25, 0.0, 0.75]] * 5)
    u = torch.tensor([0.0, 0.2499, 0.25, 0.9999, 1 - 2 ** -53], dtype=torch.float64)
    assert draw(probs, u).tolist() == [1, 1, 3, 3, 3]


def _naive_generate(model, uniforms, cfg):
    """Full forward over the whole prefix at every step: no cache, no batching."""
    out = []
    for u in uniforms:
        seq = [EOT]
        for step in range(cfg.max_new_tokens):
            with torch.no_grad():
                logits = model(torch.tensor([seq]))[:, -1]
            tok = int(draw(sampling_probs(logits, cfg.temperature, cfg.top_k, cfg.top_p), u[step:step + 1])[0])
            if tok == EOT and cfg.stop_at_eot:
                break
            seq.append(tok)
        out.append(seq[1:])
    return out


@pytest.mark.parametrize("refill", [False, True])
@pytest.mark.parametrize("check_every", [1, 5])
def test_cached_batched_generation_equals_naive_sampler(tiny, check_every, refill, monkeypatch):
    from collapse.transformer.model import KVCache

    compactions = []
    keep = KVCache.keep
    monkeypatch.setattr(KVCache, "keep", lambda self, rows: (compactions.append(rows.numel()), keep(self, rows)))
    # 20 new tokens with window 4: the local layers' window slides during decoding; some
    # sequences stop early, so finished rows are dropped from the batch mid-way
    # (check_every 5: as on a GPU, finished rows keep running a few steps before they go)
    # (refill: a finished row is taken by the next document up to check_every - 1 steps later)
    cfg = SamplingConfig(max_new_tokens=20, batch_size=7, temperature=1.3, check_every=check_every,
                         compact_fraction=0.1, refill=refill)
    seqs = generate(tiny, 16, seed=3, start_id=EOT, cfg=cfg)
    ref = _naive_generate(tiny, sequence_uniforms(3, range(16), 20), cfg)
    assert [s.tolist() for s in seqs] == ref
    lengths = [len(s) for s in ref]
    # in each of the first two batches (7 rows) a row finished early: with compact_fraction
    # 0.1 that is enough to drop it from the batch and the KV cache mid-way
    assert any(n < 20 for n in lengths[:7]) and any(n < 20 for n in lengths[7:14])
    assert len(compactions) >= 2 or (refill and not compactions)


def test_generation_is_deterministic_and_independent_of_batching(tiny):
    cfg = SamplingConfig(max_new_tokens=15, batch_size=5)
    a = generate(tiny, 12, seed=9, start_id=EOT, cfg=cfg)
    b = generate(tiny, 12, seed=9, start_id=EOT, cfg=SamplingConfig(max_new_tokens=15, batch_size=12))
    c = generate(tiny, 12, seed=10, start_id=EOT, cfg=cfg)
    part = generate(tiny, 12, seed=9, start_id=EOT, cfg=cfg, indices=range(6, 12))  # a rank's shard
    assert [x.tolist() for x in a] == [x.tolist() for x in b]
    assert [x.tolist() for x in a[6:]] == [x.tolist() for x in part]
    assert [x.tolist() for x in a] != [x.tolist() for x in c]
    assert all(EOT not in x for x in a)


def test_bad_sampling_settings():
    for kw in ({"temperature": 0}, {"top_k": -1}, {"top_p": 0.0}, {"top_p": 1.5}, {"max_new_tokens": 0}):
        with pytest.raises(CollapseError):
            SamplingConfig(**kw)


# ---------------------------------------------------------------------------------------

def _direct_nll(model, stream, max_length, stride):
    """Each scored token's NLL from its own forward pass over exactly its window context."""
    total, n = 0.0, 0
    for begin, end, first in windows(len(stream), max_length, stride):
        for t in range(first, end):
            with torch.no_grad():
                logits = model(torch.tensor([stream[begin:t]]))[0, -1].double()
            total -= float(torch.log_softmax(logits, -1)[stream[t]])
            n += 1
    return total, n


@pytest.mark.parametrize("max_length,stride", [(16, 5), (16, 16), (10, 2), (64, 512)])
def test_sliding_window_perplexity_matches_direct(tiny, max_length, stride):
    rng = np.random.default_rng(0)
    stream = rng.integers(0, V, size=53)
    res = sliding_window_nll(tiny, stream, max_length=max_length, stride=stride, batch_size=3)
    total, n = _direct_nll(tiny, stream.tolist(), max_length, stride)
    assert res.num_tokens == n == 52  # every token but the first, once
    assert math.isclose(res.nll_sum, total, rel_tol=1e-5)
    assert math.isclose(res.perplexity, math.exp(total / n), rel_tol=1e-5)


def test_windows_cover_every_token_once():
    for length in (2, 7, 100):
        for max_length, stride in ((8, 3), (8, 8), (5, 1), (4, 100)):
            spans = windows(length, max_length, stride)
            scored = [t for _, e, f in spans for t in range(f, e)]
            assert scored == list(range(1, length))
            assert all(e - b <= max_length and b < f for b, e, f in spans)
            # context: at least max_length - stride tokens once past the start
            s = min(stride, max_length - 1)
            assert all(f - b >= min(f, max_length - s) for b, e, f in spans)
    with pytest.raises(CollapseError):
        windows(10, 8, 0)
