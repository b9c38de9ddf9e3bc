"""The project's one sign convention: sign(0) = +1, so every real output maps to a code in {-1, +1}."""
from __future__ import annotations

import torch
from torch import Tensor


def sign(x: Tensor) -> Tensor:
    """Elementwise sign in x's dtype and shape, with sign(0) = +1."""
    return torch.where(x >= 0, 1.0, -1.0).to(x.dtype)
