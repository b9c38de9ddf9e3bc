"""DFH: Push for Quantization: Deep Fisher Hashing (Li, Pei, Zha, van Gemert; BMVC 2019).

The hash layer's outputs u are the codes (no activation). Each class has a discrete centre c (C, K) in {-1, +1}
(zeros before the first step). A step's discrete codes pull each image towards its class centre, the centres are
then fitted to the codes and pushed apart (the Fisher part), and the codes are trained by a margin likelihood and a
quantization term towards b:

    y^_i = y_i / max(sum_c y_ic, 1);   b_i = sign(mu y^_i C + u_i)               (C before this step's update)
    c_i = sign(sum_n y^_ni b_n - sum_{j != i} (y^_:j . y^_:i) c_j - nu sum_{j != i} c_j),  i = 0..C-1 in order
    L = mean_ij[(1 - s_ij) softplus(margin + theta_ij) + s_ij softplus(margin - theta_ij)]
        + quantization_weight * mean of (u - b)^2 over cat(u1, u2),   theta_ij = scale * <u1_i, u2_j>

The centre step is one pass of discrete cyclic coordinate descent on |B - Y^ C|^2 + nu sum_{i != j} c_i . c_j, on
every process's batch (observe()), as the authors' active code (Discretecenter) and cisip-FIRe; DeepHash-pytorch
uses the authors' commented-out relaxed version. The margin on both kinds of pairs is DeepHash-pytorch's and
cisip-FIRe's form, with cisip-FIRe's margin 1 (the authors' released Main.py runs without a margin).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from hashnet.methods.base import PairwiseMethod
from hashnet.methods.common import check_number, similarity
from hashnet.utils.signs import sign


def scaled_labels(y: Tensor, dtype: torch.dtype) -> Tensor:
    """y (B, C) 0/1 -> y / max(row sum, 1) (B, C) in dtype: each labelled row sums to 1."""
    y = y.to(dtype)
    return y / y.sum(dim=1, keepdim=True).clamp(min=1)


@torch.no_grad()
def dfh_codes(u: Tensor, y: Tensor, centres: Tensor, mu: float = 1.0) -> Tensor:
    """b = sign(mu y^ C + u) (B, K) in {-1, +1} for codes u (B, K), labels y (B, C), centres (C, K); u's dtype."""
    u = u.detach()
    return sign(mu * scaled_labels(y, u.dtype) @ centres.to(u.dtype) + u)


@torch.no_grad()
def dfh_update_centres(centres: Tensor, y: Tensor, b: Tensor, nu: float = 1.0) -> Tensor:
    """One DCC pass over the classes (module docstring): centres (C, K), labels y (B, C), codes b (B, K) in {-1, +1}
    -> new centres (C, K) in {-1, +1}, b's dtype (the argument is not changed)."""
    centres = centres.to(b.dtype).clone()
    y = scaled_labels(y, b.dtype)
    pulled, gram = y.T @ b, y.T @ y  # (C, K), (C, C)
    for i in range(len(centres)):
        others = torch.ones(len(centres), dtype=torch.bool, device=b.device)
        others[i] = False
        cross = gram[i, others] @ centres[others]
        centres[i] = sign(pulled[i] - cross - nu * centres[others].sum(dim=0))
    return centres


def dfh_loss(u1: Tensor, u2: Tensor, y1: Tensor, y2: Tensor, b1: Tensor, b2: Tensor | None = None,
             margin: float = 1.0, scale: float = 0.5, quantization_weight: float = 0.5) -> Tensor:
    """DFH's loss (module docstring) for codes u1 (B1, K), u2 (B2, K), labels y1, y2 and discrete codes b1 (B1, K),
    b2 (B2, K) -> scalar; b2 None: u2 is a memory bank and the quantization term covers u1 alone."""
    theta = scale * (u1 @ u2.T)
    s = similarity(y1, y2).to(theta.dtype)
    pairs = ((1 - s) * F.softplus(margin + theta) + s * F.softplus(margin - theta)).mean()
    u, b = (u1, b1) if b2 is None else (torch.cat((u1, u2)), torch.cat((b1, b2)))
    return pairs + quantization_weight * (u - b.to(u.dtype)).pow(2).mean()


class DFH(PairwiseMethod):
    """DFH on the hash layer's outputs. centres (C, K) is a buffer updated in observe() from every process's batch;
    step_centres keeps the centres from before that update, which the step's loss uses (as the authors' order)."""

    name = "dfh"
    pair_loss = staticmethod(dfh_loss)
    keeps_state = True

    def __init__(self, hash_bit: int, num_classes: int, multi_label: bool, pairs: str, scale: float, margin: float,
                 mu: float, nu: float, quantization_weight: float, bank_size: int | None = None) -> None:
        check_number("scale", scale, strict=True, example=0.5)
        check_number("margin", margin, example=1)
        check_number("mu", mu, example=1)
        check_number("nu", nu, example=1)
        check_number("quantization_weight", quantization_weight, example=0.5)
        super().__init__(hash_bit, num_classes, multi_label, pairs, bank_size, margin=margin, scale=scale,
                         quantization_weight=quantization_weight)
        self.mu, self.nu = mu, nu
        self.register_buffer("centres", torch.zeros(num_classes, hash_bit))
        self.register_buffer("step_centres", torch.zeros(num_classes, hash_bit))

    def observe_state(self, h: Tensor, labels: Tensor, index: Tensor) -> None:
        self.step_centres.copy_(self.centres)
        b = dfh_codes(h, labels, self.centres, self.mu)
        self.centres.copy_(dfh_update_centres(self.centres, labels, b, self.nu))

    def loss(self, h: Tensor, labels: Tensor) -> Tensor:
        return self.coded_pair_loss(h, labels, dfh_codes(h, labels, self.step_centres, self.mu))
