"""Continuation: tanh(beta * z) approaches sign(z) as beta grows over training.

The schedule is a pure function of the global step (so it is right after a resume) and a thin
Callback writes it into the network before every training step.
"""
from __future__ import annotations

import math

import pytorch_lightning as pl


def beta_at(
    step: int,
    init_scale: float = 1.0,
    gamma: float = 0.005,
    power: float = 0.5,
    step_size: int = 200,
) -> float:
    """beta = init_scale * (1 + gamma * t) ** power, t = step_size * floor(step / step_size).

    With the defaults beta is 1 until step 200 and about 6.78 at step 9000.
    """
    t = step_size * (step // step_size)
    return init_scale * math.pow(1.0 + gamma * t, power)


class Continuation(pl.Callback):
    """Sets `pl_module.net.beta` from `trainer.global_step` before each training batch.

    enabled=False keeps beta at init_scale (the paper's HashNet-sgn ablation).
    """

    def __init__(
        self,
        enabled: bool = True,
        init_scale: float = 1.0,
        gamma: float = 0.005,
        power: float = 0.5,
        step_size: int = 200,
    ) -> None:
        self.enabled = enabled
        self.init_scale = init_scale
        self.gamma = gamma
        self.power = power
        self.step_size = step_size

    def beta(self, step: int) -> float:
        if not self.enabled:
            return self.init_scale
        return beta_at(step, self.init_scale, self.gamma, self.power, self.step_size)

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch, batch_idx: int) -> None:
        beta = self.beta(trainer.global_step)
        pl_module.net.set_beta(beta)
        pl_module.log("train/beta", beta, prog_bar=True)  # a Python float: logging it never waits for the device
