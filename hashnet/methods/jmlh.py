"""JMLH: Embarrassingly Simple Binary Representation Learning (Shen et al.; ICCV workshops 2019).

Stochastic binary neurons: b = 1[sigmoid(z) >= eps] in {0, 1}, eps ~ U(0, 1) per entry during training (1/2 at
test, so the retrieval code is sign(z)), with the authors' gradient dL/dz = p (1 - p) dL/db. A linear classifier
(with bias) on b is trained by cross-entropy, and a KL term pulls each bit's Bernoulli(p) towards Bernoulli(1/2):

    p = sigmoid(z);  KL_i = sum_k [log 2 - p_ik softplus(-z_ik) - (1 - p_ik) softplus(z_ik)]
    L = mean_i ( - sum_c y_ic / max(sum_c y_ic, 1) * log_softmax(logits_i)_c ) + kl_weight * mean_i KL_i

Several labels share the cross-entropy's target equally (as OrthoHash and cisip-FIRe's jmlh). Defaults follow
cisip-FIRe's jmlh.yaml (stochastic eps, kl_weight 0.1); the authors' code (ymcidence/TBH) uses eps = 1/2 in training
and kl_weight 0.2, both reachable through the settings.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hashnet.methods.base import HashMethod
from hashnet.methods.common import check_number


class _StochasticBinary(torch.autograd.Function):
    """1[sigmoid(z) >= eps] forward; backward dL/dz = p (1 - p) dL/db."""

    @staticmethod
    def forward(ctx, z: Tensor, eps: Tensor) -> Tensor:
        p = torch.sigmoid(z)
        ctx.save_for_backward(p)
        return (p >= eps).to(z.dtype)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:
        (p,) = ctx.saved_tensors
        return grad * p * (1 - p), None


def jmlh_codes(z: Tensor, eps: Tensor | float) -> Tensor:
    """Hash-layer outputs z (B, K), thresholds eps (B, K) or a number -> b (B, K) in {0, 1}, z's dtype, whose
    gradient is p (1 - p) times b's."""
    return _StochasticBinary.apply(z, torch.as_tensor(eps, dtype=z.dtype, device=z.device))


def jmlh_kl(z: Tensor) -> Tensor:
    """mean_i KL(Bernoulli(sigmoid(z_i)) || Bernoulli(1/2)) summed over the K bits: z (B, K) -> scalar. From the
    logits (log p = -softplus(-z)), so finite with finite gradients for any finite z."""
    p = torch.sigmoid(z)
    kl = math.log(2) - p * F.softplus(-z) - (1 - p) * F.softplus(z)
    return kl.sum(dim=1).mean()


def jmlh_loss(z: Tensor, logits: Tensor, y: Tensor, kl_weight: float = 0.1) -> Tensor:
    """JMLH's loss (module docstring): z (B, K) hash-layer outputs, logits (B, C) of the classifier on the binary
    codes, y (B, C) 0/1 labels -> scalar."""
    y = y.to(logits.dtype)
    target = y / y.sum(dim=1, keepdim=True).clamp(min=1)
    classification = -(target * F.log_softmax(logits, dim=1)).sum(dim=1).mean()
    return classification + kl_weight * jmlh_kl(z)


class JMLH(HashMethod):
    """JMLH on the hash layer's outputs z (h = z; the code is sign(z)); its classifier Linear(K, C) with bias is the
    method's own layer (trained at the hash layer's rate, saved with the checkpoint). stochastic: eps ~ U(0, 1) from
    torch's global generator each step (reseeded from (seed, step, rank) by hashnet.training.callbacks.StepSeed),
    else eps = 1/2."""

    name = "jmlh"

    def __init__(self, hash_bit: int, num_classes: int, multi_label: bool, kl_weight: float,
                 stochastic: bool) -> None:
        super().__init__(hash_bit, num_classes, multi_label)
        check_number("kl_weight", kl_weight)
        self.kl_weight, self.stochastic = kl_weight, bool(stochastic)
        self.classifier = nn.Linear(hash_bit, num_classes)

    def loss(self, h: Tensor, labels: Tensor) -> Tensor:
        eps = torch.rand(h.shape, device=h.device).to(h.dtype) if self.stochastic else 0.5
        logits = self.classifier(jmlh_codes(h, eps))
        return jmlh_loss(h, logits, labels, self.kl_weight)
