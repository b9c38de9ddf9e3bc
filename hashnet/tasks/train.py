"""train(cfg): build everything from a composed Hydra config, fit, then evaluate mAP@R."""
from __future__ import annotations

import logging
import os
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytorch_lightning as pl
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException
from pytorch_lightning.loggers import CSVLogger, Logger, TensorBoardLogger
from pytorch_lightning.strategies.launchers import _MultiProcessingLauncher

from hashnet.outputs.hparams import log_run_hparams
from hashnet.outputs.results import NOT_EVALUATED, clamped_note, no_labels, write_results, write_unevaluated
from hashnet.retrieval.evaluation import unscored_reason
from hashnet.tasks.checks import check_launch, check_train_config
from hashnet.tasks.setup import (
    apply_threads,
    build_datamodule,
    build_model,
    build_trainer,
    check_labels,
    check_method,
    check_resumable,
    check_state_fits,
    HYDRA_FILES,
    resolve_method,
    run_info,
    save_run_config,
)
from hashnet.training.callbacks import FiniteLoss, SpawnedLogging, StepSeed
from hashnet.training.checkpoints import LAST, read_checkpoint, resume_checkpoint
from hashnet.training.fitting import centre_reference, fit_method
from hashnet.training.preemption import Preemption
from hashnet.utils.errors import ConfigError
from hashnet.utils.runlock import LOCK, run_lock

log = logging.getLogger(__name__)



def train(cfg: DictConfig) -> dict:
    """Fit the configured method (continuing ckpt_path, or with resume=true the run folder's last.ckpt),
    test the final weights (not on a dataset without labels: nothing to score), write metrics.json; returns it.

    Everything that can be checked before training is, before anything is written: the settings, a run folder
    that already holds a run (only a resume continues it), the checkpoint a resumed run continues (its method,
    hash_bit, net, dataset and saved state must fit this command's), the
    dataset's lists and images, the network's weights. Only then are the run's .hydra/ files written (Hydra's
    own writing is off: configs/train.yaml), so a refused resume leaves its run's config as it was, and a new
    run folder that never got that far is removed. The run folder is locked for this process (global rank 0)
    while it trains; a SIGTERM / SIGINT saves a checkpoint and raises Preempted (hashnet/training/preemption.py).
    """
    logging.captureWarnings(True)  # warnings.warn (e.g. R clamped to the database) reach train.log too
    leader = global_rank_from_env() == 0
    output_dir = Path(cfg.paths.output_dir)
    composed = OmegaConf.to_yaml(cfg)  # as given, before resolve_method fills in data-dependent settings
    with remove_if_never_started(output_dir, leader):
        check_launch(cfg)
        check_train_config(cfg)
        resume_from = resume_checkpoint(cfg.get("ckpt_path"), cfg.get("resume", False), output_dir)
        if leader and not resume_from:
            check_new_run_folder(output_dir)
        how = None  # what picked the checkpoint a resumed run continues, for messages
        if resume_from:
            how = f"ckpt_path={resume_from}" if cfg.get("ckpt_path") else f"resume=true ({resume_from})"
            check_resumable(resume_from, cfg, how)
        with run_lock(output_dir, take=leader):
            return _train(cfg, resume_from, how, composed if leader else None)


def check_new_run_folder(output_dir: Path) -> None:
    """ConfigError when output_dir already holds a run (its checkpoints, config or metrics.json) that a new run
    would write over: only a resume continues a run in its own folder."""
    found = [min(output_dir.glob(pattern), key=lambda path: (path != output_dir / LAST, path.name))
             .relative_to(output_dir).as_posix()
             for pattern in (str(LAST.parent / "*.ckpt"), f"{HYDRA_FILES}/config.yaml", "metrics.json")
             if any(output_dir.glob(pattern))]
    if found:
        raise ConfigError(f"the run folder {output_dir} already holds a run ({', '.join(found)}), which a new run "
                          "would write over -- pass resume=true to continue it, or hydra.run.dir=<a new folder> to "
                          "start another (nothing was written)")


def global_rank_from_env() -> int:
    """This process's global rank as launchers announce it before any process group exists (0 outside DDP)."""
    ranks = [int(os.environ.get(name) or 0) for name in ("RANK", "SLURM_PROCID", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK")]
    return max(ranks)  # any non-zero one means another process than global rank 0


def job_logging() -> dict | None:
    """This job's logging config (configs/hydra/default.yaml), resolved, for the processes DDP spawns; None outside
    Hydra."""
    try:
        if not HydraConfig.initialized():
            return None
        return OmegaConf.to_container(HydraConfig.get().job_logging, resolve=True)
    except OmegaConfBaseException:  # a config composed by hand (tests) may lack what the log file's name needs
        return None


def hydra_overrides() -> list[str]:
    """The command line's task overrides (none when Hydra does not run, e.g. in tests)."""
    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else []


@contextmanager
def remove_if_never_started(output_dir: Path, leader: bool) -> Iterator[None]:
    """On an error before training started (no .hydra/ written), remove the run folder if Hydra made it for this
    run: it then holds nothing but this job's log (and the lock)."""
    try:
        yield
    except BaseException:
        job_log = output_dir / f"{HydraConfig.get().job.name}.log" if HydraConfig.initialized() else None
        if leader and job_log is not None and job_log.is_file() and not (output_dir / HYDRA_FILES).exists() and \
                {path.name for path in output_dir.iterdir()} <= {job_log.name, LOCK}:
            for path in output_dir.iterdir():
                path.unlink(missing_ok=True)
            output_dir.rmdir()
            outputs = Path.cwd() / "outputs"  # and the default layout's folders above it, if this left them empty
            for parent in output_dir.parents:
                if outputs not in parent.parents or any(parent.iterdir()):
                    break
                parent.rmdir()
        raise


def spawns_processes(trainer: pl.Trainer) -> bool:
    """Whether the strategy runs fit and test in processes it starts (ddp_spawn): what they compute stays there."""
    return isinstance(trainer.strategy.launcher, _MultiProcessingLauncher)


def logger_line(logger: Logger | None) -> str:
    """The summary's line saying where the logger wrote: the TensorBoard command, the CSV file, or the logger."""
    if isinstance(logger, TensorBoardLogger):
        return f"\n  tensorboard: tensorboard --logdir {Path(logger.log_dir)}"
    if isinstance(logger, CSVLogger):
        return f"\n  metrics.csv: {Path(logger.log_dir) / 'metrics.csv'}"
    if logger is not None:
        return f"\n  logger:      {type(logger).__name__} ({getattr(logger, 'save_dir', None) or logger.name})"
    return ""


def score_line(results: dict, requested: object) -> str:
    """'mAP@1000 = 0.9686', with the R asked for when it was clamped to the database."""
    note = clamped_note(requested, results)
    return f"mAP@{results['topk'] or 'all'} = {results['mAP']:.4f}" + (f" ({note})" if note else "")


def _train(cfg: DictConfig, resume_from: str | None, how: str | None, composed: str | None) -> dict:
    threads = apply_threads(cfg.get("threads"))
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = build_datamodule(cfg)
    resolve_method(cfg, datamodule)  # class_num=auto reads the training labels (refused where there are none)
    check_method(cfg)  # the method's own settings, before the data is touched
    check_labels(cfg, datamodule)  # a folder without labels: only the methods that need none
    datamodule.prepare_data()
    datamodule.setup("fit")  # the lists and their images are checked before the model (its weights) is built
    model = build_model(cfg)
    if resume_from:
        check_state_fits(model, resume_from, how)  # before the run's config is rewritten
    if cfg.get("compile"):
        model.net.compile()  # in place: the state dict keeps its keys, so checkpoints load either way
    extra = [*model.method.callbacks(), StepSeed(cfg.seed), FiniteLoss(), Preemption(overrides=hydra_overrides()),
             SpawnedLogging(job_logging())]
    trainer = build_trainer(cfg, callbacks=extra)
    output_dir = Path(cfg.paths.output_dir)
    if composed is not None:
        save_run_config(output_dir, composed)  # from here on the folder is this run's
    steps_line = "fitted, no steps" if model.method.fitted else f"{cfg.max_steps} steps"
    log.info("training %s, %s, %s, %d bits, %s; %d threads", cfg.method.name, cfg.dataset.name, cfg.net.backbone,
             cfg.hash_bit, steps_line, threads)
    with warnings.catch_warnings():
        # Lightning cannot tell that hashnet.data.sampling.ResumableSampler resumes mid-epoch exactly.
        warnings.filterwarnings("ignore", message="You're resuming from a checkpoint that ended before the epoch ended")
        started = time.perf_counter()
        if model.method.fitted:  # a closed-form fit on features, no optimiser step (max_steps unused)
            fit_method(model, datamodule.split_dataloader(model.method.fit_on), cfg.seed)
        else:
            centre_reference(model, datamodule.split_dataloader("train"))  # BiHalf's and GreedyHash-U's pixel mean
            trainer.fit(model, datamodule=datamodule, ckpt_path=resume_from)
        train_seconds = time.perf_counter() - started  # this process's fit only: a resumed run counts its last leg
    last = output_dir / LAST
    checkpoint = (trainer.checkpoint_callback.last_model_path if trainer.checkpoint_callback else None) or \
        (str(last) if last.is_file() else None)
    steps = trainer.global_step
    tester = trainer
    labelled = datamodule.labelled()  # a folder without labels: nothing to score mAP against, no evaluation
    if spawns_processes(trainer):  # the spawned ranks trained; the weights came back, their evaluation would not
        steps = read_checkpoint(checkpoint).get("global_step", steps) if checkpoint else steps
        tester = build_trainer(cfg, strategy="auto", devices=1, num_nodes=1)
        tester.logger = trainer.logger
    if not labelled:  # the model attached (a fitted method's checkpoint is written from it), nothing encoded
        tester.limit_test_batches = 0
    tester.test(model, datamodule=datamodule, verbose=False)
    if model.method.fitted:  # no training loop wrote it
        checkpoint = str(last)
        tester.save_checkpoint(checkpoint)
    info = run_info(model, checkpoint, steps, train_seconds)
    if labelled:
        results = write_results(tester, model.retrieval, info, output_dir)
    else:
        results = write_unevaluated(tester, info, no_labels(cfg.dataset.name), output_dir)
    log_run_hparams(tester.logger, cfg, results, steps)  # a sweep's runs side by side (HParams tab)
    if tester.is_global_zero:
        if results["skipped_images"]["count"]:
            log.warning("%d unreadable images were skipped (dataset.on_bad_image=skip; named above and in %s)",
                        results["skipped_images"]["count"], output_dir / "metrics.json")
        if not labelled:
            log.info(NOT_EVALUATED, results["not_evaluated"])
        elif results["mAP"] is None:
            log.warning("test mAP@%s: no query could be scored: %s -- check the labels of the query and database "
                        "lists (scripts/check_lists.py)", results["topk"] or "all", unscored_reason(model.retrieval))
        else:
            log.info("test %s  (%s, %s, %s, %d bits, %d steps)", score_line(results, cfg.dataset.topk),
                     results["method"], cfg.dataset.name, cfg.net.backbone, cfg.hash_bit, steps)
        log.info("  protocol:    %s\n  checkpoint:  %s%s\n  config:      %s\n  metrics:     %s",
                 results.get("protocol", "none (not evaluated)"),
                 checkpoint, logger_line(tester.logger), output_dir / HYDRA_FILES / "config.yaml",
                 output_dir / "metrics.json")
    return results
