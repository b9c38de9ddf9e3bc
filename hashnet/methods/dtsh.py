"""DTSH: Deep Supervised Hashing with Triplet Labels (Wang, Shi, Kitani, ACCV 2016).

The hash layer's outputs u are the codes (no activation: a linear fc8 in the authors' Minione/DTSH,
also in DeepHash-pytorch and FIRe). Every triplet (anchor i of u1, positive j and negative k of u2)
is a Bernoulli event with logit theta_ij - theta_ik - m, and a quadratic term pulls u to its sign:

    theta_ij = scale * <u1_i, u2_j>;   m = K / 2 if margin is None else margin
    P_i = {j : s_ij = 1},  N_i = {k : s_ik = 0};   A = {i : P_i and N_i both non-empty}
    l_ijk  = softplus(m + theta_ik - theta_ij)            = -log sigmoid(theta_ij - theta_ik - m)
    L_trip = mean over i in A of (mean over j in P_i, k in N_i of l_ijk);   0 when A is empty
    L      = L_trip + quantization_weight * mean over the entries of cat(u1, u2) of (u - sign(u))^2

j == i counts when u2 is u1. Every valid anchor weighs the same (as DeepHash-pytorch and FIRe).
Defaults: scale = 0.5 is the paper's Theta_ij = (1/2) u_i^T u_j (the authors' train_triplet.m halves
both products); margin K/2 the authors' (DTSH.m passes codelens / 2); quantization_weight = 1 is
DeepHash-pytorch's and FIRe's lambda. DeepHash-pytorch and FIRe use the unhalved product with
alpha = 5 and clamp the logit to [-100, 50]: dtsh_loss(..., scale=1.0, margin=5.0) is their
likelihood term without the clamp (softplus needs none). The authors sample 50 positives x 50
negatives per other class from the whole training set; here every triplet of the given sets is used.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from hashnet.methods.base import PairwiseMethod
from hashnet.methods.common import check_number, regularized, similarity
from hashnet.utils.errors import ConfigError
from hashnet.utils.signs import sign

MAX_BANK = 2048  # a bank of 2,048 codes: 72 x 2048^2 = 3e8 triplet cells a step, about 1.2 GB in float32


def dtsh_loss(u1: Tensor, u2: Tensor, y1: Tensor, y2: Tensor,
              scale: float = 0.5, margin: float | None = None, quantization_weight: float = 1.0,
              regularize_u2: bool = True) -> Tensor:
    """DTSH's loss (module docstring) for codes u1: (B1, K), u2: (B2, K) and 0/1 labels y1: (B1, C),
    y2: (B2, C) -> scalar in the codes' dtype. margin None means K / 2; regularize_u2=False: the quantization
    term covers u1 only (u2 a memory bank).

    The (B1, B2, B2) triplet tensor is built whole: 72^3 cells for a batch against itself. Against a
    memory bank of N codes it would be B1 * N^2 cells, too many to keep for the backward pass.
    """
    m = u1.shape[1] / 2 if margin is None else margin
    theta = scale * (u1 @ u2.T)  # (B1, B2)
    s = similarity(y1, y2).to(theta.dtype)
    # l[i, j, k] = softplus(m + theta_ik - theta_ij); weight[i, j, k] = 1 for a positive j and a negative k
    l = F.softplus(m + theta[:, None, :] - theta[:, :, None])
    weight = s[:, :, None] * (1 - s)[:, None, :]
    triplets = weight.sum(dim=(1, 2))  # |P_i| * |N_i|
    valid = triplets > 0
    per_anchor = (weight * l).sum(dim=(1, 2)) / triplets.clamp(min=1)
    triplet = (per_anchor * valid).sum() / valid.sum().clamp(min=1)
    u = regularized(u1, u2, regularize_u2)
    return triplet + quantization_weight * (u - sign(u)).pow(2).mean()


class DTSH(PairwiseMethod):
    """DTSH on the hash layer's outputs u (no activation); settings: dtsh_loss's scale, margin (None: K/2),
    quantization_weight."""

    name = "dtsh"
    pair_loss = staticmethod(dtsh_loss)

    def __init__(self, hash_bit: int, num_classes: int, multi_label: bool, pairs: str, scale: float,
                 margin: float | None, quantization_weight: float, bank_size: int | None = None) -> None:
        check_number("scale", scale, strict=True, example=0.5)
        if margin is not None:
            check_number("margin", margin, example=hash_bit / 2)
        check_number("quantization_weight", quantization_weight)
        if pairs == "bank" and bank_size and bank_size > MAX_BANK:
            raise ConfigError(f"method.pairs=bank: DTSH would compare each anchor with every (positive, negative) pair "
                              f"of a bank of {bank_size} training codes ({bank_size ** 2:,} cells an anchor), more than "
                              f"this loss holds for the backward pass (banks up to {MAX_BANK} images) -- pass "
                              "method.pairs=all (the batch against itself, the reference codes sample 50 x 50 "
                              "triplets an anchor)")
        super().__init__(hash_bit, num_classes, multi_label, pairs, bank_size, scale=scale, margin=margin,
                         quantization_weight=quantization_weight)
