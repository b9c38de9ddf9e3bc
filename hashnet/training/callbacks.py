"""Callbacks of every run: a NaN/Inf loss guard, per-step reseeding, and progress lines for logs."""
from __future__ import annotations

import logging
import logging.config
import math
import sys
import time

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import TQDMProgressBar
from torch import Tensor

from hashnet.data.sampling import mix_seed
from hashnet.utils.errors import UserError

log = logging.getLogger(__name__)


class NonFiniteLossError(UserError, FloatingPointError):
    """The training loss became NaN or infinite."""


class FiniteLoss(pl.Callback):
    """Stops training before the optimiser step when any rank's loss is NaN or infinite.

    The error names the step and the last checkpoint written, so the run can be resumed from it
    (after fixing the data) or restarted with a lower optim.lr, instead of training on garbage.
    """

    def on_before_backward(self, trainer: pl.Trainer, pl_module: pl.LightningModule, loss: Tensor) -> None:
        bad = not math.isfinite(float(loss.detach()))
        if trainer.strategy.reduce_boolean_decision(bad, all=False):
            checkpoint = trainer.checkpoint_callback.last_model_path if trainer.checkpoint_callback else ""
            raise NonFiniteLossError(
                f"training loss is {float(loss.detach())} at step {trainer.global_step} (epoch {trainer.current_epoch}) "
                f"on {'this' if bad else 'another'} rank; stopped before updating the weights. Last checkpoint: "
                f"{checkpoint or 'none written yet'} -- check the data of this step and resume from it (ckpt_path=<it>), "
                "or train again with a lower optim.lr (a resumed run keeps the checkpoint's learning rate)")


class StepSeed(pl.Callback):
    """Reseeds the global RNGs from (seed, global step, rank) before each training step (dropout)."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch, batch_idx: int) -> None:
        torch.manual_seed(mix_seed(self.seed, trainer.global_step, trainer.global_rank))


class ProgressBar(TQDMProgressBar):
    """The tqdm bar on a terminal; elsewhere (CI, SLURM logs) one log line every `every` steps instead, and one
    after the first step (so a log shows early that training runs, and how long a step takes).

    A non-TTY stream would otherwise receive a redraw of the bar for every refresh.
    """

    def __init__(self, refresh_rate: int, every: int, tty: bool | None = None) -> None:
        super().__init__(refresh_rate=refresh_rate)
        self.every = every
        self.tty = sys.stdout.isatty() if tty is None else tty
        self._start, self._first = 0.0, 0
        if not self.tty:
            self.disable()

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start, self._first = time.perf_counter(), trainer.global_step  # a resumed run starts past 0
        super().on_train_start(trainer, pl_module)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs, batch,
                           batch_idx: int) -> None:
        if self.tty:
            return super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        step = trainer.global_step
        if trainer.is_global_zero and (step % self.every == 0 or step == trainer.max_steps or step == self._first + 1):
            shown = {k: float(v) for k, v in trainer.progress_bar_metrics.items()}
            values = "  ".join(f"{k} {v:.4g}" for k, v in shown.items())
            log.info("step %d/%d  %s  (%.0f s)", step, trainer.max_steps, values, time.perf_counter() - self._start)


class SpawnedLogging(pl.Callback):
    """Gives processes that Lightning spawns (trainer=ddp_spawn) the launching process's logging config (console
    format and filters, the run's log file, warnings through logging); where logging is set up already, nothing.

    config: the dictConfig of the launching process (Hydra's job_logging, resolved), or None.
    """

    def __init__(self, config: dict | None) -> None:
        self.config = config

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self.config and not logging.getLogger().handlers:
            logging.config.dictConfig(self.config)
            logging.captureWarnings(True)

