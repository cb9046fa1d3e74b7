"""Continuous-refill sampling (transformer/refill.py) against the batch-after-batch sampler:
the same tokens for every document, whatever the rows, the shard, the precision or the
truncation; a compiled decode step equal to the eager one; a killed sampling resumed."""

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the transformer family needs torch (collapse[torch])")

from collapse.errors import CollapseError  # noqa: E402
from collapse.transformer import GPTNeo, GPTNeoConfig  # noqa: E402
from collapse.transformer.generate import SamplingConfig, generate, refill_sampler, sequence_uniforms  # noqa: E402

V, EOT = 12, 0


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def tiny():
    # window 4 < 24 new tokens: the local layers' window slides inside every long document
    torch.manual_seed(5)
    model = GPTNeo(GPTNeoConfig(vocab_size=V, max_position_embeddings=32, hidden_size=16, num_layers=3,
                                num_heads=2, window_size=4, bos_token_id=EOT, eos_token_id=EOT)).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.5)
    return model


def _ids(seqs):
    return [s.tolist() for s in seqs]


def _both(model, n, cfg, indices=None, precision="fp32", seed=3):
    old = generate(model, n, seed, EOT, SamplingConfig(**{**cfg.__dict__, "refill": False}), indices=indices,
                   precision=precision)
    new = generate(model, n, seed, EOT, cfg, indices=indices, precision=precision)
    return _ids(old), _ids(new)


@pytest.mark.parametrize("rows", [1, 3, 8, 64])
@pytest.mark.parametrize("shard", [None, range(0, 20), range(37, 61)])
def test_refill_gives_the_tokens_of_batch_after_batch(tiny, rows, shard):
    cfg = SamplingConfig(refill=True, max_new_tokens=24, batch_size=rows)
    old, new = _both(tiny, 30, cfg, indices=shard)
    assert old == new
    lengths = [len(s) for s in old]
    # the data exercise refill: documents of many lengths, some cut at max_new_tokens
    assert min(lengths) < 5 and max(lengths) == 24 and len(set(lengths)) > 6


@pytest.mark.parametrize("temperature,top_k,top_p", [(0.7, 0, 1.0), (1.0, 4, 1.0), (1.3, 0, 0.8), (0.9, 5, 0.9)])
def test_refill_truncated_distributions(tiny, temperature, top_k, top_p):
    cfg = SamplingConfig(refill=True, max_new_tokens=16, batch_size=5, temperature=temperature, top_k=top_k, top_p=top_p)
    old, new = _both(tiny, 25, cfg, seed=int(10 * temperature) + top_k)
    assert old == new


def test_refill_without_stop_and_with_a_cap_of_one(tiny):
    for cfg in (SamplingConfig(refill=True, max_new_tokens=9, batch_size=4, stop_at_eot=False),
                SamplingConfig(refill=True, max_new_tokens=1, batch_size=4)):
        old, new = _both(tiny, 11, cfg)
        assert old == new
    # without the stop, every document has exactly max_new_tokens tokens, end-of-text among them
    _, free = _both(tiny, 11, SamplingConfig(refill=True, max_new_tokens=9, batch_size=4, stop_at_eot=False))
    assert all(len(s) == 9 for s in free) and any(EOT in s for s in free)


def _token_interval(probs, token):
    cdf = np.cumsum(probs)
    return (cdf[token - 1] if token else 0.0), cdf[token]


def test_refill_under_bf16_autocast(tiny):
    """bf16 rounds the logits to 8 bits of mantissa (a logit near 10 moves by up to 0.03,
    a probability by about 3 %), and the static cache's masked attention sums in another
    order than the growing cache, so a document may differ where its uniform lies that
    close to a boundary between two tokens: measured here, 3 of 40 documents (the
    batch-after-batch sampler gives the same tokens at 1, 6 or 40 rows on this CPU). What
    the docs promise, checked: every document that differs first differs at a draw whose
    uniform lies within 0.05 of CDF mass of both tokens' intervals under the float32
    distribution, and most documents are identical."""
    cfg = SamplingConfig(refill=True, max_new_tokens=24, batch_size=6)
    old, new = _both(tiny, 40, cfg, precision="bf16")
    u = sequence_uniforms(3, range(40), 24).numpy()
    differ = [i for i in range(40) if old[i] != new[i]]
    assert len(differ) <= 4
    for i in differ:
        a, b = old[i] + [EOT], new[i] + [EOT]   # the stop is a draw of end-of-text
        j = next(k for k in range(len(a)) if a[k] != b[k])
        with torch.no_grad():
            probs = torch.softmax(tiny(torch.tensor([[EOT] + a[:j]]))[0, -1].double(), -1).numpy()
        for token in (a[j], b[j]):
            lo, hi = _token_interval(probs, token)
            assert lo - 0.05 <= u[i, j] <= hi + 0.05, (i, j, token, u[i, j], lo, hi)
    # in float32 the same documents are identical
    old32, new32 = _both(tiny, 40, cfg)
    assert old32 == new32


def test_refill_takes_fewer_decode_steps(tiny):
    """The point of refill: a short document's row goes on with the next document instead
    of waiting for the longest of its batch."""
    cfg = SamplingConfig(refill=True, max_new_tokens=24, batch_size=8)
    sampler = refill_sampler(tiny, cfg, 8, EOT)
    with torch.no_grad():
        docs = dict(sampler.run(range(64), seed=3))
    lengths = [len(docs[k]) for k in range(64)]
    batch_steps = sum(min(24, max(lengths[s:s + 8]) + 1) for s in range(0, 64, 8))  # each batch: its longest
    work = sum(min(n + 1, 24) for n in lengths)   # draws the documents need, their stops included
    assert sampler.decode_steps < 0.85 * batch_steps
    # full rows until the shard drains: at most one longest document's steps above the ideal
    assert sampler.decode_steps <= work / 8 + 24


def test_uniforms_are_fetched_when_a_document_enters_a_row(tiny, monkeypatch):
    """Memory: a shard's uniforms are never all held at once (1M documents x 600 float64
    would be 4.8 GB); a document's stream is computed when it takes a row."""
    from collapse.transformer import refill

    calls = []
    real = refill.document_uniforms
    monkeypatch.setattr(refill, "document_uniforms", lambda *a: (calls.append(a[1]), real(*a))[1])
    sampler = refill_sampler(tiny, SamplingConfig(refill=True, max_new_tokens=24, batch_size=4), 4, EOT)
    with torch.no_grad():
        first = next(iter(sampler.run(range(100), seed=3)))
    assert first[0] in range(4) and sorted(calls) == [0, 1, 2, 3]


def test_compiled_step_equals_eager(tiny):
    cfg = SamplingConfig(refill=True, max_new_tokens=12, batch_size=4, top_k=6, compile=True)
    eager = generate(tiny, 10, 4, EOT, SamplingConfig(refill=True, max_new_tokens=12, batch_size=4, top_k=6))
    stats = {}
    compiled = generate(tiny, 10, 4, EOT, cfg, stats=stats)
    assert _ids(compiled) == _ids(eager)
    assert stats["rows"] == 4 and sum(min(len(s) + 1, 12) for s in eager) <= 4 * stats["decode_steps"]


def test_bad_combinations():
    with pytest.raises(CollapseError, match="refill"):
        SamplingConfig(refill=False, compile=True)
    with pytest.raises(CollapseError, match="refill"):
        SamplingConfig(refill=False, cuda_graph=True)
    with pytest.raises(CollapseError, match="refill must be"):
        SamplingConfig(refill="yes")


def test_auto_refills_on_cuda_or_when_compiled_and_not_on_cpu(tiny):
    """refill = "auto" (the default): on CPU today's sampler (a step costs in proportion to
    the live rows there, so refill gains nothing), on CUDA continuous refill; asking for
    compile or cuda_graph means refill anywhere. The documents are the same either way."""
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert SamplingConfig().refill == "auto"
    assert not SamplingConfig().uses_refill(cpu) and SamplingConfig().uses_refill(cuda)
    assert SamplingConfig(compile=True).uses_refill(cpu) and SamplingConfig(refill=True).uses_refill(cpu)
    assert not SamplingConfig(refill=False).uses_refill(cuda)
    if tiny.wte.weight.device.type == "cpu":
        stats = {}
        auto = generate(tiny, 9, 2, EOT, SamplingConfig(max_new_tokens=12, batch_size=4), stats=stats)
        assert stats == {}  # batch after batch: no refill statistics
        assert _ids(auto) == _ids(generate(tiny, 9, 2, EOT, SamplingConfig(max_new_tokens=12, batch_size=4,
                                                                           refill=True)))


def test_cuda_graph_needs_cuda(tiny):
    if tiny.wte.weight.device.type == "cuda":
        pytest.skip("the model is on CUDA")
    with pytest.raises(CollapseError, match="CUDA"):
        refill_sampler(tiny, SamplingConfig(refill=True, cuda_graph=True, max_new_tokens=8), 2, EOT)


def test_family_sampling_killed_mid_shard_resumes_identically(tmp_path, monkeypatch):
    """The family saves every finished shard of samples and, on resume, samples only the
    shards it lacks (checkpoint.py). With refill, a shard killed half-way is sampled again
    from its start and ends as it would have: the files and the samples equal an
    uninterrupted run's, and the batch-after-batch sampler's."""
    from dataclasses import replace

    from collapse.data.corpus import Corpus
    from collapse.transformer import refill
    from collapse.transformer.family import TransformerFamily

    rng = np.random.default_rng(0)
    words = ["Tom", "saw", "a", "dog", "Lily", "had", "the", "ball", "."]
    docs = [" ".join(rng.choice(words, size=rng.integers(2, 9))) for _ in range(40)]
    family = TransformerFamily.from_config({
        "family": "transformer", "preset": "custom", "hidden_size": 16, "num_layers": 2, "num_heads": 2,
        "window_size": 8, "max_position_embeddings": 32, "context_length": 16, "epochs": 1, "batch_size": 8,
        "micro_batch_size": 8, "bpe_vocab_size": 280, "max_new_tokens": 20, "sample_batch_size": 3,
        "device": "cpu", "threads": 1, "sample_shard_size": 7, "progress": False})
    family.sampling = replace(family.sampling, refill=True)  # on CPU "auto" would sample batch after batch
    model = family.fit(Corpus.from_texts(docs), seed=7)
    whole = _ids(model.sample_token_ids(25, seed=11))

    real_step, samplers = refill.RefillSampler.step, []

    def killed(self):
        if not samplers or samplers[-1][0] is not self:
            samplers.append([self, 0])   # one sampler per shard
        samplers[-1][1] += 1
        if len(samplers) == 3 and samplers[-1][1] == 5:  # the third shard, a few steps in
            raise KeyboardInterrupt
        real_step(self)

    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.setattr(refill.RefillSampler, "step", killed)
    with pytest.raises(KeyboardInterrupt):
        model.in_work_dir(str(work)).sample_token_ids(25, seed=11)
    saved = sorted(p.name for p in work.iterdir())
    assert len(saved) == 2  # killed with two shards written, mid-way through the third
    monkeypatch.setattr(refill.RefillSampler, "step", real_step)
    resumed = _ids(model.in_work_dir(str(work)).sample_token_ids(25, seed=11))
    assert resumed == whole and len(sorted(work.iterdir())) == 4
    family.sampling = replace(family.sampling, refill=False)
    assert _ids(model.sample_token_ids(25, seed=11)) == whole
