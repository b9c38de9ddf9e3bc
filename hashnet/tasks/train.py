"""train(cfg): build everything from a composed Hydra config, fit, then evaluate mAP@R."""
from __future__ import annotations

import logging
import os
import time
import warnings
from pathlib import Path

import pytorch_lightning as pl
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from hashnet.outputs.hparams import log_run_hparams
from hashnet.outputs.results import write_results
from hashnet.tasks.checks import check_launch, check_train_config
from hashnet.tasks.setup import build_datamodule, build_model, build_trainer, resolve_method, run_info
from hashnet.training.callbacks import FiniteLoss, StepSeed
from hashnet.training.checkpoints import resume_checkpoint
from hashnet.training.preemption import Preemption
from hashnet.utils.runlock import run_lock

log = logging.getLogger(__name__)


def train(cfg: DictConfig) -> dict:
    """Fit the configured method (continuing ckpt_path, or with resume=true the run folder's last.ckpt),
    test the final weights, write metrics.json; returns the metrics.

    Settings are checked first; the run folder is then locked for this process (global rank 0) until
    the end; a SIGTERM / SIGINT saves a checkpoint and raises Preempted (hashnet/training/preemption.py).
    """
    logging.captureWarnings(True)  # warnings.warn (e.g. R clamped to the database) reach train.log too
    check_launch(cfg)
    check_train_config(cfg)
    with run_lock(cfg.paths.output_dir, take=global_rank_from_env() == 0):
        return _train(cfg)


def global_rank_from_env() -> int:
    """This process's global rank as launchers announce it before any process group exists (0 outside DDP)."""
    ranks = [int(os.environ.get(name) or 0) for name in ("RANK", "SLURM_PROCID", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK")]
    return max(ranks)  # any non-zero one means another process than global rank 0


def hydra_overrides() -> list[str]:
    """The command line's task overrides (none when Hydra does not run, e.g. in tests)."""
    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


def _train(cfg: DictConfig) -> dict:
    resume_from = resume_checkpoint(cfg.get("ckpt_path"), cfg.get("resume", False), cfg.paths.output_dir)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = build_datamodule(cfg)
    resolve_method(cfg, datamodule)
    model = build_model(cfg)
    if cfg.get("compile"):
        model.net.compile()  # in place: the state dict keeps its keys, so checkpoints load either way
    extra = [*model.method.callbacks(), StepSeed(cfg.seed), FiniteLoss(), Preemption(overrides=hydra_overrides())]
    trainer = build_trainer(cfg, callbacks=extra)
    with warnings.catch_warnings():
        # Lightning cannot tell that hashnet.data.sampling.ResumableSampler resumes mid-epoch exactly.
        warnings.filterwarnings("ignore", message="You're resuming from a checkpoint that ended before the epoch ended")
        started = time.perf_counter()
        trainer.fit(model, datamodule=datamodule, ckpt_path=resume_from)
        train_seconds = time.perf_counter() - started  # this process's fit only: a resumed run counts its last leg
    trainer.test(model, datamodule=datamodule, verbose=False)
    output_dir = Path(cfg.paths.output_dir)
    checkpoint = trainer.checkpoint_callback.last_model_path if trainer.checkpoint_callback else None
    results = write_results(trainer, model.retrieval, run_info(model, checkpoint, train_seconds), output_dir)
    log_run_hparams(trainer.logger, cfg, results, trainer.global_step)  # a sweep's runs side by side (HParams tab)
    if trainer.is_global_zero:
        if results["skipped_images"]["count"]:
            log.warning("%d unreadable images were skipped (dataset.on_bad_image=skip; named above and in %s)",
                        results["skipped_images"]["count"], output_dir / "metrics.json")
        log.info("test mAP@%s = %.4f  (%s, %s, %s, %d bits)\n  protocol:    %s\n  checkpoint:  %s\n  tensorboard: tensorboard --logdir %s\n"
                 "  config:      %s\n  metrics:     %s", results["topk"] or "all", results["mAP"], results["method"],
                 cfg.dataset.name, cfg.net.backbone, cfg.hash_bit, results["protocol"], checkpoint, output_dir,
                 output_dir / ".hydra" / "config.yaml", output_dir / "metrics.json")
    return results
