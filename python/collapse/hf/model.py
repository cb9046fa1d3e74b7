"""Hugging Face causal LMs from local folders or config fields: checked, never downloaded, no remote code.

A folder (``path``) holds config.json, the weights (model.safetensors, sharded
safetensors with their index, or pytorch_model.bin read by transformers with
torch.load(weights_only=True)) and the tokenizer (tokenizer.json, or files that
transformers' own fast tokenizer converts: vocab.json + merges.txt, tokenizer.model).
Everything is read with ``local_files_only=True`` and ``trust_remote_code=False``; a
config that names code of its own (``auto_map``) or a model type this transformers does
not know is refused with one line, before transformers is asked.

An ``architecture`` table is config fields with ``model_type``:
``AutoConfig.for_model(model_type, **fields)``, a fresh network every time it is built.
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Optional

import torch

from ..errors import CollapseError
from ..transformer.backend import HFCausalLM
from ..transformer.tokenizer import END_OF_TEXT, TextTokenizer
from ..validate import did_you_mean

CONFIG_FILE = "config.json"
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json")
TOKENIZER_FILE = "tokenizer.json"
# what transformers' fast tokenizers are converted from when a folder has no tokenizer.json
SLOW_TOKENIZER_FILES = (("vocab.json", "merges.txt"), ("tokenizer.model",))


def quiet_transformers() -> None:
    """transformers' own progress bars and advisory warnings off (our progress is ours)."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def causal_lm_types() -> List[str]:
    """The model types transformers builds with AutoModelForCausalLM."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    return sorted(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES)


def check_model_type(model_type: Any, where: str) -> str:
    """model_type as a name transformers builds a causal LM for, or a one-line error."""
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

    if not isinstance(model_type, str) or not model_type:
        raise CollapseError(f"{where}: model_type must be a non-empty string, got {model_type!r}")
    known = causal_lm_types()
    if model_type not in CONFIG_MAPPING_NAMES:
        raise CollapseError(f"{where}: unknown model_type {model_type!r} (not built into transformers; a model "
                            f"that needs custom code is not run){did_you_mean(model_type, known)}")
    if model_type not in known:
        raise CollapseError(f"{where}: model_type {model_type!r} is not a causal language model "
                            f"(AutoModelForCausalLM does not build it)")
    return model_type


def read_config(path: str) -> Dict[str, Any]:
    """A folder's config.json as a dict, checked for what we can run."""
    cfg_path = os.path.join(path, CONFIG_FILE)
    if not os.path.isdir(path):
        raise CollapseError(f"{path}: no such model folder")
    if not os.path.isfile(cfg_path):
        raise CollapseError(f"{path}: missing {CONFIG_FILE} (not a Hugging Face model folder)")
    try:
        with open(cfg_path, encoding="utf-8") as f:
            d = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise CollapseError(f"{cfg_path}: unreadable ({e})") from None
    if not isinstance(d, dict):
        raise CollapseError(f"{cfg_path}: not a JSON object")
    if d.get("auto_map"):
        raise CollapseError(f"{path}: the model needs custom code (config.json has auto_map); "
                            "remote code is never run")
    check_model_type(d.get("model_type"), cfg_path)
    return d


def weight_file(path: str) -> str:
    """The folder's weights (the first of WEIGHT_FILES present), or a one-line error."""
    for name in WEIGHT_FILES:
        if os.path.isfile(os.path.join(path, name)):
            return name
    raise CollapseError(f"{path}: missing weights (none of {', '.join(WEIGHT_FILES)})")


def has_tokenizer(path: str) -> bool:
    return os.path.isfile(os.path.join(path, TOKENIZER_FILE)) or any(
        all(os.path.isfile(os.path.join(path, f)) for f in group) for group in SLOW_TOKENIZER_FILES)


def check_folder(path: str, *, weights: bool = True, tokenizer: bool = True) -> Dict[str, Any]:
    """Check a model folder (config.json, weights, tokenizer files) and return its config dict."""
    d = read_config(path)
    if weights:
        weight_file(path)
    if tokenizer and not has_tokenizer(path):
        raise CollapseError(f"{path}: missing tokenizer files ({TOKENIZER_FILE}, or vocab.json + merges.txt, "
                            "or tokenizer.model)")
    return d


def folder_config(path: str) -> Any:
    """A folder's config as a transformers config object."""
    from transformers import AutoConfig

    read_config(path)
    quiet_transformers()
    try:
        return AutoConfig.from_pretrained(path, local_files_only=True, trust_remote_code=False)
    except (OSError, ValueError, TypeError) as e:
        raise CollapseError(f"{path}: cannot read the config ({str(e).splitlines()[0]})") from None


def architecture_config(fields: Dict[str, Any], where: str = "hf: architecture") -> Any:
    """AutoConfig.for_model(model_type, **fields): a config built from a table's fields."""
    from transformers import AutoConfig

    if not isinstance(fields, dict):
        raise CollapseError(f"{where} must be a table of config fields with model_type")
    fields = dict(fields)
    model_type = check_model_type(fields.pop("model_type", None), where)
    try:
        return AutoConfig.for_model(model_type, **fields)
    except (ValueError, TypeError) as e:
        raise CollapseError(f"{where}: bad config field ({str(e).splitlines()[0]})") from None


def build_model(config: Any) -> HFCausalLM:
    """A freshly initialised network of ``config`` (its initialisation follows torch's seed)."""
    from transformers import AutoModelForCausalLM

    quiet_transformers()
    try:
        model = AutoModelForCausalLM.from_config(config, trust_remote_code=False, dtype=torch.float32)
    except (ValueError, TypeError) as e:
        raise CollapseError(f"hf: cannot build {getattr(config, 'model_type', '?')} "
                            f"({str(e).splitlines()[0]})") from None
    return HFCausalLM(model.float())


def load_model(path: str, device: Optional[torch.device] = None) -> HFCausalLM:
    """The folder's network and weights in float32 (local files only, no remote code)."""
    from transformers import AutoModelForCausalLM

    read_config(path)
    weight_file(path)
    quiet_transformers()
    try:
        model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True, trust_remote_code=False,
                                                     dtype=torch.float32)
    except (OSError, ValueError, TypeError, KeyError) as e:
        raise CollapseError(f"{path}: cannot load the model ({str(e).splitlines()[0]})") from None
    model = model.float()
    if device is not None:
        model = model.to(device)
    return HFCausalLM(model)


def _token_text(value: Any) -> Optional[str]:
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) and value else None


def folder_eos_token(path: str) -> Optional[str]:
    """The end-of-sequence token a folder names (tokenizer_config.json, special_tokens_map.json)."""
    for name in ("tokenizer_config.json", "special_tokens_map.json"):
        file = os.path.join(path, name)
        if os.path.isfile(file):
            try:
                with open(file, encoding="utf-8") as f:
                    token = _token_text(json.load(f).get("eos_token"))
            except (OSError, json.JSONDecodeError, AttributeError):
                token = None
            if token:
                return token
    return None


def folder_tokenizer(path: str, eot_token: Optional[str] = None) -> TextTokenizer:
    """A folder's tokenizer (its tokenizer.json, or transformers' fast conversion of its
    slow files), whose end-of-text is ``eot_token`` or else the folder's eos token (or
    else the token of config.json's eos_token_id, or ``<|endoftext|>``)."""
    from tokenizers import Tokenizer

    if os.path.isfile(path):  # a tokenizer.json given directly
        return TextTokenizer.from_file(path, eot_token or END_OF_TEXT)
    if not os.path.isdir(path):
        raise CollapseError(f"{path}: no such tokenizer folder or file")
    file = os.path.join(path, TOKENIZER_FILE)
    if os.path.isfile(file):
        try:
            tok = Tokenizer.from_file(file)
        except Exception as e:  # noqa: BLE001 - tokenizers raises its own Exception type for bad JSON
            raise CollapseError(f"{file}: not a tokenizers JSON file ({e})") from None
    elif has_tokenizer(path):
        from transformers import AutoTokenizer

        quiet_transformers()
        try:
            fast = AutoTokenizer.from_pretrained(path, local_files_only=True, trust_remote_code=False, use_fast=True)
        except (OSError, ValueError, TypeError) as e:
            raise CollapseError(f"{path}: cannot read the tokenizer ({str(e).splitlines()[0]})") from None
        if not hasattr(fast, "backend_tokenizer"):
            raise CollapseError(f"{path}: the tokenizer has no fast (tokenizers) version")
        tok = fast.backend_tokenizer
    else:
        raise CollapseError(f"{path}: missing tokenizer files ({TOKENIZER_FILE}, or vocab.json + merges.txt, "
                            "or tokenizer.model)")
    eot = eot_token or folder_eos_token(path)
    if eot is None and os.path.isfile(os.path.join(path, CONFIG_FILE)):
        with open(os.path.join(path, CONFIG_FILE), encoding="utf-8") as f:
            eos_id = json.load(f).get("eos_token_id")
        if isinstance(eos_id, list):
            eos_id = eos_id[0] if eos_id else None
        eot = tok.id_to_token(int(eos_id)) if isinstance(eos_id, int) else None
    return TextTokenizer(tok, eot or END_OF_TEXT)


def save_tokenizer_files(tokenizer: TextTokenizer, directory: str) -> None:
    """tokenizer.json and a tokenizer_config.json that transformers' AutoTokenizer reads
    (PreTrainedTokenizerFast, the end-of-text as bos, eos and pad)."""
    tokenizer.save(os.path.join(directory, TOKENIZER_FILE))
    eot = tokenizer.eot_token
    with open(os.path.join(directory, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump({"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": eot, "eos_token": eot,
                   "pad_token": eot, "model_max_length": 1 << 30}, f, indent=2)
        f.write("\n")
