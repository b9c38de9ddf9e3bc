"""export(cfg): a checkpoint as an ONNX or TorchScript file beside it, with its JSON sidecar, checked on the images of
its dataset when they are at hand (hashnet.training.export does the export and the check on random batches)."""
from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

from omegaconf import DictConfig
from torch import Tensor

from hashnet.data.builders import BUILDERS, builder_name
from hashnet.data.datamodule import HashDataModule
from hashnet.inference.checkpoint import load_checkpoint, trained_input_size
from hashnet.tasks.setup import build_datamodule, use_trained_input_size
from hashnet.training.export import export_onnx, export_torchscript
from hashnet.training.exported import FORMATS, ExportError, Parity, parity, read_sidecar, sidecar_path
from hashnet.training.module import HashingModule
from hashnet.utils.errors import ConfigError, check_choice
from hashnet.utils.files import atomic_write_json

log = logging.getLogger(__name__)

SUFFIXES = {"onnx": ".onnx", "torchscript": ".torchscript.pt"}
PARITY_SPLITS = ("query", "database")


def export(cfg: DictConfig) -> Path:
    """Export cfg.ckpt_path to cfg.format at cfg.out (null: beside the checkpoint), with the checkpoint's own input
    size, then check the signs on its dataset's images (check_on_dataset). Returns the exported file's path."""
    check_choice("format", cfg.format, FORMATS)
    if cfg.format == "torchscript" and not cfg.dynamic_batch:
        raise ConfigError("dynamic_batch=false: a traced TorchScript file takes any batch size -- drop "
                          "dynamic_batch=false, or export format=onnx for a fixed batch")
    model = load_checkpoint(cfg.ckpt_path)
    resize_size, crop_size = trained_input_size(cfg.ckpt_path)
    checkpoint = Path(cfg.ckpt_path)
    out = Path(cfg.out) if cfg.out else checkpoint.with_name(checkpoint.stem + SUFFIXES[cfg.format])
    meta = {"checkpoint": str(checkpoint.resolve())}
    if cfg.format == "onnx":
        path = export_onnx(model, out, crop_size, dynamic_batch=cfg.dynamic_batch, batch_size=cfg.batch_size,
                           resize_size=resize_size, meta=meta)
    else:
        path = export_torchscript(model, out, crop_size, resize_size=resize_size, meta=meta)
    check = read_sidecar(path)["check"]
    log.info("%s of %s (%s, %s, %d bits, input %d -> %d px) -> %s\n  sidecar: %s\n  random batches: signs equal for "
             "every bit, max |dh| = %.3g", cfg.format, checkpoint, model.method.name, model.hparams.net["backbone"],
             model.hash_bit, resize_size, crop_size, path, sidecar_path(path), check["max_abs_diff"])
    check_on_dataset(cfg, model, path)
    return path


def check_on_dataset(cfg: DictConfig, model: HashingModule, path: Path) -> Parity | None:
    """Parity of the exported file at path against the checkpoint's network on the first cfg.parity_images query
    and database images of cfg.dataset, recorded in the sidecar ("dataset_check") and logged; None (logged) when
    those images are not at hand. Signs that differ remove the exported file and its sidecar (ExportError)."""
    trained_on = model.hparams.dataset
    if not cfg.parity_images:
        log.info("parity on a dataset's images: skipped (parity_images=0)")
        return None
    if trained_on != cfg.dataset.name:
        log.info("parity on a dataset's images: skipped, the checkpoint was trained on %s -- pass dataset=%s to "
                 "check the export on its query and database images", trained_on, trained_on)
        return None
    use_trained_input_size(cfg)
    datamodule = build_datamodule(cfg)
    if not available(datamodule):
        log.info("parity on %s's images: skipped, its lists are not in %s (dataset.root) and it is not built here",
                 trained_on, datamodule.root)
        return None
    datamodule.prepare_data()
    result = parity(path, model, first_images(datamodule, cfg.parity_images))
    what = f"the first {cfg.parity_images} query and database images of {trained_on} ({result.items} images)"
    sidecar = read_sidecar(path)
    sidecar["dataset_check"] = {"images": what, **asdict(result)}
    if not result.same_signs:
        path.unlink(missing_ok=True)
        sidecar_path(path).unlink(missing_ok=True)
        raise ExportError(f"the exported {cfg.format} model's codes differ from the checkpoint's on "
                          f"{result.differing_bits} of {result.items * result.bits} bits of {what} (max |dh| = "
                          f"{result.max_abs_diff:.3g}); {path} was removed -- export format="
                          f"{'torchscript' if cfg.format == 'onnx' else 'onnx'} instead, and report the versions "
                          "in the sidecar's exported_with")
    atomic_write_json(sidecar_path(path), sidecar)
    log.info("parity on %s: signs equal for every bit (%d x %d), max |dh| = %.3g", what, result.items, result.bits,
             result.max_abs_diff)
    return result


def available(datamodule: HashDataModule) -> bool:
    """Whether the dataset's query and database images can be read: its lists exist, or it is an embedded one
    (built in seconds, without a download)."""
    name = builder_name(datamodule.builder)
    if name in BUILDERS and BUILDERS[name].embedded:
        return True
    return all(datamodule.list_path(split).is_file() for split in PARITY_SPLITS)


def first_images(datamodule: HashDataModule, limit: int) -> Iterator[Tensor]:
    """Eval-transformed image batches of the first `limit` rows of the query list, then of the database list."""
    for split in PARITY_SPLITS:
        left = limit
        for images, _, _ in datamodule.split_dataloader(split):
            if left <= 0:
                break
            yield images[:left]
            left -= len(images)
