"""What every entry point shares: building the DataModule, the model and the Trainer from a config, and checking a
checkpoint against it (config checks: hashnet.tasks.checks; loading a checkpoint and encoding images with it:
hashnet.inference). Entry points import this, never each other."""
from __future__ import annotations

import logging
import os
import platform
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from hashnet.data.builders import num_classes
from hashnet.data.datamodule import HashDataModule
from hashnet.inference.checkpoint import CheckpointError, migrated
from hashnet.methods import METHODS, build_method
from hashnet.training.checkpoints import read_checkpoint
from hashnet.training.module import HashingModule, build
from hashnet.utils.errors import ConfigError
from hashnet.utils.files import atomic_write

log = logging.getLogger(__name__)

NEW_RUN = "leave out ckpt_path / resume=true and pass hydra.run.dir=<a new folder> to start a new run"


def build_datamodule(cfg: DictConfig) -> HashDataModule:
    """The configured DataModule, built from plain containers so checkpoints hold no OmegaConf objects.

    cfg.seed (0 when absent, as in evaluation) fixes the training order and crops (hashnet.data.sampling); the
    method's `views` (training samples of several augmented views: CIBHash) reach it.
    A dataset without a root (dataset=folder until dataset.root=<dir>) is refused; num_classes=auto is resolved
    first (resolve_dataset).
    """
    if cfg.dataset.get("root") is None:  # a dataset of the user's own folder (dataset=folder) names no default
        raise ConfigError(f"dataset={cfg.dataset.name} needs dataset.root: pass dataset.root=<dir> "
                          f"(configs/dataset/{cfg.dataset.name}.yaml says what it is)")
    resolve_dataset(cfg)
    method = cfg.get("method")
    views = METHODS[method.name].views if method and method.get("name") in METHODS else 1  # CIBHash asks for 2
    return build(OmegaConf.to_container(cfg.dataset, resolve=True), seed=cfg.get("seed", 0), views=views)


def resolve_dataset(cfg: DictConfig) -> None:
    """Set cfg.dataset.num_classes=auto to the count its builder gives (a folder dataset: its class folders), so
    that the model's ${dataset.num_classes} reads the number."""
    if cfg.dataset.get("num_classes") != "auto":
        return
    builder = cfg.dataset.builder
    count = num_classes(OmegaConf.to_container(builder, resolve=True) if isinstance(builder, DictConfig) else builder,
                        cfg.dataset.root)
    log.info("dataset.num_classes=auto: %d class%s", count, "" if count == 1 else "es")
    with open_dict(cfg):
        cfg.dataset.num_classes = count


def resolve_method(cfg: DictConfig, datamodule: HashDataModule) -> None:
    """Let the method fill in its data-dependent settings (e.g. HashNet's class_num=auto) in cfg.method.

    The training labels are read only if the method asks for them, after the protocol options.
    """
    def train_labels():
        datamodule.prepare_data()
        check_labels(cfg, datamodule)
        return datamodule.read_split("train").labels

    resolved = METHODS[cfg.method.name].resolve(dict(cfg.method), train_labels)
    with open_dict(cfg):
        for key, value in resolved.items():
            cfg.method[key] = value


def check_labels(cfg: DictConfig, datamodule: HashDataModule) -> None:
    """Refuse a method that learns from labels on a dataset without any (a folder without labels), naming those that
    need none; the training list is read (built first) only for such a method."""
    if METHODS[cfg.method.name].unsupervised:
        return
    datamodule.prepare_data()
    if datamodule.labelled():
        return
    others = ", ".join(sorted(name for name, method in METHODS.items() if method.unsupervised and name != "itq"))
    raise ConfigError(f"dataset={cfg.dataset.name} has no labels, and method={cfg.method.name} learns from labels -- "
                      f"pass method=itq, or another method that needs none: {others}")


def check_method(cfg: DictConfig) -> None:
    """Build the configured method alone (small: no network) so that its settings are refused by their
    method.<key> before any data is read or weights are loaded."""
    build_method(OmegaConf.to_container(cfg.method, resolve=True), cfg.hash_bit, cfg.dataset.num_classes,
                 cfg.dataset.multi_label)


def build_model(cfg: DictConfig) -> HashingModule:
    """The configured HashingModule; a setting it refuses raises its own error, not Hydra's wrapper of it."""
    config = OmegaConf.to_container(cfg.model, resolve=True)
    config.pop("_recursive_", None)
    return build(config)


def build_trainer(cfg: DictConfig, callbacks: list[pl.Callback] | None = None, **overrides: Any) -> pl.Trainer:
    """The Trainer with the configured logger and callbacks (plus any given); overrides replace trainer settings."""
    configured = [instantiate(callback) for callback in cfg.get("callbacks", {}).values()]
    return instantiate(cfg.trainer, logger=instantiate(cfg.logger), callbacks=configured + (callbacks or []),
                       **overrides)


def apply_threads(threads: int | None) -> int:
    """Use `threads` intra-op threads in this process and in the processes it starts (None: torch's default);
    returns the count in use. Float kernels sum in another order with another count, so a run repeats bit for
    bit only with the same count (and CPU)."""
    if threads:
        torch.set_num_threads(threads)
        os.environ["OMP_NUM_THREADS"] = str(threads)  # DDP ranks start with it; Lightning then leaves it alone
    return torch.get_num_threads()


def cpu_name() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux), else what the platform module knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict:
    """What a run's numbers depend on beyond its config: torch's thread count and version, the CPU, the GPU."""
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"threads": torch.get_num_threads(), "cpu": cpu_name(), "gpu": gpu, "torch": torch.__version__}


def trained_settings(saved: dict) -> dict:
    """What identifies the model a checkpoint's hyper-parameters describe: method, hash_bit, net, dataset."""
    method = saved.get("method") or {}
    name = method.get("name") or migrated(saved).get("method", {}).get("name") if method else None
    net = saved.get("net") or {}
    return {"method": name, "hash_bit": net.get("hash_bit"), "net": net.get("backbone"),
            "dataset": saved.get("dataset")}


def check_resumable(path: str | Path, cfg: DictConfig, how: str) -> None:
    """CheckpointError unless the run the checkpoint at path comes from trained what cfg asks for (method,
    hash_bit, net, dataset): continuing it otherwise would turn one run into another in its own folder.
    how: what picked the checkpoint, for the message (e.g. "ckpt_path=<path>")."""
    saved = trained_settings(read_checkpoint(path).get("hyper_parameters", {}))
    asked = {"method": cfg.method.name, "hash_bit": cfg.hash_bit, "net": cfg.net.backbone, "dataset": cfg.dataset.name}
    differ = [key for key, value in asked.items() if saved[key] is not None and saved[key] != value]
    if differ:
        theirs = " ".join(f"{key}={saved[key]}" for key in differ)
        ours = " ".join(f"{key}={asked[key]}" for key in differ)
        raise CheckpointError(
            f"{how} continues a run of {theirs}, but this command asks for {ours}: a run continues with its own "
            f"settings -- pass {theirs} to resume it, or {NEW_RUN} (nothing was written)")


def typed(value: Any) -> str:
    """A setting's value as it is typed on the command line: true, null, [a,b], 0.1."""
    if isinstance(value, (list, tuple)):
        return f"[{','.join(typed(item) for item in value)}]"
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def check_state_fits(model: HashingModule, path: str | Path, how: str) -> None:
    """CheckpointError naming the method settings that differ when the checkpoint at path holds a state that model
    (built from this command's settings) cannot take, e.g. a memory bank (method.pairs=bank) resumed without one:
    checked before the run's config is written, so a refused resume leaves its run as it was."""
    checkpoint = read_checkpoint(path)
    theirs, ours = checkpoint.get("state_dict", {}), model.state_dict()
    differ = sorted(set(theirs) ^ set(ours)) + sorted(
        key for key in set(theirs) & set(ours) if tuple(theirs[key].shape) != tuple(ours[key].shape))
    if not differ:
        return
    saved, asked = checkpoint.get("hyper_parameters", {}).get("method") or {}, dict(model.hparams.method)
    settings = [key for key in saved if key in asked and saved[key] != asked[key]]
    was = " ".join(f"method.{key}={typed(saved[key])}" for key in settings)
    now = " ".join(f"method.{key}={typed(asked[key])}" for key in settings)
    what = f"a run of {was}, but this command asks for {now}" if settings else "a run of other settings"
    raise CheckpointError(
        f"{how} continues {what}: its saved state does not fit ({len(differ)} tensors, e.g. {differ[0]}) -- pass "
        f"{was or 'the settings of its .hydra/config.yaml'} to resume it, or {NEW_RUN} (nothing was written)")


def use_trained_input_size(cfg: DictConfig) -> None:
    """Set cfg.dataset's resize_size / crop_size to those the checkpoint cfg.ckpt_path was trained with.

    The test transform must match training: a run whose recipe changed the input size (digits_multi
    reads its mosaics at 32 px, AlexNet needs 64) evaluates at that size without repeating the
    override. Says so when the dataset config differs.
    """
    checkpoint = read_checkpoint(cfg.ckpt_path)
    trained = checkpoint.get("datamodule_hyper_parameters") or {}
    for key in ("resize_size", "crop_size"):
        if key in trained and trained[key] != cfg.dataset[key]:
            log.info("dataset.%s=%s, as the checkpoint was trained (the dataset config says %s)", key, trained[key],
                     cfg.dataset[key])
            cfg.dataset[key] = trained[key]


def run_info(model: HashingModule, checkpoint: str | None, steps: int | None,
             train_seconds: float | None = None) -> dict:
    """What identifies an evaluated model in metrics.json: method, hash_bit, net, dataset, checkpoint (absolute),
    the training steps behind it, whether this is a training run or a re-score of a checkpoint (evaluation), the
    machine (machine_info), and for a training run the wall-clock seconds of its fit (train_seconds)."""
    info = {"method": model.method.name, "hash_bit": model.hash_bit, "net": model.hparams.net["backbone"],
            "dataset": model.hparams.dataset, "checkpoint": str(Path(checkpoint).resolve()) if checkpoint else None,
            "steps": steps, "kind": "evaluation" if train_seconds is None else "training", **machine_info()}
    return info if train_seconds is None else {**info, "train_seconds": train_seconds}


HYDRA_FILES = ".hydra"  # a run's composed config, Hydra's settings and the overrides, written once the checks pass


def save_run_config(output_dir: Path, composed: str) -> None:
    """Write .hydra/config.yaml (the config as composed), hydra.yaml and overrides.yaml, as Hydra would have (its own
    writing is off for train and evaluate: they write these once their checks pass, never over another run's)."""
    folder = output_dir / HYDRA_FILES
    atomic_write(folder / "config.yaml", lambda f: f.write(composed.encode()))
    if HydraConfig.initialized():
        hydra = HydraConfig.instance().cfg  # {"hydra": ...}
        atomic_write(folder / "hydra.yaml", lambda f: f.write(OmegaConf.to_yaml(hydra).encode()))
        overrides = OmegaConf.to_yaml(hydra.hydra.overrides.task)
        atomic_write(folder / "overrides.yaml", lambda f: f.write(overrides.encode()))
