"""DPN: Deep Polarized Network (Fan, Ng, Ju, Zhang, Chan, IJCAI 2020).

The hash layer's outputs h are the codes (no activation: a linear hash_fc in the authors' kamwoh/DPN
models/alexnet.py, also in DeepHash-pytorch). Each class owns a fixed random target t_c in {-1, +1}^K
(the paper's random assignment, Bernoulli p = 0.5), and a bitwise hinge, the polarization loss,
pushes every bit of an image past margin on the side of each of its labels' targets:

    L = (1 / (B * K)) * sum_i sum_c y_ic * sum_k max(0, margin - h_ik * t_ck)

With one label this is the mean over the B x K entries of max(0, m - h * t_y), as DeepHash-pytorch's
DPN.py; the authors sum over the K bits (K times this value). With several labels the image is
polarised towards each label's target and the terms add (the authors' train_hashing.py
`calculate_loss`; FIRe's dpn.py); DeepHash-pytorch instead takes CSQ's bitwise majority of the
targets, which we do not. An unlabelled image adds 0. Default: margin 1 (the paper; the authors'
`--margin 1.0`; DeepHash-pytorch's `m: 1`). The authors' optional extras (a cross-entropy head, `reg`
on h^2, ternary assignment, centroid updates) are not part of this loss.
"""
from __future__ import annotations

from torch import Tensor

from hashnet.methods.base import HashMethod
from hashnet.methods.common import check_number, random_codes


def dpn_targets(num_classes: int, hash_bit: int, seed: int = 0) -> Tensor:
    """(num_classes, hash_bit) float32 targets in {-1, +1}, Bernoulli(0.5) from `seed`, whatever K and C.

    The Bernoulli branch of hashnet.methods.csq.hash_centers (hashnet.methods.common.random_codes);
    there is no Hadamard branch.
    """
    if num_classes < 1 or hash_bit < 1:
        raise ValueError(f"dpn_targets needs num_classes >= 1 and hash_bit >= 1, got num_classes={num_classes}, "
                         f"hash_bit={hash_bit}")
    return random_codes(num_classes, hash_bit, seed)


def dpn_loss(h: Tensor, y: Tensor, targets: Tensor, margin: float = 1.0) -> Tensor:
    """DPN's loss (module docstring) -> scalar in h's dtype.

    h: (B, K) codes; y: (B, C) 0/1 labels of any dtype; targets: (C, K) from dpn_targets. Piecewise
    linear, so finite for any finite h.
    """
    targets = targets.to(h.device, h.dtype)
    hinge = (margin - h[:, None, :] * targets[None, :, :]).clamp(min=0)  # (B, C, K)
    return (y.to(h.dtype)[:, :, None] * hinge).sum() / h.numel()


class DPN(HashMethod):
    """DPN on the hash layer's outputs h (no activation); the targets (C, K) are a buffer saved with the checkpoint."""

    name = "dpn"

    def __init__(self, hash_bit: int, num_classes: int, multi_label: bool, margin: float, seed: int) -> None:
        check_number("margin", margin, example=1)
        super().__init__(hash_bit, num_classes, multi_label)
        self.margin = margin
        self.register_buffer("targets", dpn_targets(num_classes, hash_bit, seed))

    def loss(self, h: Tensor, labels: Tensor) -> Tensor:
        return dpn_loss(h, labels, self.targets, self.margin)
