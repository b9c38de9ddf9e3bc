"""train(cfg): build everything from a composed Hydra config, fit, then evaluate mAP@R."""
from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path

import pytorch_lightning as pl
from omegaconf import DictConfig

from hashnet.outputs.hparams import log_run_hparams
from hashnet.outputs.results import write_results
from hashnet.tasks.setup import (
    build_datamodule,
    build_model,
    build_trainer,
    check_launch,
    check_train_config,
    resolve_method,
    run_info,
)
from hashnet.training.callbacks import FiniteLoss, StepSeed
from hashnet.training.checkpoints import resume_checkpoint

log = logging.getLogger(__name__)


def train(cfg: DictConfig) -> dict:
    """Fit the configured method (continuing ckpt_path, or with resume=true the run folder's last.ckpt),
    test the final weights, write metrics.json; returns the metrics."""
    check_launch(cfg)
    check_train_config(cfg)
    resume_from = resume_checkpoint(cfg.get("ckpt_path"), cfg.get("resume", False), cfg.paths.output_dir)
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = build_datamodule(cfg)
    resolve_method(cfg, datamodule)
    model = build_model(cfg)
    if cfg.get("compile"):
        model.net.compile()  # in place: the state dict keeps its keys, so checkpoints load either way
    trainer = build_trainer(cfg, callbacks=[*model.method.callbacks(), StepSeed(cfg.seed), FiniteLoss()])
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
        log.info("test mAP@%s = %.4f  (%s, %s, %s, %d bits)\n  protocol:    %s\n  checkpoint:  %s\n  tensorboard: tensorboard --logdir %s\n"
                 "  config:      %s\n  metrics:     %s", results["topk"] or "all", results["mAP"], results["method"],
                 cfg.dataset.name, cfg.net.backbone, cfg.hash_bit, results["protocol"], checkpoint, output_dir,
                 output_dir / ".hydra" / "config.yaml", output_dir / "metrics.json")
    return results
