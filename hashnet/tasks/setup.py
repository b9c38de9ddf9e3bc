"""What every entry point shares: building the DataModule, the model and the Trainer, loading and checking a
checkpoint, and encoding images with it (config checks: hashnet.tasks.checks). Entry points import this, never
each other."""
from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict
from torch import Tensor

from hashnet.data.builders import num_classes
from hashnet.data.datamodule import HashDataModule
from hashnet.methods import METHODS
from hashnet.nets.backbones import weights_follow
from hashnet.training.checkpoints import read_checkpoint
from hashnet.training.module import HashingModule, build
from hashnet.utils.errors import ConfigError, UserError

log = logging.getLogger(__name__)


class CheckpointError(UserError, ValueError):
    """A checkpoint that cannot be used: from an older layout, or of another dataset, length or backbone."""


def build_datamodule(cfg: DictConfig) -> HashDataModule:
    """The configured DataModule, built from plain containers so checkpoints hold no OmegaConf objects.

    cfg.seed (0 when absent, as in evaluation) fixes the training order and crops (hashnet.data.sampling).
    A dataset without a root (dataset=folder until dataset.root=<dir>) is refused; num_classes=auto is resolved
    first (resolve_dataset).
    """
    if cfg.dataset.get("root") is None:  # a dataset of the user's own folder (dataset=folder) names no default
        raise ConfigError(f"dataset={cfg.dataset.name} needs dataset.root: pass dataset.root=<dir> "
                          f"(configs/dataset/{cfg.dataset.name}.yaml says what it is)")
    resolve_dataset(cfg)
    return build(OmegaConf.to_container(cfg.dataset, resolve=True), seed=cfg.get("seed", 0))


def resolve_dataset(cfg: DictConfig) -> None:
    """Set cfg.dataset.num_classes=auto to the count its builder gives (a folder dataset: its class folders), so
    that the model's ${dataset.num_classes} reads the number."""
    if cfg.dataset.get("num_classes") != "auto":
        return
    builder = cfg.dataset.builder
    count = num_classes(OmegaConf.to_container(builder, resolve=True) if isinstance(builder, DictConfig) else builder,
                        cfg.dataset.root)
    log.info("dataset.num_classes=auto: %d classes", count)
    with open_dict(cfg):
        cfg.dataset.num_classes = count


def resolve_method(cfg: DictConfig, datamodule: HashDataModule) -> None:
    """Let the method fill in its data-dependent settings (e.g. HashNet's class_num=auto) in cfg.method.

    The training labels are read only if the method asks for them, after the protocol options.
    """
    def train_labels():
        datamodule.prepare_data()
        return datamodule.read_split("train").labels

    resolved = METHODS[cfg.method.name].resolve(dict(cfg.method), train_labels)
    with open_dict(cfg):
        for key, value in resolved.items():
            cfg.method[key] = value


def build_model(cfg: DictConfig) -> HashingModule:
    """The configured HashingModule; a setting it refuses raises its own error, not Hydra's wrapper of it."""
    config = OmegaConf.to_container(cfg.model, resolve=True)
    config.pop("_recursive_", None)
    return build(config)


def build_trainer(cfg: DictConfig, callbacks: list[pl.Callback] | None = None) -> pl.Trainer:
    """The Trainer with the configured logger and callbacks (plus any given)."""
    configured = [instantiate(callback) for callback in cfg.get("callbacks", {}).values()]
    return instantiate(cfg.trainer, logger=instantiate(cfg.logger), callbacks=configured + (callbacks or []))


def load_checkpoint(path: str | Path, dataset: str | None = None, hash_bit: int | None = None,
                    net: str | None = None, **overrides) -> HashingModule:
    """Rebuild the HashingModule of a checkpoint, refusing one of another dataset, code length or backbone.

    None skips a check; each error names what the checkpoint holds and what was asked for. overrides
    replace saved hyper-parameters (e.g. eval_codes="continuous").
    """
    path = Path(path)
    saved = read_checkpoint(path).get("hyper_parameters", {})
    if "method" not in saved:
        raise CheckpointError(
            f"checkpoint {path} comes from hashnet's first layout (0.1, before hashnet/methods/), which this version "
            "cannot load -- train it again with this version, or evaluate it with the version that wrote it "
            "(git checkout 80401af, then scripts/evaluate.py)")
    with weights_follow():  # the checkpoint's weights replace ImageNet's: no download, offline too
        model = HashingModule.load_from_checkpoint(path, map_location="cpu", **{**migrated(saved), **overrides})
    trained_on = model.hparams.dataset
    if dataset is not None and trained_on is not None and trained_on != dataset:
        raise CheckpointError(f"checkpoint {path} was trained on dataset={trained_on}, not dataset={dataset}: "
                              f"pass dataset={trained_on}")
    if hash_bit is not None and hash_bit != model.hash_bit:
        raise CheckpointError(f"checkpoint {path} holds {model.hash_bit}-bit codes, not hash_bit={hash_bit}: "
                              f"pass hash_bit={model.hash_bit} or another checkpoint")
    backbone = model.hparams.net["backbone"]
    if net is not None and net != backbone:
        raise CheckpointError(f"checkpoint {path} was trained with net={backbone}, not net={net}: "
                              f"pass net={backbone} or another checkpoint")
    return model


def migrated(saved: dict) -> dict:
    """The hyper-parameters of a 0.2 checkpoint that this version names otherwise: its method config named its
    class (`_target_`), now its registered name (hashnet.methods.METHODS)."""
    method = saved["method"]
    if "_target_" not in method:
        return {}
    names = {f"{cls.__module__}.{cls.__name__}": name for name, cls in METHODS.items()}
    settings = {key: value for key, value in method.items() if key != "_target_"}
    return {"method": {"name": names[method["_target_"]], **settings}}


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


def trained_input_size(path: str | Path) -> tuple[int, int]:
    """(resize_size, crop_size) of the eval transform the checkpoint at path was trained with."""
    trained = read_checkpoint(path).get("datamodule_hyper_parameters") or {}
    if "resize_size" not in trained or "crop_size" not in trained:
        raise CheckpointError(f"checkpoint {path} does not record the input size it was trained with (no DataModule "
                              "settings in it): it was not written by scripts/train.py")
    return int(trained["resize_size"]), int(trained["crop_size"])


def pick_device(name: str) -> torch.device:
    """"auto": the GPU when there is one, else the CPU; anything else is passed to torch.device."""
    return torch.device(("cuda" if torch.cuda.is_available() else "cpu") if name == "auto" else name)


def encode_images(model: HashingModule, batches: Iterable[Tensor], device: torch.device) -> Tensor:
    """Continuous codes (N, K) float32 on the CPU of image batches (B, 3, H, W), network in eval mode."""
    model.eval().to(device)
    with torch.inference_mode():
        outputs = [model(images.to(device)).float().cpu() for images in batches]
    return torch.cat(outputs)


def run_info(model: HashingModule, checkpoint: str | None, train_seconds: float | None = None) -> dict:
    """What identifies an evaluated model in metrics.json: method, hash_bit, net, dataset, checkpoint, and
    for a training run the wall-clock seconds of its fit (train_seconds; an evaluation has none)."""
    info = {"method": model.method.name, "hash_bit": model.hash_bit, "net": model.hparams.net["backbone"],
            "dataset": model.hparams.dataset, "checkpoint": checkpoint}
    return info if train_seconds is None else {**info, "train_seconds": train_seconds}
