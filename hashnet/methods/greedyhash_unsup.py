"""GreedyHash, unsupervised (Su, Zhang, Han, Tian; NeurIPS 2018; the authors' unsupervised_vgg.py; specs:
methods-unsupervised.md section 6): BiHalf's loss with GreedyHash's straight-through sign, plus its cubic penalty.

    L = pair_cos_mse(sign_ste(h), f) + alpha * mean over the B x K entries of | |h| - 1 |^3

alpha = 0.1: the authors' (loss1 + 0.1 * loss2) and DeepHash-pytorch's (FIRe's template says 1).
"""
from __future__ import annotations

from torch import Tensor

from hashnet.methods.common import check_number
from hashnet.methods.straight_through import sign_ste
from hashnet.methods.pair_cosine import pair_cos_mse
from hashnet.methods.reference import ReferenceMethod


def greedyhash_unsup_loss(h: Tensor, f: Tensor, alpha: float = 0.1) -> Tensor:
    """h (B, K) hash-layer outputs, f (B, D) the reference (no gradient) -> scalar in h's dtype."""
    return pair_cos_mse(sign_ste(h), f) + alpha * (h.abs() - 1).abs().pow(3).mean()


class GreedyHashUnsup(ReferenceMethod):
    """GreedyHash-unsupervised: h = the hash layer's outputs, codes sign(h)."""

    name = "greedyhash_unsup"

    def __init__(self, hash_bit: int, num_classes: int, multi_label: bool, alpha: float, reference: str,
                 reference_centre: bool) -> None:
        super().__init__(hash_bit, num_classes, multi_label, reference, reference_centre)
        check_number("alpha", alpha)
        self.alpha = alpha

    def reference_loss(self, h: Tensor, f: Tensor) -> Tensor:
        return greedyhash_unsup_loss(h, f, self.alpha)
