"""MIHash: Hashing with Mutual Information (Cakir, He, Bargal, Sclaroff; ICCV 2017, TPAMI 2019).

Codes h = 2 sigmoid(a z) - 1 (a = sharpness, the authors' mi_forward.m). Each image of a batch is an anchor; the
relaxed Hamming distances d_ij = (K - <h_i, h_j>) / 2 to the other B - 1 images are soft-binned by triangular
kernels at the L_b + 1 centres l * K / L_b, and the loss is minus the mutual information between an anchor's
distance and whether the other image shares a label, averaged over the anchors:

    MI_i = H(p_i) - n+_i / (B - 1) * H(p+_i) - n-_i / (B - 1) * H(p-_i),   L = - mean_i MI_i

p+_i / p-_i: the binned distances to the anchor's similar / dissimilar images (0 where there are none), p_i to all;
H in bits, 0 log 0 = 0. Pairs come from the batch alone (under DDP each process's own), as the authors'.
cisip-FIRe's copy returns +MI (it minimises the information) and drops the last bin; we follow the authors.
"""
from __future__ import annotations

import torch
from torch import Tensor

from hashnet.methods.base import HashMethod
from hashnet.methods.common import check_number, similarity


def mihash_codes(z: Tensor, sharpness: float = 1.0) -> Tensor:
    """Hash-layer outputs z (N, K) -> 2 sigmoid(sharpness * z) - 1 (N, K) in [-1, 1]."""
    return 2 * torch.sigmoid(sharpness * z) - 1


def entropy_bits(q: Tensor) -> Tensor:
    """- sum over the last dimension of q log2 q, with 0 log 0 = 0 (no NaN gradient at 0): (..., L) -> (...)."""
    positive = q > 0
    return -torch.where(positive, q * torch.log2(torch.where(positive, q, torch.ones_like(q))), 0).sum(dim=-1)


def mihash_loss(h: Tensor, y: Tensor, nbins: int | None = None) -> Tensor:
    """MIHash's loss (module docstring): codes h (B, K) in [-1, 1], 0/1 labels y (B, C) -> scalar in h's dtype.

    nbins: L_b (None: K // 2), giving L_b + 1 bins of width K / L_b, the last at K.
    """
    batch, bits = h.shape
    levels = nbins if nbins is not None else bits // 2
    width = bits / levels
    centres = torch.arange(levels + 1, dtype=h.dtype, device=h.device) * width
    d = (bits - h @ h.T) / 2
    delta = (1 - (d.unsqueeze(-1) - centres).abs() / width).clamp(min=0)  # (B, B, L_b + 1)
    others = ~torch.eye(batch, dtype=torch.bool, device=h.device)
    s = similarity(y, y).to(torch.bool) & others
    n = (batch - 1) if batch > 1 else 1
    terms = []
    for mask in (others, s, others & ~s):
        count = mask.sum(dim=1, keepdim=True).to(h.dtype)
        p = (delta * mask.unsqueeze(-1)).sum(dim=1) / count.clamp(min=1)
        terms.append((count.squeeze(1) / n, entropy_bits(p)))
    (_, h_all), (w_pos, h_pos), (w_neg, h_neg) = terms
    return -(h_all - w_pos * h_pos - w_neg * h_neg).mean()


class MIHash(HashMethod):
    """MIHash: h = 2 sigmoid(sharpness * z) - 1, mihash_loss on each batch; settings nbins (None: K // 2), sharpness."""

    name = "mihash"

    def __init__(self, hash_bit: int, num_classes: int, multi_label: bool, nbins: int | None,
                 sharpness: float) -> None:
        super().__init__(hash_bit, num_classes, multi_label)
        if nbins is not None:
            check_number("nbins", nbins, minimum=1, example=max(hash_bit // 2, 1))
        check_number("sharpness", sharpness, strict=True, example=1)
        self.nbins, self.sharpness = nbins, sharpness

    def forward(self, z: Tensor) -> Tensor:
        """z (N, K) -> mihash_codes(z, sharpness) (N, K)."""
        return mihash_codes(z, self.sharpness)

    def loss(self, h: Tensor, labels: Tensor) -> Tensor:
        return mihash_loss(h, labels, self.nbins)
