"""hashnet: HashNet (Cao et al., ICCV 2017) on PyTorch Lightning + Hydra.

The Python API, imported on first use so that `import hashnet` stays light:

    from hashnet import Hasher, HammingIndex
    hasher = Hasher.from_checkpoint("outputs/.../checkpoints/last.ckpt")   # hashnet.inference.hasher
"""
from __future__ import annotations

import importlib
from typing import Any

_LAZY = {"Hasher": "hashnet.inference.hasher", "HammingIndex": "hashnet.retrieval.index"}
__all__ = ["HammingIndex", "Hasher"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'hashnet' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
