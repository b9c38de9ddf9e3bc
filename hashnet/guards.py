"""Stop early and say why: config values checked before anything is built, and a NaN/Inf loss guard."""
from __future__ import annotations

import math

import pytorch_lightning as pl
from omegaconf import DictConfig
from torch import Tensor

from hashnet.backbones import check_input_size


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite."""


def check_train_config(cfg: DictConfig) -> None:
    """Raise ValueError naming the key, the value and the fix for values that would fail later or silently."""
    hash_bit = cfg.hash_bit
    if not isinstance(hash_bit, int) or isinstance(hash_bit, bool) or hash_bit <= 0:
        raise ValueError(f"hash_bit must be a positive integer (the code length in bits, e.g. hash_bit=48), got {hash_bit!r}")
    batch_size = cfg.dataset.batch_size
    if not isinstance(batch_size, int) or batch_size < 2:
        raise ValueError(f"dataset.batch_size={batch_size!r}: the pairwise loss needs at least 2 images a batch -- "
                         "use dataset.batch_size=72 (the paper's) or another integer >= 2")
    for key in ("max_steps", "val_every", "ckpt_every"):
        value = cfg[key]
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"{key} must be a positive number of steps, got {value!r}")
    net = cfg.model.net
    check_input_size(net.backbone, net.pretrained, net.get("image_size"), cfg.dataset.crop_size, cfg.dataset.resize_size)


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
