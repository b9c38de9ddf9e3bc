"""HashNet: Deep Learning to Hash by Continuation (Cao, Long, Wang, Yu; ICCV 2017).

Code layer: h = tanh(beta * z), with beta raised over training (continuation) so that tanh approaches
sign. Loss: the weighted pairwise likelihood (Eq. 4-5). For two sets of codes and their 0/1 labels,
every cross pair (i, j) gets s_ij = 1 when the images share a label, and the scaled inner product of
their codes acts as the logit of that similarity:

    theta_ij = alpha * <h1_i, h2_j>
    l_ij     = log(1 + exp(theta_ij)) - s_ij * theta_ij      if theta_ij <= threshold
             = theta_ij * (1 - s_ij)                         otherwise
    L        = (class_num * sum_{s=1} l_ij + sum_{s=0} l_ij) / (class_num * |S1| + |S0|)

class_num weights similar pairs against dissimilar ones (the paper's w_ij = |S| / |S1|);
similar_pair_weight computes that ratio from a training set's labels (method.class_num=auto).
The paper's ablations are options: weighted=false (HashNet-W), continuation=false (HashNet-sgn).
"""
from __future__ import annotations

import logging
import math
from typing import Callable

import numpy as np
import pytorch_lightning as pl
import torch
from torch import Tensor

from hashnet.methods.base import PairwiseMethod
from hashnet.methods.common import check_number, likelihood_terms, similarity
from hashnet.utils.errors import ConfigError

log = logging.getLogger(__name__)


def pairwise_loss(h1: Tensor, h2: Tensor, y1: Tensor, y2: Tensor, alpha: float, class_num: float,
                  threshold: float) -> Tensor:
    """Weighted pairwise cross-entropy over all (h1_i, h2_j) pairs (module docstring) -> scalar in h1's dtype.

    h1: (B1, K), h2: (B2, K) continuous codes in [-1, 1]; y1: (B1, C), y2: (B2, C) 0/1 labels. alpha scales
    inner products into logits (HashNet uses 10 / K); class_num weights similar pairs; above `threshold` the
    logit's softplus is replaced by the logit itself, as in the original. Finite, with finite gradients, for
    any code scale (common.likelihood_terms).
    """
    theta = alpha * (h1 @ h2.T)
    s = similarity(y1, y2)
    weight = torch.where(s > 0, float(class_num), 1.0).to(theta.dtype)
    return (weight * likelihood_terms(theta, s, threshold)).sum() / weight.sum()


_WEIGHT_CHUNK = 1 << 22  # label-row pairs per chunk of similar_pair_weight


def similar_pair_weight(labels: np.ndarray) -> float:
    """The paper's w = |S| / |S1|: pairs of distinct images over those that share a label.

    labels: (N, C) 0/1 training labels, N >= 2. Identical rows are counted once with their
    multiplicity, so the cost is O(U^2 C) for U distinct rows, in chunks of bounded memory.
    Raises ValueError when no two images share a label (the ratio is undefined).
    """
    rows, counts = np.unique(np.asarray(labels) > 0, axis=0, return_counts=True)
    rows, counts = rows.astype(np.float32), counts.astype(np.float64)
    n = counts.sum()
    similar = -float(counts @ (rows.sum(axis=1) > 0))  # ordered pairs (i, j), i != j: drop i == j
    step = max(1, _WEIGHT_CHUNK // len(rows))
    for start in range(0, len(rows), step):
        shares = (rows[start:start + step] @ rows.T > 0).astype(np.float64)  # (chunk, U)
        similar += float(counts[start:start + step] @ shares @ counts)
    if similar <= 0:
        raise ConfigError(f"no two of the {int(n)} training images share a label: method.class_num=auto is "
                         "undefined -- set method.class_num to a number")
    return float(n * (n - 1) / similar)


def beta_at(step: int, init_scale: float, gamma: float, power: float, step_size: int) -> float:
    """beta = init_scale * (1 + gamma * t) ** power, t = step_size * floor(step / step_size).

    With configs/method/hashnet.yaml's values beta is 1 until step 200 and about 6.78 at step 9000.
    """
    t = step_size * (step // step_size)
    return init_scale * math.pow(1.0 + gamma * t, power)


class Continuation(pl.Callback):
    """Sets the method's beta from `trainer.global_step` before each training batch, and logs it.

    beta is a pure function of the step (HashNet.beta_at), so it is right after a resume.
    """

    def __init__(self, method: HashNet) -> None:
        self.method = method

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch, batch_idx: int) -> None:
        beta = self.method.beta_at(trainer.global_step)
        self.method.beta.fill_(beta)
        pl_module.log("train/beta", beta, prog_bar=True)  # a Python float: logging it never waits for the device


class HashNet(PairwiseMethod):
    """HashNet's code layer tanh(beta * z), its weighted pairwise loss and its continuation of beta.

    alpha: logit scale of <h_i, h_j> (None: 10 / hash_bit); class_num: weight of similar pairs, a number
    ("auto" is resolved from the training labels before construction); weighted=False trains with
    weight 1 (HashNet-W); threshold: see pairwise_loss; pairs: "halves" (the two halves of a batch against
    each other), "all" (the batch against itself, i == j included) or "bank" (against a memory bank of the training
    codes, hashnet.methods.base.PairwiseMethod); continuation=False keeps beta at init_scale
    (HashNet-sgn); init_scale, gamma, power, step_size: beta_at's schedule. beta is a buffer, so it is
    saved with the weights.
    """

    name = "hashnet"

    pair_loss = staticmethod(pairwise_loss)
    regularizes = False  # no quantization term

    def __init__(self, hash_bit: int, num_classes: int, multi_label: bool, alpha: float | None, class_num: float,
                 weighted: bool, threshold: float, pairs: str, continuation: bool, init_scale: float,
                 gamma: float, power: float, step_size: int, bank_size: int | None = None) -> None:
        if isinstance(class_num, str) or isinstance(class_num, bool) or not class_num > 0:
            raise ConfigError(f"method.class_num={class_num!r}: it must be a positive number or auto -- pass e.g. "
                              "method.class_num=auto (|S|/|S1| of the training labels, resolved by training)")
        if not weighted and class_num == 1:
            raise ConfigError("method.weighted=false (HashNet-W) changes nothing here: method.class_num is already 1, "
                              "so this run would train HashNet again -- drop method.weighted=false for this dataset")
        if alpha is not None:
            check_number("alpha", alpha, strict=True, example=10 / hash_bit)
        for key, value, example in (("init_scale", init_scale, 1.0), ("gamma", gamma, 0.005), ("power", power, 0.5)):
            check_number(key, value, strict=key == "init_scale", example=example)
        check_number("step_size", step_size, minimum=1, example=200)
        alpha = alpha or 10.0 / hash_bit
        class_num = float(class_num) if weighted else 1.0  # HashNet-W: every pair weighs 1
        super().__init__(hash_bit, num_classes, multi_label, pairs, bank_size, alpha=alpha, class_num=class_num,
                         threshold=threshold)
        self.alpha, self.class_num, self.threshold, self.continuation = alpha, class_num, threshold, continuation
        self.schedule = {"init_scale": init_scale, "gamma": gamma, "power": power, "step_size": step_size}
        self.register_buffer("beta", torch.tensor(float(init_scale)))

    def beta_at(self, step: int) -> float:
        """beta at a global step: the continuation schedule, or init_scale without continuation."""
        return beta_at(step, **self.schedule) if self.continuation else self.schedule["init_scale"]

    def forward(self, z: Tensor) -> Tensor:
        """z (N, K) -> tanh(beta * z) (N, K) in (-1, 1)."""
        return torch.tanh(self.beta * z)

    def callbacks(self) -> list[pl.Callback]:
        return [Continuation(self)]

    @classmethod
    def resolve(cls, config: dict, train_labels: Callable[[], np.ndarray]) -> dict:
        """class_num=auto -> |S| / |S1| of the training labels (logged; also with weighted=false, so that HashNet-W
        can be refused where it equals HashNet)."""
        config = super().resolve(config, train_labels)
        if config.get("class_num") != "auto":
            return config
        class_num = similar_pair_weight(train_labels())
        log.info("method.class_num=auto: |S| / |S1| of the training labels = %.4f", class_num)
        return {**config, "class_num": class_num}
