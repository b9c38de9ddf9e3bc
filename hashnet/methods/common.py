"""Pieces that two or more hashing methods share.

- similarity: s_ij = 1 when two images share at least one label (every pairwise method).
- sign: sign with sign(0) = +1, in the input's dtype (DPSH's quantization target, GreedyHash's codes).
- split_pairs: the two sets of codes a pairwise loss compares, from one batch.
- check_choice: a config value that must be one of a few words.
- random_codes: one seeded Bernoulli(0.5) +-1 code per class (CSQ's and OrthoHash's fallback centres,
  DPN's targets).
- pairwise_likelihood: the negative log-likelihood of the pairwise labels under
  p(s_ij = 1) = sigmoid(theta_ij), theta_ij = scale * <u1_i, u2_j> (DHN and DPSH):

      mean_ij(softplus(theta_ij) - s_ij * theta_ij)
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from hashnet.utils.errors import ConfigError

PAIRS = ("halves", "all")


def similarity(y1: Tensor, y2: Tensor) -> Tensor:
    """Pairwise label similarity.

    y1: (B1, C), y2: (B2, C) 0/1 labels -> (B1, B2) float, 1 where the rows share a label.
    """
    return (y1.float() @ y2.float().T > 0).float()


def sign(x: Tensor) -> Tensor:
    """Elementwise sign in x's dtype and shape, with sign(0) = +1 (the project's code convention)."""
    return torch.where(x >= 0, 1.0, -1.0).to(x.dtype)


def pairwise_likelihood(u1: Tensor, u2: Tensor, y1: Tensor, y2: Tensor, scale: float) -> Tensor:
    """mean_ij(softplus(theta_ij) - s_ij * theta_ij) with theta = scale * u1 @ u2.T.

    u1: (B1, K), u2: (B2, K) codes; y1: (B1, C), y2: (B2, C) 0/1 labels -> scalar, the mean over
    all B1 x B2 pairs. torch's softplus returns theta itself above 20 and never exponentiates a
    large positive number, so loss and gradients are finite for any finite codes.
    """
    theta = scale * (u1 @ u2.T)
    s = similarity(y1, y2).to(theta.dtype)
    return (F.softplus(theta) - s * theta).mean()


def split_pairs(h: Tensor, labels: Tensor, pairs: str) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The two sets (u1, u2, y1, y2) a pairwise loss compares, from one batch h (B, K), labels (B, C).

    "halves": the first half against the second (the original HashNet's two streams of 36 images);
    "all": the batch against itself (every (i, j), i == j included).
    """
    if pairs == "halves":
        half = len(h) // 2
        return h[:half], h[half:], labels[:half], labels[half:]
    return h, h, labels, labels


def random_codes(num_classes: int, hash_bit: int, seed: int = 0) -> Tensor:
    """(num_classes, hash_bit) float32 in {-1, +1}, each entry +-1 with probability 1/2.

    Exactly torch.randint(0, 2, (num_classes, hash_bit), generator=torch.Generator().manual_seed(seed))
    * 2 - 1: the same seed gives the same codes on every machine and device.
    """
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 2, (num_classes, hash_bit), generator=generator).float() * 2 - 1


def check_choice(key: str, value: object, choices: tuple) -> None:
    """Raise ValueError naming the config key unless value is one of choices."""
    if value not in choices:
        raise ConfigError(f"{key} must be one of {list(choices)}, got {value!r}: pass {key}={choices[0]}")
