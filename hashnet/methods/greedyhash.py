"""GreedyHash (Su, Zhang, Han, Tian, NeurIPS 2018).

The codes are b = sign(h) in the forward pass, and the gradient reaches h unchanged (a
straight-through estimator: the greedy step towards the nearest binary solution). A linear
classifier on b gives logits, trained with cross-entropy; a cubic penalty pulls h towards +-1:

    L = CE(logits, argmax y)                       (mean over the batch), or, multi-label,
        BCE-with-logits(logits, y)                 (mean over all B x C entries)
        + penalty_weight * mean over the entries of h of | |h| - 1 |^3

Default: penalty_weight = 0.1, the authors' code (ssppp/GreedyHash, cifar1.py: loss1 + 0.1 * loss2).
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from hashnet.methods.base import HashMethod
from hashnet.methods.common import check_number
from hashnet.methods.straight_through import sign_ste


def greedyhash_loss(h: Tensor, logits: Tensor, y: Tensor,
                    penalty_weight: float = 0.1, multi_label: bool = False) -> Tensor:
    """GreedyHash's loss (module docstring) -> scalar.

    h: (B, K) hash-layer outputs before sign_ste; logits: (B, C) of the classifier on sign_ste(h);
    y: (B, C) 0/1 labels (one-hot unless multi_label). Both classification losses work from logits
    (log-softmax / softplus), so they are finite for any finite logits.
    """
    if multi_label:
        classification = F.binary_cross_entropy_with_logits(logits, y.to(logits.dtype))
    else:
        classification = F.cross_entropy(logits, y.argmax(dim=1))
    return classification + penalty_weight * (h.abs() - 1).abs().pow(3).mean()


class GreedyHash(HashMethod):
    """GreedyHash: h = the hash layer's outputs, b = sign_ste(h), logits = classifier(b) (B, C).

    The classifier is the method's own layer (Linear(K, C) without bias, as the authors' code), trained at
    the hash layer's learning rate and saved with the checkpoint; multi_label comes from the dataset.
    """

    name = "greedyhash"

    def __init__(self, hash_bit: int, num_classes: int, multi_label: bool, penalty_weight: float) -> None:
        super().__init__(hash_bit, num_classes, multi_label)
        check_number("penalty_weight", penalty_weight)
        self.penalty_weight = penalty_weight
        self.classifier = nn.Linear(hash_bit, num_classes, bias=False)

    def loss(self, h: Tensor, labels: Tensor) -> Tensor:
        logits = self.classifier(sign_ste(h))
        return greedyhash_loss(h, logits, labels, self.penalty_weight, self.multi_label)
