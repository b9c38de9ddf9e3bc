"""The PCA that PCAH, ITQ and SH share (specs: methods-unsupervised.md, "PCA"), in float64.

pca_fit: the mean of the fit rows and the top-k eigenvectors of their covariance (torch.linalg.eigh), eigenvalues in
descending order by a stable sort, each direction flipped so that its entry of largest |value| (the first on ties)
is positive: scikit-learn >= 1.5's svd_flip(u_based_decision=False), so the result is unique. With fewer rows than
features (n <= d) the same directions come from the n x n Gram matrix of the centred rows (C = X^T X / (n - 1) and
X X^T / (n - 1) share their non-zero eigenvalues; a direction is X^T u, normalised): a few images of many pixels fit
in milliseconds instead of a d x d decomposition.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from hashnet.utils.errors import ConfigError
from hashnet.utils.signs import sign


def as_float64(X: Tensor | np.ndarray) -> Tensor:
    """A feature matrix (n, d), tensor or array, as a float64 tensor on the CPU."""
    return torch.as_tensor(X).detach().to("cpu", torch.float64)


def random_normal(shape: tuple[int, ...], seed: int) -> Tensor:
    """torch.randn(shape) in float32 from Generator().manual_seed(seed), cast to float64: every shallow draw."""
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float32).double()


def check_bits(k: int, n: int, d: int, key: str = "hash_bit") -> None:
    """ConfigError naming key unless k <= min(d, n - 1): the directions a covariance of n rows of d numbers has."""
    if k > min(d, n - 1):
        raise ConfigError(f"{key}={k}: PCA of {n} rows of {d} features gives at most {min(d, n - 1)} directions -- "
                          f"pass {key}={min(d, n - 1) // 8 * 8 or 8} or fit on more rows (method.fit_on=database)")


def canonical_signs(P: Tensor) -> Tensor:
    """P (d, k) with each column multiplied by the sign of its entry of largest |value| (the first on ties)."""
    rows = P.abs().argmax(dim=0)  # the first maximum, as torch documents
    return P * sign(P[rows, torch.arange(P.shape[1])])


def pca_fit(X: Tensor | np.ndarray, k: int) -> tuple[Tensor, Tensor]:
    """X (n, d) -> (mean (d,), P (d, k)): the top-k principal directions, canonical signs, float64."""
    X = as_float64(X)
    n, d = X.shape
    check_bits(k, n, d)
    mean = X.mean(dim=0)
    centred = X - mean
    gram = n <= d
    values, vectors = torch.linalg.eigh((centred @ centred.T if gram else centred.T @ centred) / (n - 1))
    top = vectors[:, torch.sort(values, descending=True, stable=True).indices[:k]]
    if gram:
        top = centred.T @ top
        top = top / top.norm(dim=0).clamp_min(torch.finfo(top.dtype).tiny)
    return mean, canonical_signs(top)
