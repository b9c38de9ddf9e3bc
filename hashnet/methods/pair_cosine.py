"""What BiHalf and GreedyHash-unsupervised share (specs: methods-unsupervised.md sections 5-6): the codes copy a
reference similarity f, pair by pair.

    m = floor(B / 2) pairs: row i with row m + i (an odd batch's last row is in no pair)
    cos(a, c) = <a, c> / (max(|a|, 1e-8) max(|c|, 1e-8))            (torch's cosine_similarity)
    pair_cos_mse(b, f) = mean over i < m of (cos(b_i, b_{m+i}) - cos(f_i, f_{m+i}))^2, f carrying no gradient
"""
from __future__ import annotations

from torch import Tensor

EPS = 1e-8


def pair_cosines(x: Tensor) -> Tensor:
    """x (B, D) -> (floor(B/2),) cosines of row i with row m + i."""
    m = len(x) // 2
    a, c = x[:m], x[m:2 * m]
    return (a * c).sum(dim=1) / (a.norm(dim=1).clamp_min(EPS) * c.norm(dim=1).clamp_min(EPS))


def pair_cos_mse(b: Tensor, f: Tensor) -> Tensor:
    """Codes b (B, K) against the reference f (B, D) (detached) -> scalar in b's dtype; B >= 2."""
    return ((pair_cosines(b) - pair_cosines(f.detach()).to(b.dtype)) ** 2).mean()
