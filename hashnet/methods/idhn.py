"""IDHN: Improved Deep Hashing with Soft Pairwise Similarity (Zhang, Zou, Lin, Chen, Wang, IEEE TMM 2019).

Codes h = softsign(hash layer) = z / (1 + |z|) (the authors' pectinid16/IDHN alexnet.py
`tf.nn.softsign`). The similarity of two images is the cosine of their label vectors; pairs whose
similarity is (almost) 0 or 1 are scored by the pairwise likelihood, the others ("soft" pairs,
partially overlapping label sets) by a squared error between the normalised inner product and s:

    s_ij    = <y1_i, y2_j> / (|y1_i| * |y2_j|), 0 where either row has no label    (soft_similarity)
    hard_ij = s_ij > 0.99 or s_ij < 0.01
    ip_ij   = <h1_i, h2_j>;   theta_ij = (beta / K) * ip_ij
    ce_ij   = softplus(theta_ij) - s_ij * theta_ij                                 hard pairs
    mse_ij  = gamma * K * ((ip_ij + K) / (2K) - s_ij)^2                            soft pairs
    L = mean over pairs of (ce_ij if hard_ij else mse_ij)
        + regularization_weight * mean over the entries of cat(h1, h2) of | |h| - 1 |

This is the authors' train.py `hashing_loss` (their `belta` 5, `gama` 0.1, `alpha` 0.1) over the
given sets. DeepHash-pytorch's IDHN.py differs: theta = 0.5 * <h, h'>, the soft term
gamma * (theta + K - 2Ks)^2 on that halved product without the 1/(4K) (each soft pair of order
gamma K^2 against order 1 for a hard pair), and 1e-5 added to the product of the label norms; we
follow the authors. With one label per image every pair is hard: the loss is the pairwise likelihood
with theta = (beta / K) * ip, plus the regulariser.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from hashnet.methods.base import PairwiseMethod
from hashnet.methods.common import check_number, regularized


def soft_similarity(y1: Tensor, y2: Tensor) -> Tensor:
    """Cosine of the label vectors: y1 (B1, C), y2 (B2, C) 0/1 -> (B1, B2) in [0, 1], 0 where a row has no label.

    Floating labels keep their dtype; other labels (integer, bool) give float32. The norms' product is
    sqrt(|y1_i|^2 * |y2_j|^2), exact for 0/1 labels, so equal label sets give exactly 1.
    """
    y1 = y1 if y1.is_floating_point() else y1.float()
    y2 = y2.to(y1.dtype)
    norms = (y1.pow(2).sum(dim=1)[:, None] * y2.pow(2).sum(dim=1)[None, :]).sqrt()
    return torch.where(norms > 0, (y1 @ y2.T) / norms.clamp(min=torch.finfo(y1.dtype).tiny), 0.0)


def idhn_loss(h1: Tensor, h2: Tensor, y1: Tensor, y2: Tensor,
              beta: float = 5.0, gamma: float = 0.1, regularization_weight: float = 0.1,
              regularize_u2: bool = True) -> Tensor:
    """IDHN's loss (module docstring) for codes h1: (B1, K), h2: (B2, K) and 0/1 labels y1: (B1, C),
    y2: (B2, C) -> scalar in the codes' dtype; regularize_u2=False: the regulariser covers h1 only (h2 a
    memory bank).

    Both terms are computed for every pair and one is picked: each is finite for any finite codes (stable
    softplus; the squared term is about 2e16 at |h| = 1e4, K = 48, well inside float32).
    """
    k = h1.shape[1]
    s = soft_similarity(y1.to(h1.dtype), y2.to(h1.dtype))
    hard = (s > 0.99) | (s < 0.01)
    ip = h1 @ h2.T
    theta = beta / k * ip
    ce = F.softplus(theta) - s * theta
    mse = gamma * k * ((ip + k) / (2 * k) - s).pow(2)
    h = regularized(h1, h2, regularize_u2)
    return torch.where(hard, ce, mse).mean() + regularization_weight * (h.abs() - 1).abs().mean()


class IDHN(PairwiseMethod):
    """IDHN: h = softsign(hash layer); settings: idhn_loss's beta, gamma, regularization_weight."""

    name = "idhn"
    pair_loss = staticmethod(idhn_loss)

    def __init__(self, hash_bit: int, num_classes: int, multi_label: bool, pairs: str, beta: float, gamma: float,
                 regularization_weight: float, bank_size: int | None = None) -> None:
        check_number("beta", beta, strict=True, example=5)
        check_number("gamma", gamma, example=0.1)
        check_number("regularization_weight", regularization_weight)
        super().__init__(hash_bit, num_classes, multi_label, pairs, bank_size, beta=beta, gamma=gamma,
                         regularization_weight=regularization_weight)

    def forward(self, z: Tensor) -> Tensor:
        """z (N, K) -> softsign(z) = z / (1 + |z|) (N, K) in (-1, 1)."""
        return F.softsign(z)
