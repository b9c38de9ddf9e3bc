"""DSH: Deep Supervised Hashing (Liu, Wang, Shan, Chen, CVPR 2016).

The hash layer's outputs u are used as they are (no output activation). A contrastive loss pulls
similar pairs together and pushes dissimilar ones at least a margin m apart in squared Euclidean
distance; an L1 regulariser pulls every output towards +-1:

    D_ij = ||u1_i - u2_j||^2
    L    = mean_ij(0.5 * s_ij * D_ij + 0.5 * (1 - s_ij) * max(m - D_ij, 0))
           + regularization_weight * mean over the entries of cat(u1, u2) of | |u| - 1 |

Defaults: m = 2K is the paper's (and both reference codes'). regularization_weight = 0.1 is
DeepHash-pytorch's DSH config (swuxyj); the paper and weixu000/DSH-pytorch use alpha = 0.01 on a
regulariser summed over the K bits, not averaged.
"""
from __future__ import annotations

from torch import Tensor

from hashnet.methods.base import PairwiseMethod
from hashnet.methods.common import check_number, regularized, similarity


def dsh_loss(u1: Tensor, u2: Tensor, y1: Tensor, y2: Tensor,
             margin: float | None = None, regularization_weight: float = 0.1,
             regularize_u2: bool = True) -> Tensor:
    """DSH's loss (module docstring) for codes u1: (B1, K), u2: (B2, K) and 0/1 labels y1: (B1, C),
    y2: (B2, C) -> scalar. margin None means 2K; regularize_u2=False: the regulariser covers u1 only (u2 a
    memory bank).

    D is summed from the (B1, B2, K) differences rather than |a|^2 + |b|^2 - 2ab, which cancels
    badly for large codes and can turn negative.
    """
    m = 2 * u1.shape[1] if margin is None else margin
    d = (u1[:, None, :] - u2[None, :, :]).pow(2).sum(dim=2)
    s = similarity(y1, y2).to(d.dtype)
    contrastive = (0.5 * s * d + 0.5 * (1 - s) * (m - d).clamp(min=0)).mean()
    u = regularized(u1, u2, regularize_u2)
    return contrastive + regularization_weight * (u.abs() - 1).abs().mean()


class DSH(PairwiseMethod):
    """DSH on the hash layer's outputs u (no activation); settings: dsh_loss's margin (None: 2K), regularization_weight."""

    name = "dsh"
    pair_loss = staticmethod(dsh_loss)

    def __init__(self, hash_bit: int, num_classes: int, multi_label: bool, pairs: str, margin: float | None,
                 regularization_weight: float, bank_size: int | None = None) -> None:
        if margin is not None:
            check_number("margin", margin, strict=True, example=2 * hash_bit)
        check_number("regularization_weight", regularization_weight)
        super().__init__(hash_bit, num_classes, multi_label, pairs, bank_size, margin=margin,
                         regularization_weight=regularization_weight)
