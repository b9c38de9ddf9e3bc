"""Inputs shared by the method tests, imported as a plain module (pytest puts this folder on sys.path)."""
from __future__ import annotations

import torch
from torch import Tensor


def huge_codes(rows: int = 8, bits: int = 16, scale: float = 1e4) -> Tensor:
    """(rows, bits) float32 of entries +-scale that requires grad; seeded.

    Inner products reach bits * scale^2 in magnitude (1.6e9 by default): anything exponentiated overflows.
    """
    g = torch.Generator().manual_seed(0)
    return (scale * (torch.randint(0, 2, (rows, bits), generator=g) * 2 - 1).float()).requires_grad_()
