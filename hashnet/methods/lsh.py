"""LSH: sign random projections (Charikar 2002), as the ITQ literature applies them (specs: methods-unsupervised.md
section 1):

    fit:    W (K, d) = randn from Generator().manual_seed(seed), float32 draw cast to float64
            mean = the mean of the fit rows (centre=true, Gong & Lazebnik's "center the data"), else 0
    encode: b = sign((x - mean) W^T)

centre=false reproduces FIRe's lsh.py (no centring: on non-negative features most points fall on one side of every
hyperplane).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from hashnet.methods.fitted import FittedMethod
from hashnet.methods.pca import as_float64, random_normal
from hashnet.utils.signs import sign


def lsh_draw(K: int, d: int, seed: int) -> Tensor:
    """W (K, d) float64: the seeded float32 Gaussian draw."""
    return random_normal((K, d), seed)


def lsh_fit(X: Tensor | np.ndarray, K: int, seed: int = 0, centre: bool = True, W: Tensor | None = None) -> dict:
    """X (n, d) -> {"mean": (d,), "W": (K, d)} float64; W given replaces the draw."""
    X = as_float64(X)
    mean = X.mean(dim=0) if centre else torch.zeros(X.shape[1], dtype=torch.float64)
    return {"mean": mean, "W": lsh_draw(K, X.shape[1], seed) if W is None else as_float64(W)}


def lsh_encode(model: dict, X: Tensor | np.ndarray) -> Tensor:
    """X (n, d) -> codes (n, K) in {-1, +1} float64."""
    return sign((as_float64(X) - model["mean"]) @ model["W"].T)


class LSH(FittedMethod):
    """LSH fitted on features; the hash layer holds W and the centring."""

    name = "lsh"

    def __init__(self, hash_bit: int, num_classes: int, multi_label: bool, features: str, fit_on: str,
                 seed: int | None, centre: bool) -> None:
        super().__init__(hash_bit, num_classes, multi_label, features, fit_on, seed)
        self.centre = centre

    def fit(self, X: Tensor, seed: int) -> tuple[Tensor, Tensor]:
        model = lsh_fit(X, self.hash_bit, seed, self.centre)
        return model["W"].T, -model["mean"] @ model["W"].T
