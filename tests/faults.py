"""Faults injected into training runs by the reliability tests, as callbacks a config can name."""
from __future__ import annotations

import os
import signal
import time

import pytorch_lightning as pl
import torch


class KillAt(pl.Callback):
    """SIGKILLs its own process when training reaches global step `step`, as a pre-empted job dies."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch, batch_idx: int) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


class PoisonAt(pl.Callback):
    """Sets the hash layer's weights to NaN at global step `step`, so that step's loss is NaN."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch, batch_idx: int) -> None:
        if trainer.global_step == self.step:
            with torch.no_grad():
                pl_module.net.hash_layer.weight.fill_(float("nan"))


class SlowFrom(pl.Callback):
    """Sleeps `seconds` before each training step from global step `step` on, so a test can signal mid-run."""

    def __init__(self, step: int, seconds: float) -> None:
        self.step, self.seconds = step, seconds

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch, batch_idx: int) -> None:
        if trainer.global_step >= self.step:
            time.sleep(self.seconds)
