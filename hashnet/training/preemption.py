"""Pre-emption: on SIGTERM or SIGINT, finish the step, save a checkpoint, say how to resume, exit 143 / 130.

The handlers are installed when training starts (after Lightning's own, which they replace until
training ends) and only set a flag; at the end of the step every rank agrees to stop (one rank's
signal is enough) and saves together, as Lightning's save is collective. A second Ctrl-C stops at once.
Under SLURM the time limit sends SIGTERM first (configs/hydra/launcher/slurm.yaml).
"""
from __future__ import annotations

import logging
import shlex
import signal
import threading
from pathlib import Path

import pytorch_lightning as pl

from hashnet.utils.errors import ExitRequest

SIGNALS = (signal.SIGTERM, signal.SIGINT)
CHECKPOINT = "preempted.ckpt"

log = logging.getLogger(__name__)


class Preempted(ExitRequest):
    """Training stopped on a signal after saving a checkpoint; code is 128 + the signal number."""


def resume_command(script: str, overrides: list[str], checkpoint: str | Path) -> str:
    """`python <script> <overrides> ckpt_path=<checkpoint>`, shell-quoted, without earlier ckpt_path / resume."""
    kept = [o for o in overrides if o.split("=", 1)[0].lstrip("+~") not in ("ckpt_path", "resume")]
    return shlex.join(["python", script, *kept, f"ckpt_path={checkpoint}"])


class Preemption(pl.Callback):
    """Saves `<checkpoints>/preempted.ckpt` (and last.ckpt) at the end of the step a SIGTERM/SIGINT arrived in.

    script, overrides: the command line to print for resuming (Hydra's task overrides).
    """

    def __init__(self, script: str = "scripts/train.py", overrides: list[str] | None = None) -> None:
        self.script, self.overrides = script, list(overrides or [])
        self._signal: int | None = None
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame) -> None:
        if self._signal == signal.SIGINT and signum == signal.SIGINT:
            raise KeyboardInterrupt  # Ctrl-C twice: stop now, without a checkpoint
        self._signal = signum
        log.warning("received %s: saving a checkpoint at the end of this step, then stopping%s",
                    signal.Signals(signum).name, " (Ctrl-C again stops at once)" if signum == signal.SIGINT else "")

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._signal = None
        if threading.current_thread() is threading.main_thread():  # signal handlers live in the main thread only
            self._previous = {signum: signal.signal(signum, self._handle) for signum in SIGNALS}

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs, batch,
                           batch_idx: int) -> None:
        if not trainer.strategy.reduce_boolean_decision(self._signal is not None, all=False):
            return
        signum = int(trainer.strategy.broadcast(self._signal or signal.SIGTERM))  # rank 0's, for the exit code
        folder = Path(trainer.checkpoint_callback.dirpath if trainer.checkpoint_callback else
                      Path(trainer.default_root_dir) / "checkpoints")
        path = folder / CHECKPOINT
        trainer.save_checkpoint(path)  # on every rank: the save is collective, rank 0 writes
        trainer.save_checkpoint(folder / "last.ckpt")  # so that resume=true continues from here too
        command = resume_command(self.script, self.overrides, path)
        log.warning("stopped by %s at step %d; checkpoint: %s\nresume with:\n  %s",
                    signal.Signals(signum).name, trainer.global_step, path, command)
        raise Preempted(f"stopped by {signal.Signals(signum).name} at step {trainer.global_step}; resume with: "
                        f"{command}", 128 + signum)

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}
