"""ADSH: Asymmetric Deep Supervised Hashing (Jiang, Li; AAAI 2018).

Codes u = tanh(z) of a batch (the query side) are fitted to the database codes V (N, K) in {-1, 0, +1} of the N
training images, a state learned in closed form. With the soft constraint s~_ij = 1 if y_i . y_j > 0 else -r:

    L = [sum_ij (<u_i, v_j> - K s~_ij)^2 + gamma sum_i |v_own(i) - u_i|^2] / (B M)

over the M images written to the memory bank so far (v_j their rows of V, own(i) image i's). At the end of every
`epochs_per_update` epochs V is solved one column at a time (the paper's Eq. 10), every bank row being a sampled
query (Omega) and a database image (Gamma), U their bank codes:

    V[:, k] = sign(K S~^T U[:, k] + gamma Ubar[:, k] - V_{-k} (U_{-k}^T U[:, k])),  k = 0..K-1 in order

The authors sample 2,000 images per outer iteration and train 3 epochs on them; we use every training image and one
V-step per epoch (the m = n end of their sample-size study). r: one number from the whole training set.
Evaluation ranks the network's codes (as DeepHash-pytorch), not V.
"""
from __future__ import annotations

import logging
from typing import Callable

import numpy as np
import pytorch_lightning as pl
import torch
from torch import Tensor

from hashnet.methods.bank import MemoryBank
from hashnet.methods.base import HashMethod
from hashnet.methods.common import check_number, similarity
from hashnet.utils.signs import sign

log = logging.getLogger(__name__)
CHUNK = 4096  # rows of labels compared at a time in adsh_ratio


def adsh_ratio(labels: Tensor | np.ndarray) -> float:
    """r = sum S / sum (1 - S) over all ordered pairs of the N rows of labels (N, C), i == j included."""
    y = torch.as_tensor(np.asarray(labels), dtype=torch.float64)
    similar = sum(float(similarity(part, y).sum()) for part in y.split(CHUNK))
    return similar / max(len(y) ** 2 - similar, 1.0)


def adsh_soft_similarity(y1: Tensor, y2: Tensor, r: float) -> Tensor:
    """s~ (B1, B2) = 1 where rows of y1 (B1, C) and y2 (B2, C) share a label, else -r (float32)."""
    return similarity(y1, y2) * (1 + r) - r


def adsh_loss(u: Tensor, y: Tensor, v: Tensor, y_db: Tensor, own: Tensor, gamma: float = 200.0, *,
              r: float) -> Tensor:
    """ADSH's loss (module docstring): codes u (B, K), labels y (B, C), database codes v (M, K) with labels
    y_db (M, C), own (B, K) the rows of V of the batch's images -> scalar in u's dtype (B M floored at 1)."""
    bits = u.shape[1]
    s_tilde = adsh_soft_similarity(y, y_db, r).to(u.dtype)
    fit = (u @ v.to(u.dtype).T - bits * s_tilde).pow(2).sum()
    anchor = (own.to(u.dtype) - u).pow(2).sum()
    return (fit + gamma * anchor) / max(len(u) * len(v), 1)


@torch.no_grad()
def adsh_update_codes(v: Tensor, u_omega: Tensor, omega: Tensor, s_tilde: Tensor, gamma: float = 200.0) -> Tensor:
    """The V-step (module docstring): database codes v (n, K), the sampled images' codes u_omega (m, K) at rows
    omega (m,) of the database, s_tilde (m, n) -> new v (n, K) in {-1, +1}, u_omega's dtype (v is not changed)."""
    u = u_omega.detach()
    v = v.to(u.dtype).clone()
    bits = u.shape[1]
    u_bar = torch.zeros_like(v)
    u_bar[omega] = u
    q = bits * s_tilde.to(u.dtype).T @ u + gamma * u_bar  # (n, K)
    gram = u.T @ u  # (K, K)
    for k in range(bits):
        v[:, k] = sign(q[:, k] - v @ gram[:, k] + v[:, k] * gram[k, k])
    return v


class CodeUpdate(pl.Callback):
    """Runs the method's V-step at the end of every `epochs_per_update`-th training epoch (on every process, from
    the same bank, so all hold the same V)."""

    def __init__(self, method: ADSH) -> None:
        self.method = method

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if (trainer.current_epoch + 1) % self.method.epochs_per_update == 0:
            self.method.update_codes()


class ADSH(HashMethod):
    """ADSH: h = tanh(z); the bank (latest codes and labels of the training images) and V (N, K) are buffers saved
    with the checkpoint. bank_size (N) and soft_constraint "auto" (r) are filled in by resolve()."""

    name = "adsh"

    def __init__(self, hash_bit: int, num_classes: int, multi_label: bool, gamma: float,
                 soft_constraint: float | str, epochs_per_update: int, bank_size: int | None = None) -> None:
        super().__init__(hash_bit, num_classes, multi_label)
        check_number("gamma", gamma, example=200)
        check_number("soft_constraint", soft_constraint, example=0.111)
        check_number("epochs_per_update", epochs_per_update, minimum=1, example=1)
        if bank_size is None:  # train() and the tests' resolved models call resolve() first
            raise ValueError("ADSH needs bank_size, the number of training images, which ADSH.resolve() fills in")
        self.gamma, self.r, self.epochs_per_update = gamma, float(soft_constraint), int(epochs_per_update)
        self.bank = MemoryBank(bank_size, hash_bit, num_classes)
        self.register_buffer("v", torch.zeros(bank_size, hash_bit))

    def forward(self, z: Tensor) -> Tensor:
        """z (N, K) -> tanh(z) (N, K)."""
        return torch.tanh(z)

    @property
    def observes(self) -> bool:
        return True

    def observe(self, h: Tensor, labels: Tensor, index: Tensor) -> None:
        self.bank.write(h, labels, index)

    def training_loss(self, h: Tensor, labels: Tensor, index: Tensor) -> Tensor:
        written = self.bank.written
        return adsh_loss(h, labels, self.v[written], self.bank.labels[written], self.v[index], self.gamma, r=self.r)

    def update_codes(self) -> None:
        """The V-step on the bank's written rows (Omega = Gamma), in float64; rows never written stay 0."""
        rows = self.bank.written.nonzero().squeeze(1)
        codes, labels = self.bank.codes[rows].double(), self.bank.labels[rows]
        s_tilde = adsh_soft_similarity(labels, labels, self.r)
        omega = torch.arange(len(rows), device=rows.device)
        self.v[rows] = adsh_update_codes(self.v[rows], codes, omega, s_tilde, self.gamma).to(self.v.dtype)

    def callbacks(self) -> list[pl.Callback]:
        return [CodeUpdate(self)]

    @classmethod
    def resolve(cls, config: dict, train_labels: Callable[[], np.ndarray]) -> dict:
        """bank_size = the number of training images; soft_constraint=auto: r of the training labels (logged)."""
        labels = train_labels()
        config = {**super().resolve(config, train_labels), "bank_size": len(labels)}
        if config.get("soft_constraint") == "auto":
            config["soft_constraint"] = adsh_ratio(labels)
            log.info("ADSH soft_constraint auto: r of the training labels = %.4f", config["soft_constraint"])
        return config
