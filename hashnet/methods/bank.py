"""A memory bank: the latest continuous codes (and labels) of every training image, the second set of codes a
pairwise method compares its batch with when method.pairs=bank, as the reference codes of DHN, DPSH, DSH and
IDHN (DeepHash-pytorch) do instead of pairing a batch with itself.

Rows are written at the batch's sample indices, detached, every step (under DDP with every rank's batch, so all
ranks hold the same bank); rows never written yet are left out of the pairs. The reference codes start from
zeros and compare with those rows too. The bank is a set of buffers, so checkpoints save it and resume is exact.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn


class MemoryBank(nn.Module):
    """codes (N, K), labels (N, C) and written (N,) bool buffers for N training images."""

    def __init__(self, size: int, hash_bit: int, num_classes: int) -> None:
        super().__init__()
        self.register_buffer("codes", torch.zeros(size, hash_bit))
        self.register_buffer("labels", torch.zeros(size, num_classes))
        self.register_buffer("written", torch.zeros(size, dtype=torch.bool))

    def write(self, codes: Tensor, labels: Tensor, index: Tensor) -> None:
        """Store codes (B, K) and labels (B, C) of the training images at dataset positions index (B,), detached."""
        self.codes[index] = codes.detach().to(self.codes.dtype)
        self.labels[index] = labels.detach().to(self.labels.dtype)
        self.written[index] = True

    def read(self) -> tuple[Tensor, Tensor]:
        """(codes (M, K), labels (M, C)) of the M rows written so far."""
        return self.codes[self.written], self.labels[self.written]
