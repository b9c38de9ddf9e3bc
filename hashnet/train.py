"""train(cfg): build everything from a composed Hydra config, fit, then evaluate mAP@R."""
from __future__ import annotations

import logging
import warnings
from pathlib import Path

import pytorch_lightning as pl
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import instantiate
from omegaconf import DictConfig

from hashnet.checkpoints import resume_checkpoint
from hashnet.data import HashDataModule
from hashnet.guards import FiniteLoss, check_train_config
from hashnet.hparams import log_run_hparams
from hashnet.loss import similar_pair_weight
from hashnet.module import HashNetModule
from hashnet.results import write_results
from hashnet.sampling import StepSeed

log = logging.getLogger(__name__)


def check_launch(cfg: DictConfig) -> None:
    """Refuse `-m` sweeps with in-process DDP: each child rank would re-run the whole sweep.

    Under the SLURM launcher srun starts every rank and Lightning re-launches nothing, so ddp is right there.
    """
    in_sweep = HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
    on_slurm = in_sweep and str(HydraConfig.get().launcher.get("_target_", "")).endswith("SlurmLauncher")
    if in_sweep and not on_slurm and cfg.trainer.get("strategy") == "ddp":
        raise ValueError(
            "trainer.strategy=ddp inside a -m sweep re-launches the sweep in every child rank. "
            "Use trainer=ddp_spawn for sweeps on one node, or the SLURM launcher (hydra/launcher=slurm)."
        )


def resolve_class_num(cfg: DictConfig, datamodule: HashDataModule) -> None:
    """Replace loss.class_num=auto by |S| / |S1| of the training labels (after the protocol options), logged.

    The number, not "auto", then reaches the model and so its checkpoint.
    """
    if cfg.loss.class_num != "auto":
        return
    datamodule.prepare_data()
    cfg.loss.class_num = similar_pair_weight(datamodule.read_split("train").labels)
    log.info("loss.class_num=auto: |S| / |S1| of the %s training labels = %.4f", datamodule.name, cfg.loss.class_num)


def build_datamodule(cfg: DictConfig) -> pl.LightningDataModule:
    """The configured DataModule, built from plain containers so checkpoints hold no OmegaConf objects.

    cfg.seed (0 when absent, as in evaluation) fixes the training order and crops (hashnet.sampling).
    """
    return instantiate(cfg.dataset, seed=cfg.get("seed", 0), _convert_="all")


def build_trainer(cfg: DictConfig, callbacks: list[pl.Callback] | None = None) -> pl.Trainer:
    """The Trainer with the configured logger and callbacks (plus any given)."""
    configured = [instantiate(callback) for callback in cfg.get("callbacks", {}).values()]
    return instantiate(cfg.trainer, logger=instantiate(cfg.logger), callbacks=configured + (callbacks or []))


def train(cfg: DictConfig) -> dict:
    """Fit HashNet as configured (continuing ckpt_path, or with resume=true the run folder's last.ckpt),
    test the final weights, write metrics.json; returns the metrics."""
    check_launch(cfg)
    check_train_config(cfg)
    resume_from = resume_checkpoint(cfg.get("ckpt_path"), cfg.get("resume", False), cfg.paths.output_dir)
    pl.seed_everything(cfg.seed, workers=True)
    datamodule = build_datamodule(cfg)
    resolve_class_num(cfg, datamodule)
    model: HashNetModule = instantiate(cfg.model)
    if cfg.get("compile"):
        model.net.compile()  # in place: the state dict keeps its keys, so checkpoints load either way
    callbacks = [instantiate(cfg.continuation), StepSeed(cfg.seed), FiniteLoss()]
    trainer = build_trainer(cfg, callbacks=callbacks)
    with warnings.catch_warnings():
        # Lightning cannot tell that hashnet.sampling.ResumableSampler resumes mid-epoch exactly.
        warnings.filterwarnings("ignore", message="You're resuming from a checkpoint that ended before the epoch ended")
        trainer.fit(model, datamodule=datamodule, ckpt_path=resume_from)
    trainer.test(model, datamodule=datamodule)
    output_dir = Path(cfg.paths.output_dir)
    checkpoint = trainer.checkpoint_callback.last_model_path if trainer.checkpoint_callback else None
    results = write_results(trainer, model, output_dir, checkpoint)
    log_run_hparams(trainer.logger, cfg, results, trainer.global_step)  # a sweep's runs side by side (HParams tab)
    if trainer.is_global_zero:
        print(
            f"\ntest mAP@{model.topk or 'all'} = {results['mAP']:.4f}  ({cfg.dataset.name}, {cfg.net.backbone}, {cfg.hash_bit} bits)\n"
            f"  checkpoint:  {checkpoint}\n"
            f"  tensorboard: tensorboard --logdir {output_dir}\n"
            f"  config:      {output_dir / '.hydra' / 'config.yaml'}\n"
            f"  metrics:     {output_dir / 'metrics.json'}"
        )
    return results
