"""BiHalf (Li & van Gemert, AAAI 2021, "Deep Unsupervised Image Hashing by Maximizing Bit Entropy"; specs:
methods-unsupervised.md section 5).

The bi-half layer, in training, codes each bit half +1 and half -1 over the batch:
    forward:  for each bit k, rank u_{.k} in descending order (stable: equal values keep row order);
              the first floor(B/2) ranks -> +1, the other ceil(B/2) -> -1
    backward: dL/du = dL/db + gamma (u - b) / (B K)
(a straight-through estimate plus the gradient of (gamma/2) mean((u - sg(b))^2)); in evaluation b = sign(u).
The loss copies a reference similarity (hashnet.methods.pair_cosine): L = pair_cos_mse(b, f).
gamma = 6 for image hashing (the authors' Cifar10_I/II, DeepHash-pytorch, FIRe).
"""
from __future__ import annotations

import torch
from torch import Tensor

from hashnet.methods.common import check_number
from hashnet.methods.pair_cosine import pair_cos_mse
from hashnet.methods.reference import ReferenceMethod


def bihalf_forward(u: Tensor) -> Tensor:
    """u (B, K) -> b (B, K) in {-1, +1}, u's dtype: per column, the floor(B/2) largest (stable ranks) +1."""
    order = torch.sort(u, dim=0, descending=True, stable=True).indices
    b = torch.full_like(u, -1.0)
    return b.scatter(0, order[:len(u) // 2], 1.0)


def bihalf_grad(u: Tensor, b: Tensor, grad_b: Tensor, gamma: float = 6.0) -> Tensor:
    """dL/du = dL/db + gamma (u - b) / (B K), all (B, K)."""
    return grad_b + gamma * (u - b) / u.numel()


class _BiHalf(torch.autograd.Function):
    @staticmethod
    def forward(ctx, u: Tensor, gamma: float) -> Tensor:
        b = bihalf_forward(u)
        ctx.save_for_backward(u, b)
        ctx.gamma = gamma
        return b

    @staticmethod
    def backward(ctx, grad_b: Tensor) -> tuple[Tensor, None]:
        u, b = ctx.saved_tensors
        return bihalf_grad(u, b, grad_b, ctx.gamma), None


def bihalf(u: Tensor, gamma: float = 6.0) -> Tensor:
    """The bi-half layer: bihalf_forward(u) (exactly +-1) with bihalf_grad as its backward."""
    return _BiHalf.apply(u, gamma)


def bihalf_loss(b: Tensor, f: Tensor) -> Tensor:
    """b (B, K) = bihalf(u), f (B, D) the reference (no gradient) -> scalar: pair_cos_mse(b, f)."""
    return pair_cos_mse(b, f)


class BiHalf(ReferenceMethod):
    """BiHalf: h = u (the hash layer's outputs); the training loss is bihalf_loss(bihalf(u, gamma), f)."""

    name = "bihalf"

    def __init__(self, hash_bit: int, num_classes: int, multi_label: bool, gamma: float, reference: str,
                 reference_centre: bool) -> None:
        super().__init__(hash_bit, num_classes, multi_label, reference, reference_centre)
        check_number("gamma", gamma, example=6.0)
        self.gamma = gamma

    def reference_loss(self, h: Tensor, f: Tensor) -> Tensor:
        return bihalf_loss(bihalf(h, self.gamma), f)
