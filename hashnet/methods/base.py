"""What every hashing method implements, and the pieces most of them share.

A method sits on top of the network's hash layer (hashnet.nets.HashEncoder: images -> z (N, K)). It
owns its code layer (z -> continuous codes h, whose signs are the binary codes), its loss on a training
batch, any state of its own (buffers and parameters, saved with the checkpoint; its parameters train at
the hash layer's learning rate) and the callbacks it needs. Its constructor arguments are the keys of
`configs/method/<name>.yaml`, plus hash_bit, num_classes and multi_label, which the training module
passes from the net and the dataset.
"""
from __future__ import annotations

from typing import Callable, ClassVar

import numpy as np
import pytorch_lightning as pl
from torch import Tensor, nn

PAIRS = ("halves", "all")


def similarity(y1: Tensor, y2: Tensor) -> Tensor:
    """Pairwise label similarity: y1 (B1, C), y2 (B2, C) 0/1 -> (B1, B2) float, 1 where rows share a label."""
    return (y1.float() @ y2.float().T > 0).float()


def split_pairs(h: Tensor, labels: Tensor, pairs: str) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The two sets (u1, u2, y1, y2) a pairwise loss compares, from one batch h (B, K), labels (B, C).

    "halves": the first half against the second (the original HashNet's two streams of 36 images);
    "all": the batch against itself (every (i, j), i == j included).
    """
    if pairs == "halves":
        half = len(h) // 2
        return h[:half], h[half:], labels[:half], labels[half:]
    return h, h, labels, labels


def check_choice(key: str, value: object, choices: tuple) -> None:
    """Raise ValueError naming the config key unless value is one of choices."""
    if value not in choices:
        raise ValueError(f"{key} must be one of {list(choices)}, got {value!r}: pass {key}={choices[0]}")


class HashMethod(nn.Module):
    """A hashing method: code layer (forward), loss, own state and callbacks. Subclasses set `name`."""

    name: ClassVar[str]

    def __init__(self, hash_bit: int, num_classes: int, multi_label: bool) -> None:
        super().__init__()
        self.hash_bit, self.num_classes, self.multi_label = hash_bit, num_classes, multi_label

    def forward(self, z: Tensor) -> Tensor:
        """Code layer: hash-layer outputs z (N, K) -> continuous codes h (N, K). Default: none (h = z)."""
        return z

    def loss(self, h: Tensor, labels: Tensor) -> Tensor:
        """Scalar loss of a training batch: h (B, K) from forward, labels (B, C) 0/1."""
        raise NotImplementedError

    def callbacks(self) -> list[pl.Callback]:
        """Callbacks the method needs during training (e.g. a schedule); none by default."""
        return []

    @classmethod
    def resolve(cls, config: dict, train_labels: Callable[[], np.ndarray]) -> dict:
        """config with its data-dependent values computed from the training labels (N, C) (default: as is).

        Runs once before the method is built, so the numbers, not placeholders, reach the checkpoint.
        """
        return config
