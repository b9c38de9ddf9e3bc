"""DSDH: Deep Supervised Discrete Hashing (Li, Sun, He, Tan; NeurIPS 2017), as the authors' released per-batch code.

The hash layer's outputs u are the codes (no activation). Each training step solves, from the batch's detached u
and labels y, a ridge regression of the labels on sign(u) (W, the paper's W-step, nu its ridge) and then the
discrete codes b that minimise |y_i - W^T b_i|^2 + eta |b_i - u_i|^2 (the B-subproblem, by discrete cyclic
coordinate descent, sign(0) = +1):

    W = (b0^T b0 + nu I)^-1 b0^T y,  b0 = sign(u);   Q = eta u + y W^T
    b[:, k] = sign(Q[:, k] - sum_{l != k} b[:, l] <W_l, W_k>), k = 0..K-1 in order, from b = 0, at most `passes`
    passes, stopping after one that changed nothing
    L = mean_ij(softplus(theta_ij) - s_ij theta_ij) + quantization_weight * mean of (u - b)^2 over cat(u1, u2)

quantization_weight auto = eta K / (2 N), N the training set's size: the weight the authors' update.m gives the
eta term against the likelihood in our means (their likelihood gradient omits theta's 1/2, doubling it). The paper's
Algorithm 1 (and TreezzZ's port) solves W and B over the whole training set once an epoch; we follow the released
code, which is what produced the paper's numbers.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch import Tensor

from hashnet.methods.base import PairwiseMethod
from hashnet.methods.common import check_number, pairwise_likelihood
from hashnet.utils.signs import sign


def dsdh_regression(b0: Tensor, y: Tensor, nu: float = 0.1) -> Tensor:
    """W (K, C) = (b0^T b0 + nu I)^-1 b0^T y for codes b0 (B, K) in {-1, +1} and labels y (B, C), b0's dtype."""
    eye = torch.eye(b0.shape[1], dtype=b0.dtype, device=b0.device)
    return torch.linalg.solve(b0.T @ b0 + nu * eye, b0.T @ y.to(b0.dtype))


@torch.no_grad()
def dsdh_codes(u: Tensor, y: Tensor, eta: float = 55.0, nu: float = 0.1, passes: int = 10,
               w: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """(b (B, K) in {-1, +1}, W (K, C)) of the module docstring for codes u (B, K) and labels y (B, C), in u's dtype;
    w given: that W (computed from every process's batch) instead of the regression on this u."""
    u = u.detach()
    w = dsdh_regression(sign(u), y, nu) if w is None else w.to(u.dtype)
    q = eta * u + y.to(u.dtype) @ w.T
    gram = w @ w.T  # (K, K): <W_l, W_k>
    b = torch.zeros_like(u)
    for _ in range(passes):
        before = b.clone()
        for k in range(u.shape[1]):
            b[:, k] = sign(q[:, k] - b @ gram[:, k] + b[:, k] * gram[k, k])
        if torch.equal(b, before):
            break
    return b, w


def dsdh_loss(u1: Tensor, u2: Tensor, y1: Tensor, y2: Tensor, b1: Tensor, b2: Tensor | None = None,
              scale: float = 0.5, quantization_weight: float = 0.1) -> Tensor:
    """DSDH's loss for codes u1 (B1, K), u2 (B2, K), labels y1, y2 and discrete codes b1 (B1, K), b2 (B2, K) -> scalar;
    b2 None: u2 is a memory bank and the quantization term covers u1 alone."""
    u, b = (u1, b1) if b2 is None else (torch.cat((u1, u2)), torch.cat((b1, b2)))
    return pairwise_likelihood(u1, u2, y1, y2, scale) + quantization_weight * (u - b.to(u.dtype)).pow(2).mean()


class DSDH(PairwiseMethod):
    """DSDH on the hash layer's outputs: W (K, C), a buffer, is the regression on every process's batch (observe());
    each process's b comes from its own rows and that W. quantization_weight "auto" needs train_size (resolve())."""

    name = "dsdh"
    pair_loss = staticmethod(dsdh_loss)
    keeps_state = True

    def __init__(self, hash_bit: int, num_classes: int, multi_label: bool, pairs: str, scale: float, eta: float,
                 nu: float, dcc_passes: int, quantization_weight: float | str, train_size: int | None = None,
                 bank_size: int | None = None) -> None:
        check_number("scale", scale, strict=True, example=0.5)
        check_number("eta", eta, example=55)
        check_number("nu", nu, strict=True, example=0.1)
        check_number("dcc_passes", dcc_passes, minimum=1, example=10)
        if quantization_weight == "auto":
            if train_size is None:  # train() and the tests' resolved models call resolve() first
                raise ValueError("DSDH: quantization_weight 'auto' needs train_size, the number of training images, "
                                 "which DSDH.resolve() fills in; or give quantization_weight as a number")
            quantization_weight = eta * hash_bit / (2 * train_size)
        check_number("quantization_weight", quantization_weight, example=0.26)
        super().__init__(hash_bit, num_classes, multi_label, pairs, bank_size, scale=scale,
                         quantization_weight=float(quantization_weight))
        self.eta, self.nu, self.passes = eta, nu, int(dcc_passes)
        self.register_buffer("w", torch.zeros(hash_bit, num_classes))

    def observe_state(self, h: Tensor, labels: Tensor, index: Tensor) -> None:
        self.w.copy_(dsdh_regression(sign(h.detach()), labels, self.nu))

    def loss(self, h: Tensor, labels: Tensor) -> Tensor:
        """The loss of a batch seen alone (no observe()): W is the regression on this batch."""
        return self.coded_loss(h, labels, None)

    def training_loss(self, h: Tensor, labels: Tensor, index: Tensor) -> Tensor:
        return self.coded_loss(h, labels, self.w)

    def coded_loss(self, h: Tensor, labels: Tensor, w: Tensor | None) -> Tensor:
        """dsdh_loss with this process's b = dsdh_codes(h, labels, w=w) (w None: the regression on this batch)."""
        return self.coded_pair_loss(h, labels, dsdh_codes(h, labels, self.eta, self.nu, self.passes, w)[0])

    @classmethod
    def resolve(cls, config: dict, train_labels: Callable[[], np.ndarray]) -> dict:
        """quantization_weight=auto: train_size = the number of training images (and the bank's size, pairs=bank)."""
        config = super().resolve(config, train_labels)
        return {**config, "train_size": len(train_labels())} if config.get("quantization_weight") == "auto" else config
