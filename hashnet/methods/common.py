"""Pieces that two or more hashing methods share.

- similarity: s_ij = 1 when two images share at least one label (every pairwise method).
- split_pairs: the two sets of codes a pairwise loss compares, from one batch (method.pairs halves / all);
  regularized: the codes a pairwise loss's regulariser covers (both sets, or u1 alone when u2 is a memory bank).
- likelihood_terms: the negative log-likelihood of pairwise labels s_ij under p(s_ij = 1) = sigmoid(theta_ij),
  softplus(theta) - s * theta, elementwise (HashNet weights and thresholds it, DHN and DPSH average it);
  pairwise_likelihood: its mean over the pairs of theta_ij = scale * <u1_i, u2_j>.
- check_number: a method's numeric setting, refused with its config key when out of range.
- random_codes: one seeded Bernoulli(0.5) +-1 code per class (CSQ's and OrthoHash's fallback centres,
  DPN's targets).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from hashnet.utils.errors import ConfigError

PAIRS = ("halves", "all", "bank")


def similarity(y1: Tensor, y2: Tensor) -> Tensor:
    """Pairwise label similarity.

    y1: (B1, C), y2: (B2, C) 0/1 labels of any dtype -> (B1, B2) float32, 1 where the rows share a label.
    """
    return (y1.float() @ y2.float().T > 0).float()


def likelihood_terms(theta: Tensor, s: Tensor, threshold: float | None = None) -> Tensor:
    """softplus(theta) - s * theta elementwise, in theta's dtype; above `threshold` (None: never) theta * (1 - s),
    the original HashNet's approximation of it.

    torch's softplus returns theta itself above 20 and never exponentiates a large positive number, so the
    terms and their gradients are finite for any finite theta.
    """
    s = s.to(theta.dtype)
    terms = F.softplus(theta) - s * theta
    return terms if threshold is None else torch.where(theta <= threshold, terms, theta * (1 - s))


def pairwise_likelihood(u1: Tensor, u2: Tensor, y1: Tensor, y2: Tensor, scale: float) -> Tensor:
    """mean_ij(softplus(theta_ij) - s_ij * theta_ij) with theta = scale * u1 @ u2.T (DHN and DPSH).

    u1: (B1, K), u2: (B2, K) codes; y1: (B1, C), y2: (B2, C) 0/1 labels -> scalar, the mean over
    all B1 x B2 pairs.
    """
    return likelihood_terms(scale * (u1 @ u2.T), similarity(y1, y2)).mean()


def split_pairs(h: Tensor, labels: Tensor, pairs: str) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The two sets (u1, u2, y1, y2) a pairwise loss compares, from one batch h (B, K), labels (B, C).

    "halves": the first half against the second (the original HashNet's two streams of 36 images);
    "all": the batch against itself (every (i, j), i == j included).
    """
    if pairs == "halves":
        half = len(h) // 2
        return h[:half], h[half:], labels[:half], labels[half:]
    return h, h, labels, labels


def regularized(u1: Tensor, u2: Tensor, regularize_u2: bool) -> Tensor:
    """The codes a pairwise loss's regulariser averages over: cat(u1, u2), or u1 alone when u2 is a memory bank of
    detached codes (as the reference codes regularise only the batch)."""
    return torch.cat((u1, u2)) if regularize_u2 else u1


def check_number(key: str, value: object, minimum: float = 0.0, strict: bool = False, example: float = 0.1) -> None:
    """ConfigError naming method.<key> unless value is a number >= minimum (> minimum when strict)."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not number or value < minimum or (strict and value == minimum):
        bound = f"{'>' if strict else '>='} {minimum:g}"
        raise ConfigError(f"method.{key}={value!r}: it must be a number {bound} -- pass e.g. method.{key}={example:g}")


def random_codes(num_classes: int, hash_bit: int, seed: int = 0) -> Tensor:
    """(num_classes, hash_bit) float32 in {-1, +1}, each entry +-1 with probability 1/2.

    Exactly torch.randint(0, 2, (num_classes, hash_bit), generator=torch.Generator().manual_seed(seed))
    * 2 - 1: the same seed gives the same codes on every machine and device.
    """
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 2, (num_classes, hash_bit), generator=generator).float() * 2 - 1
