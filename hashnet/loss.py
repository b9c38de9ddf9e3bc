"""HashNet's weighted pairwise likelihood loss (Cao et al., ICCV 2017, Eq. 4-5).

For two sets of continuous codes and their 0/1 label matrices, every cross pair (i, j) gets
a similarity s_ij = 1 when the images share at least one label, and the inner product of their
codes, scaled by alpha, acts as the logit of that similarity:

    theta_ij = alpha * <h1_i, h2_j>
    l_ij     = log(1 + exp(theta_ij)) - s_ij * theta_ij      if theta_ij <= threshold
             = theta_ij * (1 - s_ij)                         otherwise
    L        = (class_num * sum_{s=1} l_ij + sum_{s=0} l_ij) / (class_num * |S1| + |S0|)

class_num weights similar pairs against dissimilar ones (the paper's w_ij = |S| / |S1|);
similar_pair_weight computes that ratio from a training set's labels (class_num: auto).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from hashnet.methods.common import similarity


def pairwise_loss(
    h1: Tensor,
    h2: Tensor,
    y1: Tensor,
    y2: Tensor,
    alpha: float,
    class_num: float = 1.0,
    threshold: float = 15.0,
    exclude_diagonal: bool = False,
) -> Tensor:
    """Weighted pairwise cross-entropy over all (h1_i, h2_j) pairs.

    h1: (B1, K), h2: (B2, K) continuous codes in [-1, 1]; y1: (B1, C), y2: (B2, C) 0/1 labels.
    alpha scales inner products into logits (HashNet uses 10 / K); class_num weights similar
    pairs; above `threshold` the logit's softplus is replaced by the logit itself, as in the
    original. exclude_diagonal drops pairs (i, i), for h1 is h2 (every pair of one batch).
    Returns a scalar of at least float32, finite with finite gradients for any code scale: softplus
    never exponentiates a large positive number. Mixed precision does not reach it: in bf16, logits
    near 10 would be rounded to steps of 1/16.
    """
    with torch.autocast(h1.device.type, enabled=False):
        dtype = torch.promote_types(h1.dtype, torch.float32)  # bf16 / fp16 codes -> float32; float64 stays
        theta = alpha * (h1.to(dtype) @ h2.to(dtype).T)
        s = similarity(y1, y2)
        pair_loss = torch.where(theta <= threshold, F.softplus(theta) - s * theta, theta * (1 - s))
        weight = torch.where(s > 0, float(class_num), 1.0)
        if exclude_diagonal:
            weight = weight * (1 - torch.eye(*weight.shape, device=weight.device))
        return (weight * pair_loss).sum() / weight.sum()


_WEIGHT_CHUNK = 1 << 22  # label-row pairs per chunk of similar_pair_weight


def similar_pair_weight(labels: np.ndarray) -> float:
    """The paper's w = |S| / |S1|: pairs of distinct images over those that share a label.

    labels: (N, C) 0/1 training labels, N >= 2. Identical rows are counted once with their
    multiplicity, so the cost is O(U^2 C) for U distinct rows, in chunks of bounded memory.
    Raises ValueError when no two images share a label (the ratio is undefined).
    """
    rows, counts = np.unique(np.asarray(labels) > 0, axis=0, return_counts=True)
    rows, counts = rows.astype(np.float32), counts.astype(np.float64)
    n = counts.sum()
    similar = -float(counts @ (rows.sum(axis=1) > 0))  # ordered pairs (i, j), i != j: drop i == j
    step = max(1, _WEIGHT_CHUNK // len(rows))
    for start in range(0, len(rows), step):
        shares = (rows[start:start + step] @ rows.T > 0).astype(np.float64)  # (chunk, U)
        similar += float(counts[start:start + step] @ shares @ counts)
    if similar <= 0:
        raise ValueError(f"no two of the {int(n)} training images share a label: loss.class_num=auto is "
                         "undefined -- set loss.class_num to a number")
    return float(n * (n - 1) / similar)
