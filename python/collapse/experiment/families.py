"""The built-in families' registrations (n-gram, transformer): what a family of a user's own writes too.

Each is a function of no arguments returning a FamilyRegistration, registered by name in
collapse.experiment.registry. The transformer's imports torch only inside its functions,
so a config without a transformer model never imports it.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Dict, Sequence

import numpy as np

from ..errors import CollapseError
from ..ngram.family import NGramFamily
from ..validate import integer, prune_thresholds
from .family import DeviceUse, FamilyOptions, FamilyRegistration, ModelFamily, Resources, Settings
from .tables import Table, fail, resolve_path, scalar_or_list

SMOOTHINGS = ("mkn", "kn", "addk", "mle")


# -- n-gram ---------------------------------------------------------------------------

def _order(name: str, v: Any) -> int:
    return integer(name, v, 1, fail=fail)


def _ngram_validate(t: Table, base_dir: str) -> Settings:
    orders = scalar_or_list(t, "order", "orders", [3], _order)
    smoothing = t.str_("smoothing", "mkn", SMOOTHINGS)
    prune = t.get("prune", [])
    # checked against the lowest order: the thresholds are repeated for the higher ones
    prune_thresholds(t.f("prune"), prune, min(orders), smoothing, fail=fail)
    return {"orders": orders, "smoothing": smoothing, "prune": [int(v) for v in prune]}


def _ngram_toml(s: Settings) -> Dict[str, Any]:
    prune = {"prune": s["prune"]} if any(s["prune"]) else {}  # absent when unpruned: old configs unchanged
    return {"orders": s["orders"], "smoothing": s["smoothing"], **prune}


def _ngram_factory(s: Settings, options: FamilyOptions) -> ModelFamily:
    return NGramFamily(options.order, s["smoothing"], threads=options.threads, compression=options.compression,
                       prune=s["prune"])


def _ngram_downstream(job: Any) -> np.ndarray:
    from .downstream.ngram import ngram_predict

    return ngram_predict(job.data, job.train if job.pretrained else None, job.order, job.settings["smoothing"],
                         job.threads)


def ngram_registration() -> FamilyRegistration:
    """``family = "ngram"``: order / orders (a sweep: one cell per order), smoothing, prune."""
    return FamilyRegistration(
        validate=_ngram_validate, factory=_ngram_factory, to_toml=_ngram_toml,
        describe=lambda s: {"orders": s["orders"], "smoothing": s["smoothing"]},
        sweep=lambda s: list(s["orders"]),
        resources=Resources(torchrun=False, cheap_fit=True),  # an M_0 is cheaper than an idle core
        downstream=_ngram_downstream)


# -- a family that checks its own table ---------------------------------------------------

def checked_table(t: Table, base_dir: str, family: str, check: Callable[[Settings], None],
                  path_keys: Sequence[str] = (), prefixes: Sequence[str] = ()) -> Settings:
    """The validation of a family that checks its own table (the transformer's, and any
    like it): every key but family and name as given, the file paths among ``path_keys``
    resolved against the config's folder, then ``check(table)``, whose CollapseError is
    turned into the config's style, naming the first key the message mentions
    ("model[1].hidden_size: ...", "model.hiden_size: unknown model setting 'hiden_size'
    (did you mean 'hidden_size'?)"), without the family's own ``prefixes`` ("transformer: ")."""
    table = t.rest()
    for key in path_keys:
        if isinstance(table.get(key), str):
            table[key] = resolve_path(base_dir, table[key])
    try:
        check(dict(table))
    except ImportError as e:  # the family's optional dependencies (torch) are missing
        raise t.fail("family", f"the {family} family is not available ({e})") from None
    except CollapseError as e:
        text = str(e)
        message = text.split(": ", 1)[-1] if text.startswith(tuple(prefixes)) else text
        # the key the message names, or the file key whose (resolved) path it quotes
        keys = sorted((k for k in table if k in message), key=lambda k: (message.find(k), -len(k)))
        keys = keys or [k for k in path_keys if isinstance(table.get(k), str) and table[k] in message]
        raise fail(t.f(keys[0]) if keys else t.name, message) from None
    return table


# -- transformer ----------------------------------------------------------------------

def _transformer_check(table: Settings) -> None:
    try:
        from ..transformer.family import TransformerFamily  # torch: only when a config names the family
    except CollapseError as e:  # the package's own message when torch is missing
        raise ImportError(str(e)) from None
    TransformerFamily.from_config(table, check_only=True)


def _transformer_validate(t: Table, base_dir: str) -> Settings:
    return checked_table(t, base_dir, "transformer", _transformer_check, path_keys=("tokenizer", "tokenizer_corpus"),
                         prefixes=("transformer: ", "GPT-Neo config: ", "training: ", "sampling: "))


def _transformer_factory(s: Settings, options: FamilyOptions) -> ModelFamily:
    from ..transformer.family import TransformerFamily

    table = dict(s)
    table.setdefault("progress", options.progress)  # [experiment] progress = false silences the family too
    return TransformerFamily.from_config(table)


def table_device(s: Settings) -> DeviceUse:
    """Where a family with the transformer's ``device`` ("auto" | "cpu" | "cuda" | "cuda:N")
    and ``share_device`` settings runs: on CUDA or not, the visible GPUs (torch is imported
    only for a device that is not "cpu")."""
    device, share = str(s.get("device", "auto")), bool(s.get("share_device", False))
    if device == "cpu":
        return DeviceUse(False, 0, device, share)
    import torch

    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return DeviceUse(n > 0 and (device == "auto" or device.startswith("cuda")), n, device, share)


def _transformer_downstream(job: Any) -> np.ndarray:
    from .downstream.transformer import finetune_predict

    model = job.model
    if not os.path.exists(os.path.join(job.folder, "config.json")):
        model.model.save_pretrained(job.folder)  # the Hugging Face folder the classifier loads
    return finetune_predict(job.folder, model.tokenizer, job.data, pretrained=job.pretrained, seed=job.seed,
                            max_length=job.max_length, batch_size=job.batch_size, lr=job.lr, epochs=job.epochs,
                            threads=job.threads, device=str(model.device))


def transformer_registration() -> FamilyRegistration:
    """``family = "transformer"``: the GPT-Neo family's table (collapse.transformer.family);
    its ranks train together under torchrun, it runs on GPUs, its M_0 is the expensive part."""
    return FamilyRegistration(
        validate=_transformer_validate, factory=_transformer_factory,
        resources=Resources(torchrun=True, cheap_fit=False, device=table_device),
        downstream=_transformer_downstream)



# -- hf ---------------------------------------------------------------------------------

def _hf_check(table: Settings) -> None:
    try:
        from ..hf.family import HFFamily  # torch and transformers: only when a config names the family
    except CollapseError as e:
        raise ImportError(str(e)) from None
    HFFamily.from_config(table, check_only=True)


def _hf_validate(t: Table, base_dir: str) -> Settings:
    return checked_table(t, base_dir, "hf", _hf_check, path_keys=("path", "tokenizer", "tokenizer_corpus"),
                         prefixes=("hf: ", "training: ", "sampling: "))


def _hf_factory(s: Settings, options: FamilyOptions) -> ModelFamily:
    from ..hf.family import HFFamily

    table = dict(s)
    table.setdefault("progress", options.progress)
    return HFFamily.from_config(table)


def hf_registration() -> FamilyRegistration:
    """``family = "hf"``: any transformers causal LM from a local folder or an architecture
    table (collapse.hf, docs/hf.md); placed like the transformer family (torchrun ranks,
    GPUs). No downstream evaluation yet: a [downstream] study with it is refused."""
    return FamilyRegistration(
        validate=_hf_validate, factory=_hf_factory,
        resources=Resources(torchrun=True, cheap_fit=False, device=table_device), uses_source_text=True)
