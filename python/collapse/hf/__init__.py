"""The hf family: any transformers causal LM in the loop (needs torch and transformers).

Nothing outside this subpackage and collapse.transformer imports torch, so the n-gram side
works without it. Nothing is downloaded and no code from a model folder is run.
"""

from __future__ import annotations

try:
    import torch  # noqa: F401
    import transformers  # noqa: F401
except ImportError as e:  # pragma: no cover - depends on the environment
    from ..errors import CollapseError

    raise CollapseError("the hf family needs PyTorch and transformers: pip install 'collapse[torch]' transformers") from e

from .family import HFFamily, HFModel

__all__ = ["HFFamily", "HFModel"]
