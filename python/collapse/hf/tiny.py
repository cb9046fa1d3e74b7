"""Tiny random causal LMs with a BPE of the story grammar's text: for tests, configs and benchmarks.

``make_tiny(directory, model_type)`` writes a Hugging Face folder (config.json,
model.safetensors, tokenizer.json, tokenizer_config.json) that ``path`` can name:
a network of ``hidden_size`` x ``layers`` initialised by transformers from a seed, and a
byte-level BPE (the tokenizers library) trained on stories of the embedded grammar
(collapse.data.storygrammar), whose end-of-text is bos, eos and pad.

``pretrain_stories = N`` makes the folder a *pretrained* model (what ``init = "pretrained"``
fine-tunes): after the random initialisation, the network is trained on N stories of the
embedded grammar by the hf family's own training (HFFamily.fit: train.train_lm), then saved.
Those stories are ``sample_stories(N, pretrain_seed)``: a raw seed, while a study draws its
real, held-out and fresh stories from ``derive_seed(data.seed, tag)`` (64-bit hashes), so the
pretraining stream is not a study's (the grammar can still produce the same short story in
both by chance, as it can inside one study).
"""

from __future__ import annotations

import os
import shutil
from typing import Any, Dict, Optional

import torch

from ..data.storygrammar import sample_stories
from ..errors import CollapseError
from ..files import move_directory, temporary_name
from ..transformer.tokenizer import TextTokenizer
from .model import quiet_transformers, save_tokenizer_files

TINY_TYPES = ("gpt2", "llama", "gpt_neox", "opt", "gpt_neo")
# the pretraining stream's default seed: not a value a study's derive_seed draws from
PRETRAIN_SEED = 9_100_001


def tiny_fields(model_type: str, hidden_size: int = 32, layers: int = 2, heads: int = 4,
                positions: int = 256) -> Dict[str, Any]:
    """Config fields (AutoConfig.for_model) of a tiny ``model_type``; vocab_size and the
    special ids are the tokenizer's."""
    h, n = int(hidden_size), int(layers)
    fields: Dict[str, Dict[str, Any]] = {
        "gpt2": dict(n_embd=h, n_layer=n, n_head=heads, n_positions=positions, n_inner=4 * h),
        "llama": dict(hidden_size=h, intermediate_size=4 * h, num_hidden_layers=n, num_attention_heads=heads,
                      num_key_value_heads=heads, max_position_embeddings=positions),
        "gpt_neox": dict(hidden_size=h, intermediate_size=4 * h, num_hidden_layers=n, num_attention_heads=heads,
                         max_position_embeddings=positions),
        "opt": dict(hidden_size=h, ffn_dim=4 * h, num_hidden_layers=n, num_attention_heads=heads,
                    max_position_embeddings=positions, word_embed_proj_dim=h),
        "gpt_neo": dict(hidden_size=h, num_layers=n, num_heads=heads, max_position_embeddings=positions,
                        attention_types=[[["global", "local"], max(1, n // 2)]], window_size=positions // 2),
    }
    if model_type not in fields:
        raise CollapseError(f"make-tiny: model type {model_type!r} (choose from {', '.join(TINY_TYPES)})")
    if h % heads:
        raise CollapseError(f"make-tiny: hidden size {h} is not divisible by {heads} heads")
    return {"model_type": model_type, **fields[model_type]}


def grammar_tokenizer(vocab_size: int = 400, documents: int = 2000, seed: int = 0) -> TextTokenizer:
    """A byte-level BPE trained on ``documents`` stories of the embedded grammar."""
    return TextTokenizer.train_bpe(list(sample_stories(documents, seed).texts()), vocab_size)


def make_tiny(directory: str, model_type: str = "gpt2", *, hidden_size: int = 32, layers: int = 2, heads: int = 4,
              positions: int = 256, vocab_size: int = 400, seed: int = 0, tokenizer: Any = None,
              pretrain_stories: int = 0, pretrain_epochs: int = 2, pretrain_seed: int = PRETRAIN_SEED,
              pretrain_settings: Optional[Dict[str, Any]] = None) -> str:
    """Write a tiny random ``model_type`` and its tokenizer into ``directory`` (new or
    empty; written into a temporary folder, then renamed). ``tokenizer``: a TextTokenizer
    to use instead of training one. ``pretrain_stories`` > 0: then train it on that many
    grammar stories drawn with ``pretrain_seed`` for ``pretrain_epochs`` epochs (the module
    docstring); ``pretrain_settings``: more hf training keys (lr, batch_size, ...). Returns
    the directory."""
    from transformers import AutoConfig, AutoModelForCausalLM

    directory = os.fspath(directory)
    if os.path.exists(directory) and (not os.path.isdir(directory) or os.listdir(directory)):
        raise CollapseError(f"make-tiny: {directory} exists and is not an empty folder")
    fields = tiny_fields(model_type, hidden_size, layers, heads, positions)
    if pretrain_stories:
        check_pretraining(pretrain_stories, pretrain_epochs)
    tok = tokenizer or grammar_tokenizer(vocab_size, seed=seed)
    config = AutoConfig.for_model(**fields, vocab_size=tok.vocab_size, bos_token_id=tok.eot_id,
                                  eos_token_id=tok.eot_id, pad_token_id=tok.eot_id)
    quiet_transformers()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    parent = os.path.dirname(os.path.abspath(directory))
    os.makedirs(parent, exist_ok=True)
    tmp = temporary_name(os.path.abspath(directory))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        save_tokenizer_files(tok, tmp)
        if pretrain_stories:
            # rows of every position the model has: generation (a prompt + new tokens) may
            # run to the last position, which must have been trained
            pretrain(tmp, pretrain_stories, epochs=pretrain_epochs, seed=pretrain_seed,
                     context_length=positions, settings=pretrain_settings)
        move_directory(tmp, directory)  # over an empty folder (checked above)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return directory


def check_pretraining(stories: int, epochs: int) -> None:
    for name, v in (("pretrain stories", stories), ("pretrain epochs", epochs)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise CollapseError(f"make-tiny: {name} must be a positive integer, got {v!r}")


def pretrain(folder: str, stories: int, *, epochs: int = 2, seed: int = PRETRAIN_SEED, context_length: int = 128,
             settings: Optional[Dict[str, Any]] = None) -> None:
    """Train the model in ``folder`` on ``stories`` grammar stories drawn with ``seed`` by
    the hf family's own fit (init = "pretrained": from the folder's weights), and write the
    trained weights back into the folder (its tokenizer and config unchanged)."""
    from .family import HFFamily

    check_pretraining(stories, epochs)
    table = {"path": folder, "init": "pretrained", "epochs": epochs, "context_length": context_length,
             "lr": 3e-3, "batch_size": 16, "micro_batch_size": 16, "device": "cpu",
             "max_new_tokens": 1, **(settings or {})}  # max_new_tokens: no sampling here, only the positions check
    family = HFFamily.from_config(table)
    model = family.fit(sample_stories(stories, seed), seed=seed)
    model.lm.save_pretrained(folder)
