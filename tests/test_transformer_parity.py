"""Our GPT-Neo against transformers' GPTNeoForCausalLM on the same weights."""

import json

import pytest

torch = pytest.importorskip("torch", reason="the transformer family needs torch (collapse[torch])")
transformers = pytest.importorskip("transformers", reason="parity tests need transformers (test extra)")

from collapse.errors import CollapseError  # noqa: E402
from collapse.transformer import GPTNeo, GPTNeoConfig  # noqa: E402

WINDOW, SEQ = 8, 40  # sequences much longer than the local window


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # the CI machine has 2 shared cores: one thread per test is faster than two contending
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)



def _hf_model(seed=0, layers=("global", "local", "global", "local")):
    torch.manual_seed(seed)
    cfg = transformers.GPTNeoConfig(
        vocab_size=97, max_position_embeddings=64, hidden_size=32, num_layers=len(layers), num_heads=4,
        attention_types=[[list(layers), 1]], window_size=WINDOW, intermediate_size=None,
        embed_dropout=0.0, attention_dropout=0.0, resid_dropout=0.0, bos_token_id=0, eos_token_id=0)
    model = transformers.GPTNeoForCausalLM(cfg).eval()
    # make the weights less uniform than the default init so every path matters
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.2)
    return model


def _ids(batch=3, seq=SEQ, vocab=97, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, vocab, (batch, seq), generator=g)


def test_hf_folder_loads_with_same_logits(tmp_path):
    hf = _hf_model()
    hf.save_pretrained(tmp_path)
    ours = GPTNeo.from_pretrained(tmp_path).eval()
    assert ours.config.attention_layers == ("global", "local", "global", "local")
    assert ours.config.window_size == WINDOW
    ids = _ids()
    with torch.no_grad():
        ref = hf(ids).logits
        got = ours(ids)
    assert got.shape == (3, SEQ, 97)
    assert torch.allclose(got, ref, atol=1e-4, rtol=0), (got - ref).abs().max()
    # the local mask matters: a global-only model gives different logits after the window
    cfg = GPTNeoConfig(**{**ours.config.to_dict(), "attention_layers": ("global",) * 4})
    all_global = GPTNeo(cfg).eval()
    all_global.load_state_dict(ours.state_dict())
    with torch.no_grad():
        other = all_global(ids)
    assert torch.allclose(other[:, :WINDOW], ref[:, :WINDOW], atol=1e-4, rtol=0)
    assert (other[:, WINDOW:] - ref[:, WINDOW:]).abs().max() > 1e-3


def test_ours_saved_loads_in_transformers(tmp_path):
    torch.manual_seed(3)
    ours = GPTNeo(GPTNeoConfig(vocab_size=97, max_position_embeddings=64, hidden_size=32, num_layers=3,
                               num_heads=4, window_size=WINDOW)).eval()
    with torch.no_grad():
        for p in ours.parameters():
            p.add_(torch.randn_like(p) * 0.2)
    ours.save_pretrained(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]
    assert json.loads((tmp_path / "config.json").read_text())["model_type"] == "gpt_neo"
    hf = transformers.GPTNeoForCausalLM.from_pretrained(tmp_path).eval()
    assert hf.config.attention_layers == ["global", "local", "global"]
    ids = _ids(seed=5)
    with torch.no_grad():
        assert torch.allclose(ours(ids), hf(ids).logits, atol=1e-4, rtol=0)
    # and back again, bit for bit
    again = GPTNeo.from_pretrained(tmp_path)
    for (n1, a), (n2, b) in zip(ours.state_dict().items(), again.state_dict().items()):
        assert n1 == n2 and torch.equal(a, b)


def test_pytorch_model_bin_is_read_without_unpickling_code(tmp_path):
    hf = _hf_model(seed=4)
    hf.save_pretrained(tmp_path)
    from safetensors.torch import load_file

    sd = load_file(tmp_path / "model.safetensors")
    (tmp_path / "model.safetensors").unlink()
    sd["lm_head.weight"] = sd["transformer.wte.weight"].clone()
    sd["transformer.h.0.attn.attention.bias"] = torch.ones(1, 1, 4, 4, dtype=torch.bool)  # old buffers
    torch.save(sd, tmp_path / "pytorch_model.bin")
    ours = GPTNeo.from_pretrained(tmp_path).eval()
    ids = _ids(seed=6)
    with torch.no_grad():
        assert torch.allclose(ours(ids), hf(ids).logits, atol=1e-4, rtol=0)


@pytest.mark.parametrize("chunks", [[1] * SEQ, [5, 1, 1, 13, 1, 19], [SEQ]])
def test_kv_cache_incremental_equals_full_forward(chunks):
    hf = _hf_model(seed=7)
    ours = GPTNeo(GPTNeoConfig.from_hf_dict(hf.config.to_dict())).eval()
    ours.load_hf_state_dict(hf.state_dict())
    ids = _ids(batch=2, seed=8)
    with torch.no_grad():
        full = ours(ids)
        cache = ours.new_cache(2, capacity=SEQ)
        parts, at = [], 0
        for n in chunks:
            parts.append(ours(ids[:, at:at + n], past_key_values=cache))
            at += n
        assert cache.length == SEQ
        inc = torch.cat(parts, dim=1)
    assert torch.allclose(inc, full, atol=1e-4, rtol=0), (inc - full).abs().max()


def test_bad_inputs_raise_value_errors(tmp_path):
    with pytest.raises(ValueError):
        GPTNeoConfig(hidden_size=30, num_heads=4)
    with pytest.raises(ValueError):
        GPTNeoConfig(num_layers=2, attention_layers=("global", "sparse"))
    with pytest.raises(CollapseError):
        GPTNeo.from_pretrained(tmp_path)  # no config.json
    model = GPTNeo(GPTNeoConfig(vocab_size=11, max_position_embeddings=8, hidden_size=8, num_layers=2, num_heads=2))
    with pytest.raises(CollapseError):
        model(torch.zeros(1, 9, dtype=torch.long))  # longer than the positions
    cache = model.new_cache(1, capacity=4)
    model(torch.zeros(1, 4, dtype=torch.long), past_key_values=cache)
    with pytest.raises(CollapseError):
        model(torch.zeros(1, 1, dtype=torch.long), past_key_values=cache)


def test_parameter_counts_of_presets():
    # 33M preset: embeddings 50257*768 + 2048*768, 4 blocks of 7,085,568, final LayerNorm
    n = GPTNeo(GPTNeoConfig.tinystories_33m()).num_parameters()
    per_block = 4 * 768 * 768 + 768 + 2 * 768 * 3072 + 3072 + 768 + 4 * 768
    assert n == 50257 * 768 + 2048 * 768 + 4 * per_block + 2 * 768
