"""DPSH: Deep Pairwise-Supervised Hashing (Li, Wang, Kang, IJCAI 2016).

The hash layer's outputs u are used as they are (no output activation). The pairwise likelihood
is DHN's (theta_ij = scale * <u1_i, u2_j>); the quantization term is the squared distance of
each output to its sign, the paper's ||b_i - u_i||^2 with b = sign(u):

    L = mean_ij(softplus(theta_ij) - s_ij * theta_ij)
        + quantization_weight * mean over the entries of cat(u1, u2) of (u - sign(u))^2,  sign(0) = +1

Defaults: scale = 0.5 is the paper's Theta_ij = u_i^T u_j / 2. quantization_weight = 0.1 is
DeepHash-pytorch's DPSH config (swuxyj); the paper's eta (10 on CIFAR-10, 50 on NUS-WIDE in the
authors' DPSH-pytorch) weights a term normalised per pair of the train set, not per entry, so its
value does not carry over to this mean.
"""
from __future__ import annotations

from torch import Tensor

from hashnet.methods.common import pairwise_likelihood, regularized
from hashnet.methods.dhn import DHN
from hashnet.utils.signs import sign


def dpsh_loss(u1: Tensor, u2: Tensor, y1: Tensor, y2: Tensor,
              scale: float = 0.5, quantization_weight: float = 0.1, regularize_u2: bool = True) -> Tensor:
    """DPSH's loss (module docstring) for codes u1: (B1, K), u2: (B2, K) and 0/1 labels y1: (B1, C),
    y2: (B2, C) -> scalar; regularize_u2=False: the
    regulariser covers u1 only (u2 a memory bank)."""
    u = regularized(u1, u2, regularize_u2)
    return pairwise_likelihood(u1, u2, y1, y2, scale) + quantization_weight * (u - sign(u)).pow(2).mean()


class DPSH(DHN):
    """DPSH on the hash layer's outputs u (no activation): DHN's settings (pairs, scale, quantization_weight)
    with DPSH's quantization term."""

    name = "dpsh"
    pair_loss = staticmethod(dpsh_loss)
