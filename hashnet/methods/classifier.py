"""The classifier baseline: encode a classifier's prediction as the code (Sablayrolles, Douze, Usunier,
Jegou, "How should we evaluate supervised hashing?", ICASSP 2017).

The first C outputs z[:, :C] of the hash layer are class logits, trained with cross-entropy (BCE with
logits on multi-label data). The code is +1 at the predicted class (multi-label: every class with
probability > 0.5) and -1 at every other bit; it needs K >= C.

    L = CE(z[:, :C], argmax y)            (mean over the batch), or, multi-label,
        BCE-with-logits(z[:, :C], y)      (mean over all B x C entries)

Code layer: the loss needs the logits, the codes need their sign to be that one-hot pattern, and a
method's loss sees only the code layer's output h. So h carries the logits in a form whose sign is
the prediction and from which the loss recovers them exactly (classifier_codes, classifier_logits):

    single-label: h_c = z_c - max_{c' != c} z_c'   (c < C): >= 0 only at the arg max, the margin over
                  the best rival; the loss takes z - z_a (a = arg max h = arg max z), which is
                  where(c == a, 0, h) and has the cross-entropy of z, value and gradient.
    multi-label:  h_c = z_c (c < C): the logit itself, >= 0 exactly where the probability is >= 0.5.
    c >= C:       h_c = -1, a constant (those hash-layer outputs get no gradient).

A logit tie (equal best logits, or a multi-label logit of exactly 0, probability 0.5) gives +1 at
every tied bit by the project's sign(0) = +1; with real-valued logits it does not happen in practice.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from hashnet.methods.base import HashMethod
from hashnet.utils.errors import ConfigError


def classifier_codes(z: Tensor, num_classes: int, multi_label: bool) -> Tensor:
    """Code layer: hash-layer outputs z (N, K), K >= C -> h (N, K) whose sign is the prediction (module docstring)."""
    logits = z[:, :num_classes]
    if not multi_label:
        top = logits.topk(2, dim=1).values  # best and second best logit of each row (C >= 2)
        logits = logits - torch.where(logits == top[:, :1], top[:, 1:], top[:, :1])
    return torch.cat((logits, torch.full_like(z[:, num_classes:], -1.0)), dim=1)


def classifier_logits(h: Tensor, num_classes: int, multi_label: bool) -> Tensor:
    """The class logits (B, C) in h (B, K) from classifier_codes, up to a shift per row (which no loss here sees)."""
    logits = h[:, :num_classes]
    if multi_label:
        return logits
    predicted = logits.argmax(dim=1, keepdim=True)
    return torch.where(torch.arange(num_classes, device=h.device) == predicted, 0.0, logits)


def classifier_loss(logits: Tensor, y: Tensor, multi_label: bool = False) -> Tensor:
    """Cross-entropy of logits (B, C) against argmax y, or BCE-with-logits against y (B, C) when multi_label
    (mean over the B x C entries) -> scalar in the logits' dtype; finite for any finite logits."""
    if multi_label:
        return F.binary_cross_entropy_with_logits(logits, y.to(logits.dtype))
    return F.cross_entropy(logits, y.argmax(dim=1))


class Classifier(HashMethod):
    """The classifier baseline: the first C hash-layer outputs are logits, the code is the one-hot prediction."""

    name = "classifier"

    def __init__(self, hash_bit: int, num_classes: int, multi_label: bool) -> None:
        if hash_bit < num_classes:
            raise ConfigError(f"method=classifier needs a bit per class: hash_bit={hash_bit} is less than the "
                              f"{num_classes} classes -- pass hash_bit={-(-num_classes // 8) * 8} (or more; codes "
                              "are whole bytes, a multiple of 8 bits)")
        super().__init__(hash_bit, num_classes, multi_label)

    def forward(self, z: Tensor) -> Tensor:
        return classifier_codes(z, self.num_classes, self.multi_label)

    def loss(self, h: Tensor, labels: Tensor) -> Tensor:
        return classifier_loss(classifier_logits(h, self.num_classes, self.multi_label), labels, self.multi_label)
