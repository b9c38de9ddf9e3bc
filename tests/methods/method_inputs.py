"""Inputs shared by the method tests, imported as a plain module (pytest puts this folder on sys.path)."""
from __future__ import annotations

import torch
from torch import Tensor


def huge_pairs(scale: float = 1e4) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """u1 (4, 8) and u2 (5, 8) of entries +-scale that require grad, and one-hot labels y1 (4, 3), y2 (5, 3).

    Seeded; similar and dissimilar pairs both occur, with inner products up to 8 * scale^2 in magnitude.
    """
    g = torch.Generator().manual_seed(0)
    u1 = (scale * (torch.randint(0, 2, (4, 8), generator=g) * 2 - 1).float()).requires_grad_()
    u2 = (scale * (torch.randint(0, 2, (5, 8), generator=g) * 2 - 1).float()).requires_grad_()
    y1 = torch.eye(3)[torch.randint(0, 3, (4,), generator=g)]
    y2 = torch.eye(3)[torch.randint(0, 3, (5,), generator=g)]
    return u1, u2, y1, y2
