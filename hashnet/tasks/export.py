"""export(cfg): a checkpoint as an ONNX or TorchScript file beside it, with its JSON sidecar, checked on the images of
its dataset when they are at hand (hashnet.training.export does the export and the check on random batches)."""
from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from omegaconf import DictConfig
from torch import Tensor

from hashnet.data.datamodule import HashDataModule
from hashnet.inference.checkpoint import load_checkpoint, trained_input_size
from hashnet.tasks.setup import build_datamodule, use_trained_input_size
from hashnet.training.export import export_onnx, export_torchscript
from hashnet.training.exported import FORMATS, ExportError, Parity, parity, read_sidecar, sidecar_path
from hashnet.training.module import HashingModule
from hashnet.utils.errors import ConfigError, UserError, check_choice
from hashnet.utils.files import atomic_write_json, check_writable, file_sha256

log = logging.getLogger(__name__)

SUFFIXES = {"onnx": ".onnx", "torchscript": ".torchscript.pt"}
PARITY_SPLITS = ("query", "database")
EXPORT = ("an earlier export (a file with its .json sidecar)", lambda path: sidecar_path(path).is_file())


def export(cfg: DictConfig) -> Path:
    """Export cfg.ckpt_path to cfg.format at cfg.out (null: beside the checkpoint), with the checkpoint's own input
    size, then check the signs on its dataset's images (check_on_dataset). Returns the exported file's path.

    The file and its sidecar are written to a temporary folder beside out and renamed over out only once both
    checks pass: a refused export leaves an earlier one at out as it was."""
    check_choice("format", cfg.format, FORMATS)
    if cfg.format == "torchscript" and not cfg.dynamic_batch:
        raise ConfigError("dynamic_batch=false: a traced TorchScript file takes any batch size -- drop "
                          "dynamic_batch=false, or export format=onnx for a fixed batch")
    images = cfg.parity_images
    if not isinstance(images, int) or isinstance(images, bool) or images < 0:
        raise ConfigError(f"parity_images={images!r}: it must be a whole number >= 0, the query and database images "
                          "the export is checked on (0 skips that check) -- pass e.g. parity_images=2000")
    checkpoint = Path(cfg.ckpt_path)
    default = checkpoint.with_name(checkpoint.stem + SUFFIXES[cfg.format])
    out = Path(cfg.out) if cfg.out else default
    other = next((kind for kind, suffix in SUFFIXES.items() if kind != cfg.format and out.name.endswith(suffix)), None)
    if other:
        named = out.with_name(out.name[:-len(SUFFIXES[other])] + SUFFIXES[cfg.format])
        what = "an ONNX" if other == "onnx" else "a TorchScript"
        raise ConfigError(f"out={out} is named as {what} file, but format={cfg.format} -- pass format={other}, or "
                          f"out={named}")
    out = check_writable(out, "out", f"out={(out if out.is_dir() else out.parent) / default.name}", EXPORT,
                         elsewhere=f"out={default.name}")  # a read-only checkpoint folder: the current folder
    model = load_checkpoint(cfg.ckpt_path)
    resize_size, crop_size = trained_input_size(cfg.ckpt_path)
    meta = {"checkpoint": str(checkpoint.resolve()), "checkpoint_sha256": file_sha256(checkpoint)}
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent) as staging:
        staged = Path(staging) / out.name  # the sidecar names the model file: stage it under its own name
        if cfg.format == "onnx":
            export_onnx(model, staged, crop_size, dynamic_batch=cfg.dynamic_batch, batch_size=cfg.batch_size,
                        resize_size=resize_size, meta=meta)
        else:
            export_torchscript(model, staged, crop_size, resize_size=resize_size, meta=meta)
        check = read_sidecar(staged)["check"]
        log.info("%s of %s (%s, %s, %d bits, input %d -> %d px)\n  random batches: %s", cfg.format, checkpoint,
                 model.method.name, model.hparams.net["backbone"], model.hash_bit, resize_size, crop_size,
                 described(check))
        check_on_dataset(cfg, model, staged, out)
        os.replace(staged, out)  # the model first: a reader in between sees a sidecar of another file, and says so
        os.replace(sidecar_path(staged), sidecar_path(out))
    log.info("exported to %s\n  sidecar: %s", out, sidecar_path(out))
    return out


def check_on_dataset(cfg: DictConfig, model: HashingModule, path: Path, out: Path) -> Parity | None:
    """Parity of the exported file at path against the checkpoint's network on the first cfg.parity_images query
    and database images of cfg.dataset, recorded in the sidecar ("dataset_check") and logged; None (logged) when
    those images are not at hand. Signs that differ beyond the tolerance raise ExportError (out: where the file
    was to go)."""
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
    try:
        datamodule.prepare_data()  # a built dataset (digits, Fashion-MNIST, ...) is built on first use
    except UserError as err:  # no lists and no builder, or CIFAR-10's archive not here: the export stands, unchecked
        log.info("parity on %s's images: skipped, %s", trained_on, err)
        return None
    result = parity(path, model, first_images(datamodule, cfg.parity_images))
    what = f"the first {cfg.parity_images} query and database images of {trained_on} ({result.items} images)"
    sidecar = read_sidecar(path)
    if not result.same_signs:
        versions = ", ".join(f"{key} {value}" for key, value in sidecar["exported_with"].items())
        kept = f"the earlier {out} is left as it was" if out.exists() else "nothing was written"
        raise ExportError(f"the exported {cfg.format} model's codes differ from the checkpoint's on "
                          f"{result.differing_bits} of {result.items * result.bits} bits with |h| > "
                          f"{result.tolerance:g} of {what} (max |dh| = {result.max_abs_diff:.3g}); {kept} -- export "
                          f"format={'torchscript' if cfg.format == 'onnx' else 'onnx'} instead, or skip this check "
                          f"with parity_images=0 at your own risk, and report the versions ({versions})")
    sidecar["dataset_check"] = {"images": what, **asdict(result)}
    atomic_write_json(sidecar_path(path), sidecar)
    log.info("parity on %s: %s", what, described(sidecar["dataset_check"]))
    return result


def described(check: dict[str, Any]) -> str:
    """A passed check of the sidecar (the fields of a Parity) in words, for the log."""
    return (f"signs equal for every bit with |h| > {check['tolerance']:g} ({check['items']} x {check['bits']}); "
            f"{check['near_zero']} within it, {check['flipped_near_zero']} of them flipped; "
            f"max |dh| = {check['max_abs_diff']:.3g}")


def first_images(datamodule: HashDataModule, limit: int) -> Iterator[Tensor]:
    """Eval-transformed image batches of the first `limit` rows of the query list, then of the database list."""
    for split in PARITY_SPLITS:
        left = limit
        for images, _, _ in datamodule.split_dataloader(split):
            if left <= 0:
                break
            yield images[:left]
            left -= len(images)
