"""DCH: Deep Cauchy Hashing (Cao, Long, Liu, Wang, CVPR 2018).

Codes h = tanh(hash layer) (the authors' thulab/DeepHash DCH, `--with-tanh` by default). Pairs are
scored by a Cauchy probability gamma / (gamma + d) of their normalised Hamming distance d, each image
by the Cauchy probability of its distance to the all-ones vector (quantization); the loss is
scale-invariant:

    cos(a, b) = <a, b> / max(|a| * |b|, 1e-4)
    d(a, b)   = (K / 2) * (1 - min(cos(a, b), 0.99))        Eq. 6; at least 0.005 K
    l_ij      = log1p(d_ij / gamma)  if s_ij = 1,   log1p(gamma / d_ij)  if s_ij = 0      Eq. 8
    L_pair    = mean over the cells with s_ij = 1 of l_ij + mean over the cells with s_ij = 0 of l_ij
                (a term with no cell is 0)
    Q         = mean over the rows r of cat(u1, u2) of log1p(d(|r|, 1_K) / gamma)          Eq. 9
    L         = L_pair + quantization_weight * Q

L_pair is the paper's weighting w_ij = |S|/|S1| (similar) and |S|/|S0| (dissimilar) of Eq. 2, averaged
over the |S| = B1 * B2 cells: DeepHash-pytorch's (swuxyj) DCH.py, with its cos <= 0.99 clamp and its
1e-4 norm floor. Defaults: gamma = 20 (DeepHash-pytorch's config; the authors' train_val_script.py
`--gamma 20`), quantization_weight = 0.1 (DeepHash-pytorch's `lambda`). The authors' DeepHash code
differs (normed=False: squared Euclidean distance, dissimilar weight 1, i == j dropped, an
(|u| - 1)^2 quantization with weight 0); we follow the paper's Eq. 2/6/8/9, as DeepHash-pytorch does.
"""
from __future__ import annotations

import torch
from torch import Tensor

from hashnet.methods.base import PairwiseMethod
from hashnet.methods.common import check_number, regularized, similarity


def cauchy_distance(a: Tensor, b: Tensor) -> Tensor:
    """Normalised Hamming distance (K / 2) * (1 - min(cos, 0.99)): a (B1, K), b (B2, K) -> (B1, B2).

    cos divides by max(|a_i| * |b_j|, 1e-4), so a zero row has cos 0; the distance lies in
    [0.005 K, K]. torch's vector norm has gradient 0 at a zero row (sqrt(sum a^2) would give NaN).
    """
    norms = torch.linalg.vector_norm(a, dim=1)[:, None] * torch.linalg.vector_norm(b, dim=1)[None, :]
    cos = (a @ b.T) / norms.clamp(min=1e-4)
    return a.shape[1] / 2 * (1 - cos.clamp(max=0.99))


def dch_loss(u1: Tensor, u2: Tensor, y1: Tensor, y2: Tensor,
             gamma: float = 20.0, quantization_weight: float = 0.1, regularize_u2: bool = True) -> Tensor:
    """DCH's loss (module docstring) for codes u1: (B1, K), u2: (B2, K) and 0/1 labels y1: (B1, C),
    y2: (B2, C) -> scalar in the codes' dtype. Distances are at least 0.005 K, so gamma / d is finite.
    regularize_u2=False: the quantization term covers u1 only (u2 a memory bank)."""
    d = cauchy_distance(u1, u2)
    s = similarity(y1, y2).to(d.dtype)
    similar = torch.log1p(d / gamma)
    dissimilar = torch.log1p(gamma / d)
    pair = (s * similar).sum() / s.sum().clamp(min=1) + ((1 - s) * dissimilar).sum() / (1 - s).sum().clamp(min=1)
    u = regularized(u1, u2, regularize_u2)
    to_ones = cauchy_distance(u.abs(), torch.ones_like(u[:1])).squeeze(1)  # d(|r|, 1_K) for each row r
    return pair + quantization_weight * torch.log1p(to_ones / gamma).mean()


class DCH(PairwiseMethod):
    """DCH: h = tanh(hash layer); settings: dch_loss's gamma, quantization_weight."""

    name = "dch"
    pair_loss = staticmethod(dch_loss)

    def __init__(self, hash_bit: int, num_classes: int, multi_label: bool, pairs: str, gamma: float,
                 quantization_weight: float, bank_size: int | None = None) -> None:
        check_number("gamma", gamma, strict=True, example=20)
        check_number("quantization_weight", quantization_weight)
        super().__init__(hash_bit, num_classes, multi_label, pairs, bank_size, gamma=gamma,
                         quantization_weight=quantization_weight)

    def forward(self, z: Tensor) -> Tensor:
        """z (N, K) -> tanh(z) (N, K) in (-1, 1)."""
        return torch.tanh(z)
