"""The straight-through sign that GreedyHash, GreedyHash-unsupervised and CIBHash share: sign(x) forward (sign(0) =
+1, exactly +-1), the gradient passed to x unchanged (a module of its own, so importing it registers no method)."""
from __future__ import annotations

import torch
from torch import Tensor

from hashnet.utils.signs import sign


class _SignSTE(torch.autograd.Function):
    """sign (sign(0) = +1) forward, identity backward."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        return sign(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        return grad


def sign_ste(x: Tensor) -> Tensor:
    """Elementwise sign of x (sign(0) = +1, exactly +-1 in x's dtype) whose gradient is the identity.

    Under torch.jit.trace (exports) it is plain sign: TorchScript cannot save the autograd.Function.
    """
    return sign(x) if torch.jit.is_tracing() else _SignSTE.apply(x)
