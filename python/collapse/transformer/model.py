"""GPT-Neo in plain PyTorch, in one file (nanoGPT style).

The architecture is exactly Hugging Face's GPTNeoForCausalLM (checked logit for logit in
tests/test_transformer_parity.py):

- learned absolute position embeddings added to token embeddings;
- pre-LayerNorm blocks: x + attn(ln_1(x)), then x + mlp(ln_2(x));
- attention layers alternate "global" (causal) and "local" (causal, each token sees
  itself and the window_size - 1 tokens before it);
- attention scores are NOT divided by sqrt(head_dim): GPT-Neo's eager attention computes
  softmax(q k^T) (transformers' modeling_gpt_neo.py, GPTNeoSelfAttention._attn, and the
  flash path passes softmax_scale=1.0), so we call scaled_dot_product_attention with
  scale=1.0;
- q/k/v projections without bias, output projection with bias;
- MLP c_fc -> gelu_new (GELU, tanh approximation) -> c_proj, width 4 x hidden by default;
- the output head is tied to the token embedding.

Weights are stored with q, k, v fused into one matrix (one matmul instead of three in
decoding); from_pretrained / save_pretrained translate to and from Hugging Face's
layout, so folders round-trip with transformers.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Dict, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import CollapseError
from ..files import atomic_path, write_text
from .loss import linear_cross_entropy

ATTENTION_KINDS = ("global", "local")
ACTIVATIONS = {
    "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "gelu": F.gelu,
    "relu": F.relu,
    "silu": F.silu,
}


@dataclass
class GPTNeoConfig:
    vocab_size: int = 50257
    max_position_embeddings: int = 2048
    hidden_size: int = 768
    num_layers: int = 4
    num_heads: int = 16
    # one entry per layer; default alternates global, local, global, ...
    attention_layers: Tuple[str, ...] = field(default_factory=tuple)
    window_size: int = 256
    intermediate_size: Optional[int] = None  # None: 4 * hidden_size
    activation_function: str = "gelu_new"
    layer_norm_epsilon: float = 1e-5
    embed_dropout: float = 0.0
    attention_dropout: float = 0.0
    resid_dropout: float = 0.0
    initializer_range: float = 0.02
    bos_token_id: int = 50256
    eos_token_id: int = 50256

    def __post_init__(self) -> None:
        if not self.attention_layers:
            self.attention_layers = tuple(ATTENTION_KINDS[i % 2] for i in range(self.num_layers))
        self.attention_layers = tuple(self.attention_layers)
        for name in ("vocab_size", "max_position_embeddings", "hidden_size", "num_layers", "num_heads",
                     "window_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise CollapseError(f"GPT-Neo config: {name} must be a positive integer, got {value!r}")
        if self.hidden_size % self.num_heads:
            raise CollapseError(f"GPT-Neo config: hidden_size {self.hidden_size} is not divisible by "
                                f"num_heads {self.num_heads}")
        if len(self.attention_layers) != self.num_layers:
            raise CollapseError(f"GPT-Neo config: {len(self.attention_layers)} attention layer kinds for "
                                f"{self.num_layers} layers")
        bad = [k for k in self.attention_layers if k not in ATTENTION_KINDS]
        if bad:
            raise CollapseError(f"GPT-Neo config: attention kind {bad[0]!r} (choose global or local)")
        if self.activation_function not in ACTIVATIONS:
            raise CollapseError(f"GPT-Neo config: activation {self.activation_function!r} not supported "
                                f"(choose from {', '.join(ACTIVATIONS)})")
        if self.intermediate_size is not None and self.intermediate_size < 1:
            raise CollapseError("GPT-Neo config: intermediate_size must be positive")
        for name in ("embed_dropout", "attention_dropout", "resid_dropout"):
            if not 0.0 <= float(getattr(self, name)) < 1.0:
                raise CollapseError(f"GPT-Neo config: {name} must be in [0, 1)")

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def mlp_size(self) -> int:
        return self.intermediate_size or 4 * self.hidden_size

    # -- presets ------------------------------------------------------------------
    @classmethod
    def tinystories_33m(cls, **overrides: Any) -> "GPTNeoConfig":
        """roneneldan/TinyStories-33M: 4 layers, hidden 768, 16 heads, window 256."""
        base = dict(vocab_size=50257, max_position_embeddings=2048, hidden_size=768, num_layers=4,
                    num_heads=16, window_size=256)
        return cls(**{**base, **overrides})

    @classmethod
    def tinystories_1m(cls, **overrides: Any) -> "GPTNeoConfig":
        """roneneldan/TinyStories-1M: 8 layers, hidden 64, 16 heads, window 256."""
        base = dict(vocab_size=50257, max_position_embeddings=2048, hidden_size=64, num_layers=8,
                    num_heads=16, window_size=256)
        return cls(**{**base, **overrides})

    # -- Hugging Face config.json ----------------------------------------------------
    def to_hf_dict(self) -> Dict[str, Any]:
        return {
            "architectures": ["GPTNeoForCausalLM"],
            "model_type": "gpt_neo",
            "vocab_size": self.vocab_size,
            "max_position_embeddings": self.max_position_embeddings,
            "hidden_size": self.hidden_size,
            "num_layers": self.num_layers,
            "num_heads": self.num_heads,
            # [[kinds, repeats]]: one group listing every layer's kind once
            "attention_types": [[list(self.attention_layers), 1]],
            "attention_layers": list(self.attention_layers),
            "window_size": self.window_size,
            "intermediate_size": self.intermediate_size,
            "activation_function": self.activation_function,
            "layer_norm_epsilon": self.layer_norm_epsilon,
            "embed_dropout": self.embed_dropout,
            "attention_dropout": self.attention_dropout,
            "resid_dropout": self.resid_dropout,
            "initializer_range": self.initializer_range,
            "bos_token_id": self.bos_token_id,
            "eos_token_id": self.eos_token_id,
            "tie_word_embeddings": True,
            "use_cache": True,
            "torch_dtype": "float32",
        }

    @classmethod
    def from_hf_dict(cls, d: Dict[str, Any]) -> "GPTNeoConfig":
        if d.get("model_type", "gpt_neo") != "gpt_neo":
            raise CollapseError(f"config.json is for model_type {d.get('model_type')!r}, not gpt_neo")
        if d.get("tie_word_embeddings", True) is False:
            raise CollapseError("untied input/output embeddings are not supported (GPT-Neo ties them)")
        layers = d.get("attention_layers")
        if not layers and d.get("attention_types"):
            layers = []
            for kinds, repeats in d["attention_types"]:
                for _ in range(int(repeats)):
                    layers.extend(kinds)
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in d.items() if k in known and k != "attention_layers"}
        for k in ("bos_token_id", "eos_token_id"):
            if isinstance(kwargs.get(k), list):
                kwargs[k] = kwargs[k][0]
            if kwargs.get(k) is None:
                kwargs.pop(k, None)
        return cls(attention_layers=tuple(layers or ()), **kwargs)

    def to_dict(self) -> Dict[str, Any]:
        d = asdict(self)
        d["attention_layers"] = list(self.attention_layers)
        return d


class KVCache:
    """A preallocated key/value cache for all layers: (layers, batch, heads, capacity, head_dim).

    ``length`` counts the positions already written. Preallocation means decoding never
    copies the past (no torch.cat per step); ``keep(rows)`` drops finished sequences.
    """

    def __init__(self, config: GPTNeoConfig, batch_size: int, capacity: int,
                 device: Optional[torch.device] = None, dtype: torch.dtype = torch.float32) -> None:
        if capacity > config.max_position_embeddings:
            raise CollapseError(f"KV cache capacity {capacity} exceeds the model's "
                                f"{config.max_position_embeddings} positions")
        shape = (config.num_layers, batch_size, config.num_heads, capacity, config.head_dim)
        self.k = torch.empty(shape, device=device, dtype=dtype)
        self.v = torch.empty(shape, device=device, dtype=dtype)
        self.capacity = capacity
        self.length = 0

    @property
    def batch_size(self) -> int:
        return self.k.shape[1]

    def keep(self, rows: torch.Tensor) -> None:
        """Keep only the batch rows ``rows`` (in that order)."""
        self.k = self.k.index_select(1, rows)
        self.v = self.v.index_select(1, rows)


def _local_mask(q_start: int, q_len: int, k_start: int, k_len: int, window: int,
                device: torch.device) -> torch.Tensor:
    """Boolean (q_len, k_len) mask: query i (absolute q_start+i) may see key j (absolute
    k_start+j) iff 0 <= qpos - kpos < window, as GPT-Neo's local layers."""
    q = torch.arange(q_start, q_start + q_len, device=device)[:, None]
    k = torch.arange(k_start, k_start + k_len, device=device)[None, :]
    d = q - k
    return (d >= 0) & (d < window)


class SelfAttention(nn.Module):
    def __init__(self, config: GPTNeoConfig, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.num_heads = config.num_heads
        self.head_dim = config.head_dim
        self.window = config.window_size
        self.qkv = nn.Linear(config.hidden_size, 3 * config.hidden_size, bias=False)
        self.out_proj = nn.Linear(config.hidden_size, config.hidden_size, bias=True)
        self.attn_dropout = config.attention_dropout
        self.resid_dropout = nn.Dropout(config.resid_dropout)

    def forward(self, x: torch.Tensor, cache: Optional[KVCache], layer: int) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(x).view(B, T, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        dropout = self.attn_dropout if self.training else 0.0
        if cache is None:
            if self.kind == "global" or T <= self.window:
                y = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=dropout, scale=1.0)
            else:
                mask = _local_mask(0, T, 0, T, self.window, x.device)
                y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout, scale=1.0)
        else:
            start = cache.length
            end = start + T
            if end > cache.capacity:
                raise CollapseError(f"KV cache full: {end} positions > capacity {cache.capacity}")
            cache.k[layer, :, :, start:end] = k
            cache.v[layer, :, :, start:end] = v
            # a local layer never needs keys older than window-1 before the first query
            k_start = max(0, start - self.window + 1) if self.kind == "local" else 0
            keys = cache.k[layer, :, :, k_start:end]
            values = cache.v[layer, :, :, k_start:end]
            if T == 1:
                mask = None  # one query sees every kept key
            elif self.kind == "local":
                mask = _local_mask(start, T, k_start, end - k_start, self.window, x.device)
            else:
                mask = _local_mask(start, T, 0, end, end + 1, x.device)  # plain causal
            y = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask, dropout_p=dropout, scale=1.0)
        y = y.transpose(1, 2).reshape(B, T, C)
        return self.resid_dropout(self.out_proj(y))


class MLP(nn.Module):
    def __init__(self, config: GPTNeoConfig) -> None:
        super().__init__()
        self.c_fc = nn.Linear(config.hidden_size, config.mlp_size)
        self.c_proj = nn.Linear(config.mlp_size, config.hidden_size)
        self.act = ACTIVATIONS[config.activation_function]
        self.dropout = nn.Dropout(config.resid_dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.act(self.c_fc(x))))


class Block(nn.Module):
    def __init__(self, config: GPTNeoConfig, kind: str) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_epsilon)
        self.attn = SelfAttention(config, kind)
        self.ln_2 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_epsilon)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor, cache: Optional[KVCache], layer: int) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), cache, layer)
        return x + self.mlp(self.ln_2(x))


class GPTNeo(nn.Module):
    """GPT-Neo causal language model. ``model(input_ids)`` -> logits (batch, seq, vocab)."""

    def __init__(self, config: GPTNeoConfig) -> None:
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.hidden_size)
        self.wpe = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.drop = nn.Dropout(config.embed_dropout)
        self.h = nn.ModuleList(Block(config, kind) for kind in config.attention_layers)
        self.ln_f = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_epsilon)
        self.apply(self._init_weights)

    def _init_weights(self, module: nn.Module) -> None:
        # Hugging Face GPT-Neo's initialisation: N(0, 0.02) weights, zero biases, unit LayerNorm
        std = self.config.initializer_range
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=std)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    # -- forward ------------------------------------------------------------------------
    def hidden_states(self, input_ids: torch.Tensor, past_key_values: Optional[KVCache] = None) -> torch.Tensor:
        if input_ids.dim() != 2:
            raise CollapseError(f"input_ids must have shape (batch, seq), got {tuple(input_ids.shape)}")
        B, T = input_ids.shape
        start = past_key_values.length if past_key_values is not None else 0
        if start + T > self.config.max_position_embeddings:
            raise CollapseError(f"sequence of {start + T} tokens exceeds the model's "
                                f"{self.config.max_position_embeddings} positions")
        pos = torch.arange(start, start + T, device=input_ids.device)
        x = self.drop(self.wte(input_ids) + self.wpe(pos))
        for layer, block in enumerate(self.h):
            x = block(x, past_key_values, layer)
        if past_key_values is not None:
            past_key_values.length = start + T
        return self.ln_f(x)

    def forward(self, input_ids: torch.Tensor, past_key_values: Optional[KVCache] = None,
                targets: Optional[torch.Tensor] = None, loss_dtype: Optional[torch.dtype] = None,
                compiled: bool = False) -> torch.Tensor:
        """Logits (batch, seq, vocab). With a KVCache, input_ids continue the cached
        positions and the cache is extended in place.

        With ``targets`` (batch, seq; -100 = not scored): the summed cross-entropy instead,
        computed a chunk of tokens at a time without materialising the logits
        (loss.linear_cross_entropy; ``loss_dtype`` = the autocast dtype its matrix products
        use). Through forward, so DistributedDataParallel sees the call. ``compiled``
        (training with compile = true): the loss fuses its chunks' elementwise work through
        torch.compile (loss.linear_cross_entropy's ``fused``)."""
        h = self.hidden_states(input_ids, past_key_values)
        if targets is not None:
            return linear_cross_entropy(h, self.wte.weight, targets, compute_dtype=loss_dtype, fused=compiled)
        return F.linear(h, self.wte.weight)

    def new_cache(self, batch_size: int, capacity: Optional[int] = None,
                  dtype: Optional[torch.dtype] = None) -> KVCache:
        p = self.wte.weight
        return KVCache(self.config, batch_size, capacity or self.config.max_position_embeddings,
                       device=p.device, dtype=dtype or p.dtype)

    def num_parameters(self, exclude_embeddings: bool = False) -> int:
        """Number of parameters (the tied head counted once)."""
        n = sum(p.numel() for p in self.parameters())
        if exclude_embeddings:
            n -= self.wte.weight.numel() + self.wpe.weight.numel()
        return n

    # -- Hugging Face folders --------------------------------------------------------------
    def hf_state_dict(self) -> Dict[str, torch.Tensor]:
        """Weights named and shaped as transformers' GPTNeoForCausalLM (no lm_head: tied)."""
        out: Dict[str, torch.Tensor] = {}
        C = self.config.hidden_size
        for name, t in self.state_dict().items():
            t = t.detach().contiguous()
            if name.endswith("attn.qkv.weight"):
                prefix = "transformer." + name[: -len("qkv.weight")] + "attention."
                for part, w in zip(("q_proj", "k_proj", "v_proj"), t.split(C, dim=0)):
                    out[prefix + part + ".weight"] = w.clone().contiguous()
            elif ".attn.out_proj." in name:
                out["transformer." + name.replace(".attn.out_proj.", ".attn.attention.out_proj.")] = t.clone()
            else:
                out["transformer." + name] = t.clone()
        return out

    def load_hf_state_dict(self, sd: Dict[str, torch.Tensor]) -> None:
        sd = dict(sd)
        head = sd.pop("lm_head.weight", None)
        ours: Dict[str, torch.Tensor] = {}
        for i in range(self.config.num_layers):
            p = f"transformer.h.{i}.attn.attention."
            try:
                parts = [sd.pop(p + f"{x}_proj.weight") for x in ("q", "k", "v")]
            except KeyError as e:
                raise CollapseError(f"checkpoint lacks {e.args[0]}") from None
            ours[f"h.{i}.attn.qkv.weight"] = torch.cat(parts, dim=0)
            for suffix in ("weight", "bias"):
                key = p + "out_proj." + suffix
                if key in sd:
                    ours[f"h.{i}.attn.out_proj.{suffix}"] = sd.pop(key)
            # old checkpoints carry the causal-mask buffers; they are not weights
            sd.pop(p + "bias", None)
            sd.pop(p + "masked_bias", None)
        for k, v in sd.items():
            if not k.startswith("transformer."):
                raise CollapseError(f"unexpected weight {k!r} in a GPT-Neo checkpoint")
            ours[k[len("transformer."):]] = v
        if head is not None and "wte.weight" in ours and not torch.equal(head, ours["wte.weight"]):
            raise CollapseError("checkpoint's lm_head differs from its token embedding (untied weights "
                                "are not supported)")
        missing, unexpected = self.load_state_dict(ours, strict=False)
        if missing or unexpected:
            raise CollapseError(f"checkpoint does not match the config: missing {missing[:3]}, "
                                f"unexpected {unexpected[:3]}")

    @classmethod
    def from_pretrained(cls, path: str, map_location: str = "cpu") -> "GPTNeo":
        """Load a Hugging Face GPT-Neo folder: config.json + model.safetensors (or
        pytorch_model.bin, read with torch.load(weights_only=True), never unpickling code)."""
        path = os.fspath(path)
        cfg_path = os.path.join(path, "config.json")
        if not os.path.isfile(cfg_path):
            raise CollapseError(f"{path}: no config.json (not a Hugging Face model folder)")
        with open(cfg_path, encoding="utf-8") as f:
            try:
                config = GPTNeoConfig.from_hf_dict(json.load(f))
            except (json.JSONDecodeError, TypeError) as e:
                raise CollapseError(f"{cfg_path}: cannot read GPT-Neo config ({e})") from None
        st = os.path.join(path, "model.safetensors")
        bin_path = os.path.join(path, "pytorch_model.bin")
        if os.path.isfile(st):
            from safetensors.torch import load_file
            sd = load_file(st, device=str(map_location))
        elif os.path.isfile(bin_path):
            sd = torch.load(bin_path, map_location=map_location, weights_only=True)
        else:
            raise CollapseError(f"{path}: neither model.safetensors nor pytorch_model.bin")
        model = cls(config)
        model.load_hf_state_dict({k: v.float() if v.is_floating_point() else v for k, v in sd.items()})
        return model.to(map_location)

    def save_pretrained(self, path: str) -> None:
        """Write config.json + model.safetensors as transformers lays them out."""
        from safetensors.torch import save_file

        path = os.fspath(path)
        os.makedirs(path, exist_ok=True)
        tensors = {k: v.cpu() for k, v in self.hf_state_dict().items()}
        with atomic_path(os.path.join(path, "model.safetensors")) as tmp:
            save_file(tensors, tmp, metadata={"format": "pt"})
        write_text(os.path.join(path, "config.json"), json.dumps(self.config.to_hf_dict(), indent=2) + "\n")


def main(argv: Optional[Sequence[str]] = None) -> int:
    """python -m collapse.transformer.model [33m|1m|PATH]: print the parameter count."""
    import sys

    args = list(sys.argv[1:] if argv is None else argv) or ["33m"]
    for a in args:
        if a in ("33m", "tinystories-33m"):
            model = GPTNeo(GPTNeoConfig.tinystories_33m())
        elif a in ("1m", "tinystories-1m"):
            model = GPTNeo(GPTNeoConfig.tinystories_1m())
        else:
            model = GPTNeo.from_pretrained(a)
        n, ne = model.num_parameters(), model.num_parameters(exclude_embeddings=True)
        print(f"{a}: {n:,} parameters ({ne:,} without token and position embeddings)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
