"""OrthoHash, cosine variant (Hoe, Ng, Zhang, Chan, Song, Xiang, NeurIPS 2021, "One Loss for All").

Codes h = BatchNorm1d(K)(hash layer), the method's own layer with torch's defaults (the authors'
models/alexnet.py: Linear without bias, then BatchNorm1d; the BN balances the bits). Each class owns a
fixed binary code c_k, a row of the codebook, and the codes are trained as cosine-softmax logits with
an additive margin on every positive class:

    cos_ik   = <h_i, c_k> / (max(|h_i|, 1e-12) * |c_k|)
    logit_ik = scale * (cos_ik - margin * y_ik)
    p_ik     = y_ik / max(sum_k y_ik, 1)                    label smoothing over the positives
    L        = mean over the B images of (- sum_k p_ik * log_softmax_k(logit_i))

With one-hot y this is F.cross_entropy(logits, y.argmax(1)); with several labels it is the authors'
`label_smoothing` loss (kamwoh/orthohash functions/loss/orthohash.py; FIRe's orthocos.py). An
unlabelled image adds 0 but still counts in the mean. There is no quantization term (the authors'
`quan` is 0).

Codebook: a fixed buffer built as hashnet.methods.csq.hash_centers: rows of [H; -H] (H the K x K
Sylvester Hadamard matrix) when K is a power of 2 and C <= 2K, else seeded Bernoulli(0.5). The
authors' default is Bernoulli (`--codebook-method B`), FIRe's an optimised random code (`cent_init: M`);
we take exactly orthogonal rows where they exist (the paper's "binary orthogonal codes").
Defaults: scale 8 (the authors' main.py `--scale 8`; FIRe's orthocos.yaml `s: 8`); margin 0.3 (FIRe's
`m: 0.3` and the authors' README CIFAR-10 command; their main.py default is 0.2).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hashnet.methods.base import HashMethod
from hashnet.methods.common import check_number
from hashnet.methods.csq import hash_centers


def orthohash_codebook(num_classes: int, hash_bit: int, seed: int = 0) -> Tensor:
    """(num_classes, hash_bit) float32 codebook in {-1, +1}: hashnet.methods.csq.hash_centers itself."""
    return hash_centers(num_classes, hash_bit, seed)


def orthohash_loss(h: Tensor, y: Tensor, codebook: Tensor, scale: float = 8.0, margin: float = 0.3) -> Tensor:
    """OrthoHash's loss (module docstring) -> scalar in h's dtype.

    h: (B, K) codes; y: (B, C) 0/1 labels of any dtype; codebook: (C, K) from orthohash_codebook. The
    logits lie in [-scale * (1 + margin), scale], so the loss is finite for any finite h.
    """
    codebook = codebook.to(h.device, h.dtype)
    cos = F.normalize(h, dim=1, eps=1e-12) @ (codebook / torch.linalg.vector_norm(codebook, dim=1, keepdim=True)).T
    y = y.to(h.dtype)
    logits = scale * (cos - margin * y)
    p = y / y.sum(dim=1, keepdim=True).clamp(min=1)
    return -(p * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


class OrthoHash(HashMethod):
    """OrthoHash: h = BatchNorm1d(K)(hash layer), its own layer (trained at the hash layer's rate, its running
    statistics saved with the checkpoint); the codebook (C, K) is a buffer saved with the checkpoint."""

    name = "orthohash"

    def __init__(self, hash_bit: int, num_classes: int, multi_label: bool, scale: float, margin: float,
                 seed: int) -> None:
        check_number("scale", scale, strict=True, example=8)
        check_number("margin", margin, example=0.3)
        super().__init__(hash_bit, num_classes, multi_label)
        self.scale, self.margin = scale, margin
        self.batch_norm = nn.BatchNorm1d(hash_bit)
        self.register_buffer("codebook", orthohash_codebook(num_classes, hash_bit, seed))

    def forward(self, z: Tensor) -> Tensor:
        """z (N, K) -> BatchNorm1d(z) (N, K): batch statistics in training, running ones in evaluation."""
        return self.batch_norm(z)

    def loss(self, h: Tensor, labels: Tensor) -> Tensor:
        return orthohash_loss(h, labels, self.codebook, self.scale, self.margin)
