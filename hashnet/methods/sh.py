"""SH: Spectral Hashing (Weiss, Torralba, Fergus; NIPS 2008), as Weiss's trainSH.m / compressSH.m (specs:
methods-unsupervised.md section 4):

    fit:    npca = min(K, d);  mean, P = PCA to npca dims;  V = (X - mean) P
            mn = min_rows V - eps;  mx = max_rows V + eps;  R = mx - mn           (per dimension)
            maxMode_i = ceil((K + 1) R_i / max_j R_j)
            candidates: the zero row, then for i = 1..npca the rows m e_i, m = 1 .. maxMode_i - 1
            lambda(row) = sum_i (row_i pi / R_i)^2;  modes (K, npca) = the K rows of smallest lambda after the zero
            row (stable sort: ties keep the enumeration order)
    encode: v = (x - mean) P - mn;  y_k = prod_i cos(modes_ki pi v_i / R_i);  b_k = sign(y_k)

Each mode has one non-zero entry, so y = cos(v Omega^T) with Omega = modes * pi / R: a linear map, then cos.
eps = 1e-7 (FIRe's sh.py; Weiss's MATLAB eps is a no-op in float64). K > d is allowed (several modes a dimension).
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from hashnet.methods.common import check_number
from hashnet.methods.fitted import FittedMethod
from hashnet.methods.pca import as_float64, pca_fit
from hashnet.utils.signs import sign


def sh_fit(X: Tensor | np.ndarray, K: int, eps: float = 1e-7) -> dict:
    """X (n, d) -> {"mean": (d,), "P": (d, npca), "mn": (npca,), "R": (npca,), "modes": (K, npca) int64}."""
    X = as_float64(X)
    npca = min(K, X.shape[1])
    mean, P = pca_fit(X, npca)
    V = (X - mean) @ P
    mn, mx = V.min(dim=0).values - eps, V.max(dim=0).values + eps
    R = mx - mn
    max_mode = torch.ceil((K + 1) * R / R.max()).long()
    rows = [torch.zeros(npca, dtype=torch.long)]
    for i in range(npca):
        for m in range(1, int(max_mode[i])):
            row = torch.zeros(npca, dtype=torch.long)
            row[i] = m
            rows.append(row)
    candidates = torch.stack(rows)
    eigenvalues = ((candidates * math.pi / R) ** 2).sum(dim=1)
    order = torch.sort(eigenvalues, stable=True).indices
    return {"mean": mean, "P": P, "mn": mn, "R": R, "modes": candidates[order[1:K + 1]]}


def sh_frequencies(model: dict) -> Tensor:
    """Omega (K, npca) = modes * pi / R: y = cos(v Omega^T)."""
    return model["modes"] * math.pi / model["R"]


def sh_encode(model: dict, X: Tensor | np.ndarray) -> Tensor:
    """X (n, d) -> codes (n, K) in {-1, +1} float64."""
    v = (as_float64(X) - model["mean"]) @ model["P"] - model["mn"]
    return sign(torch.cos(v @ sh_frequencies(model).T))


class SH(FittedMethod):
    """SH fitted on features: the hash layer gives v (padded with zero columns to K when npca < K), the method's
    forward cos(v Omega^T) with Omega (K, K) its buffer."""

    name = "sh"

    def __init__(self, hash_bit: int, num_classes: int, multi_label: bool, features: str, fit_on: str,
                 seed: int | None, eps: float) -> None:
        super().__init__(hash_bit, num_classes, multi_label, features, fit_on, seed)
        check_number("eps", eps, example=1e-7)
        self.eps = eps
        self.register_buffer("omega", torch.zeros(hash_bit, hash_bit))

    def forward(self, z: Tensor) -> Tensor:
        return torch.cos(z @ self.omega.to(z.dtype).T)

    def fit(self, X: Tensor, seed: int) -> tuple[Tensor, Tensor]:
        model = sh_fit(X, self.hash_bit, self.eps)
        npca = model["P"].shape[1]
        A = torch.zeros(X.shape[1], self.hash_bit, dtype=torch.float64)
        A[:, :npca] = model["P"]
        c = torch.zeros(self.hash_bit, dtype=torch.float64)
        c[:npca] = -model["mean"] @ model["P"] - model["mn"]
        self.omega.zero_()
        self.omega[:, :npca] = sh_frequencies(model)
        return A, c
