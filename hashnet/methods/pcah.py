"""PCAH: PCA hashing (specs: methods-unsupervised.md section 2):

    fit:    mean, P (d, K) = the top-K principal directions of the fit rows (hashnet.methods.pca)
    encode: b = sign((x - mean) P)

No constants. mAP falls as K grows: the later directions carry little variance but the same Hamming weight.
"""
from __future__ import annotations

import numpy as np
from torch import Tensor

from hashnet.methods.fitted import FittedMethod
from hashnet.methods.pca import as_float64, pca_fit
from hashnet.utils.signs import sign


def pcah_fit(X: Tensor | np.ndarray, K: int) -> dict:
    """X (n, d) -> {"mean": (d,), "P": (d, K)} float64."""
    mean, P = pca_fit(X, K)
    return {"mean": mean, "P": P}


def pcah_encode(model: dict, X: Tensor | np.ndarray) -> Tensor:
    """X (n, d) -> codes (n, K) in {-1, +1} float64."""
    return sign((as_float64(X) - model["mean"]) @ model["P"])


class PCAH(FittedMethod):
    """PCAH fitted on features; the hash layer holds P and the centring."""

    name = "pcah"

    def fit(self, X: Tensor, seed: int) -> tuple[Tensor, Tensor]:
        model = pcah_fit(X, self.hash_bit)
        return model["P"], -model["mean"] @ model["P"]
