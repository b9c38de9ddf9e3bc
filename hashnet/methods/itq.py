"""ITQ: Iterative Quantization (Gong & Lazebnik, CVPR 2011; specs: methods-unsupervised.md section 3):

    fit:    mean, P as PCAH;  V = (X - mean) P   (n, K), not whitened
            R_0 = random_rotation(K, seed);  then `iters` times:
                B = sign(V R);  U, S, Vh = svd(B^T V);  R = Vh^T U^T     (orthogonal Procrustes)
    encode: b = sign((x - mean) P R)
    losses[t] = ||sign(V R_t) - V R_t||_F^2, t = 0..iters, non-increasing

iters = 50: the paper's "50 iterations" (Gong's demo's ITQ(V, 50) performs 51 updates: iters=51 reproduces it).
FIRe's itq.py sets R = V^T U^T from torch.svd (which returns V, not V^T): not the Procrustes solution.
"""
from __future__ import annotations

import logging

import numpy as np
import torch
from torch import Tensor

from hashnet.methods.common import check_number
from hashnet.methods.fitted import FittedMethod
from hashnet.methods.pca import as_float64, pca_fit, random_normal
from hashnet.utils.signs import sign

log = logging.getLogger(__name__)


def random_rotation(K: int, seed: int) -> Tensor:
    """R_0 (K, K) float64, Haar-distributed: Q of the QR of a seeded Gaussian G, columns times sign(diag(T))."""
    Q, T = torch.linalg.qr(random_normal((K, K), seed))
    return Q * sign(torch.diagonal(T))


def itq_quantization_loss(V: Tensor, R: Tensor) -> float:
    """||sign(V R) - V R||_F^2 of projections V (n, K) under the rotation R (K, K)."""
    rotated = V @ R
    return float(((sign(rotated) - rotated) ** 2).sum())


def itq_fit(X: Tensor | np.ndarray, K: int, iters: int = 50, seed: int = 0, R0: Tensor | None = None) -> dict:
    """X (n, d) -> {"mean": (d,), "P": (d, K), "R": (K, K), "losses": [iters + 1 floats]}, float64."""
    X = as_float64(X)
    mean, P = pca_fit(X, K)
    V = (X - mean) @ P
    R = random_rotation(K, seed) if R0 is None else as_float64(R0)
    losses = [itq_quantization_loss(V, R)]
    for _ in range(iters):
        U, _, Vh = torch.linalg.svd(sign(V @ R).T @ V)
        R = Vh.T @ U.T
        losses.append(itq_quantization_loss(V, R))
    return {"mean": mean, "P": P, "R": R, "losses": losses}


def itq_encode(model: dict, X: Tensor | np.ndarray) -> Tensor:
    """X (n, d) -> codes (n, K) in {-1, +1} float64."""
    return sign((as_float64(X) - model["mean"]) @ model["P"] @ model["R"])


class ITQ(FittedMethod):
    """ITQ fitted on features; the hash layer holds P R and the centring."""

    name = "itq"

    def __init__(self, hash_bit: int, num_classes: int, multi_label: bool, features: str, fit_on: str,
                 seed: int | None, iters: int) -> None:
        super().__init__(hash_bit, num_classes, multi_label, features, fit_on, seed)
        check_number("iters", iters, example=50)
        self.iters = int(iters)

    def fit(self, X: Tensor, seed: int) -> tuple[Tensor, Tensor]:
        model = itq_fit(X, self.hash_bit, self.iters, seed)
        log.info("ITQ quantization loss %.6g -> %.6g in %d iterations", model["losses"][0], model["losses"][-1],
                      self.iters)
        projection = model["P"] @ model["R"]
        return projection, -model["mean"] @ projection
