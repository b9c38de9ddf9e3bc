"""Binary codes: from network outputs to {-1,+1}."""
from __future__ import annotations

import torch
from torch import Tensor


def binarize(outputs: Tensor) -> Tensor:
    """outputs: (N, K) real -> codes: (N, K) int8 in {-1,+1}, with sign(0) = +1."""
    return torch.where(outputs >= 0, 1, -1).to(torch.int8)
