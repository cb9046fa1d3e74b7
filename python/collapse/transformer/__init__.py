"""The transformer family: GPT-Neo in plain PyTorch (needs the ``collapse[torch]`` extra).

Nothing outside this subpackage imports torch, so the n-gram side works without it.
"""

from __future__ import annotations

try:
    import torch  # noqa: F401
except ImportError as e:  # pragma: no cover - depends on the environment
    from ..errors import CollapseError

    raise CollapseError("the transformer family needs PyTorch: pip install 'collapse[torch]'") from e

from .model import GPTNeo, GPTNeoConfig, KVCache

__all__ = ["GPTNeo", "GPTNeoConfig", "KVCache"]
