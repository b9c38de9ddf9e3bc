"""DHN: Deep Hashing Network (Zhu, Long, Wang, Cao, AAAI 2016).

The hash layer's outputs u are used as they are (no output activation). Each cross pair (i, j) is
a Bernoulli event s_ij with logit theta_ij = scale * <u1_i, u2_j>, and a smooth L1 penalty,
log cosh(|u| - 1), pulls every output towards +-1:

    L = mean_ij(softplus(theta_ij) - s_ij * theta_ij)
        + quantization_weight * mean over the entries of cat(u1, u2) of log cosh(|u| - 1)

Defaults: scale = 0.5 is the paper's theta_ij = <z_i, z_j> / 2 (also alpha=0.5 in the authors'
DeepHash-tensorflow code); quantization_weight = 0.1 is DeepHash-pytorch's DHN config (swuxyj).
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from hashnet.methods.base import PairwiseMethod
from hashnet.methods.common import check_number, pairwise_likelihood, regularized


def log_cosh(x: Tensor) -> Tensor:
    """Elementwise log(cosh(x)) = |x| + log1p(exp(-2|x|)) - log 2: finite for any x, gradient tanh(x)."""
    a = x.abs()
    return a + torch.log1p(torch.exp(-2 * a)) - math.log(2)


def dhn_loss(u1: Tensor, u2: Tensor, y1: Tensor, y2: Tensor,
             scale: float = 0.5, quantization_weight: float = 0.1, regularize_u2: bool = True) -> Tensor:
    """DHN's loss (module docstring) for codes u1: (B1, K), u2: (B2, K) and 0/1 labels y1: (B1, C),
    y2: (B2, C) -> scalar; regularize_u2=False: the
    regulariser covers u1 only (u2 a memory bank)."""
    u = regularized(u1, u2, regularize_u2)
    return pairwise_likelihood(u1, u2, y1, y2, scale) + quantization_weight * log_cosh(u.abs() - 1).mean()


class DHN(PairwiseMethod):
    """DHN on the hash layer's outputs u (no activation); settings: dhn_loss's scale, quantization_weight."""

    name = "dhn"
    pair_loss = staticmethod(dhn_loss)

    def __init__(self, hash_bit: int, num_classes: int, multi_label: bool, pairs: str, scale: float,
                 quantization_weight: float, bank_size: int | None = None) -> None:
        check_number("scale", scale, strict=True, example=0.5)
        check_number("quantization_weight", quantization_weight)
        super().__init__(hash_bit, num_classes, multi_label, pairs, bank_size, scale=scale,
                         quantization_weight=quantization_weight)
