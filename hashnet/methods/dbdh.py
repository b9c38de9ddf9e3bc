"""DBDH: Deep Balanced Discrete Hashing (Neurocomputing 2020).

DPSH's pairwise likelihood on clamped codes h = clamp(z, -1, 1) plus a bit-balance term that pulls the mean of each
code's K entries towards 0:

    L = mean_ij(softplus(theta_ij) - s_ij * theta_ij),   theta_ij = scale * <u1_i, u2_j>
        + balance_weight * mean over the rows r of cat(u1, u2) of |mean_k r_k|^power

The clamp follows DeepHash-pytorch (swuxyj) and cisip-FIRe, whose formulas agree; the paper's abstract describes
binary codes in the forward pass with a straight-through estimator instead (no authors' code was found).
"""
from __future__ import annotations

import torch
from torch import Tensor

from hashnet.methods.base import PairwiseMethod
from hashnet.methods.common import check_number, pairwise_likelihood, regularized


def dbdh_loss(u1: Tensor, u2: Tensor, y1: Tensor, y2: Tensor, balance_weight: float = 0.1, power: float = 2,
              scale: float = 0.5, regularize_u2: bool = True) -> Tensor:
    """DBDH's loss (module docstring) for codes u1 (B1, K), u2 (B2, K), 0/1 labels y1 (B1, C), y2 (B2, C) -> scalar;
    regularize_u2=False: the balance term covers u1 only (u2 a memory bank)."""
    balance = regularized(u1, u2, regularize_u2).mean(dim=1).abs().pow(power).mean()
    return pairwise_likelihood(u1, u2, y1, y2, scale) + balance_weight * balance


class DBDH(PairwiseMethod):
    """DBDH: h = clamp(z, -1, 1) (gradient 0 outside), dbdh_loss's scale, balance_weight and power."""

    name = "dbdh"
    pair_loss = staticmethod(dbdh_loss)

    def __init__(self, hash_bit: int, num_classes: int, multi_label: bool, pairs: str, scale: float,
                 balance_weight: float, power: float, bank_size: int | None = None) -> None:
        check_number("scale", scale, strict=True, example=0.5)
        check_number("balance_weight", balance_weight)
        check_number("power", power, minimum=1, example=2)
        super().__init__(hash_bit, num_classes, multi_label, pairs, bank_size, scale=scale,
                         balance_weight=balance_weight, power=power)

    def forward(self, z: Tensor) -> Tensor:
        """z (N, K) -> clamp(z, -1, 1) (N, K)."""
        return torch.clamp(z, -1, 1)
