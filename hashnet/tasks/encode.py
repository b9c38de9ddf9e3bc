"""encode(cfg): a trained network's codes of one dataset split, or of a folder of images (images=<dir>, no lists),
written as a code file (hashnet.retrieval.codes)."""
from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig
from torch import Tensor

from hashnet.data.datamodule import SPLITS
from hashnet.inference.checkpoint import load_checkpoint
from hashnet.inference.encoding import encode_images, pick_device
from hashnet.inference.hasher import Hasher
from hashnet.inference.predict_store import predict_into_store
from hashnet.inference.sharded import encode_into_store, store_settings
from hashnet.retrieval.codes import CODE_FILE, binarize, check_packable, save_codes, unpack_codes
from hashnet.retrieval.store import prepare_store
from hashnet.tasks.setup import build_datamodule, use_trained_input_size
from hashnet.utils.errors import ConfigError, check_choice
from hashnet.utils.files import check_writable, file_sha256

log = logging.getLogger(__name__)


def encode(cfg: DictConfig) -> Path:
    """Encode cfg.split of cfg.dataset (or, with cfg.images, every image below that folder) with the checkpoint
    cfg.ckpt_path; write the code file cfg.out (null: codes_<split>.npz, or codes_images.npz, in the run folder),
    image paths absolute, so that search and serve find the images from any folder."""
    if cfg.get("store"):
        return encode_store(cfg)
    if cfg.get("images"):
        return encode_folder(cfg)
    check_choice("split", cfg.split, SPLITS)
    out = check_writable(out_path(cfg, cfg.split), "out", f"out=codes_{cfg.split}.npz", CODE_FILE)  # before encoding
    model = load_checkpoint(cfg.ckpt_path, cfg.dataset.name)
    check_packable(model.hash_bit)
    use_trained_input_size(cfg)
    datamodule = build_datamodule(cfg)
    datamodule.prepare_data()
    image_list = datamodule.dataset(cfg.split).image_list
    order: list[Tensor] = []  # sample indices, in case dataset.on_bad_image=skip drops some

    def images() -> Iterable[Tensor]:
        for batch, _, index in datamodule.split_dataloader(cfg.split):
            order.append(index)
            yield batch
    codes = binarize(encode_images(model, images(), pick_device(cfg.device)))
    index = torch.cat(order).tolist()
    meta = {"hash_bit": model.hash_bit, "net": model.hparams.net["backbone"], "method": model.method.name,
            "dataset": cfg.dataset.name,
            "checkpoint": str(Path(cfg.ckpt_path).resolve()), "checkpoint_sha256": file_sha256(cfg.ckpt_path),
            "split": cfg.split,
            "resize_size": datamodule.hparams.resize_size, "crop_size": datamodule.hparams.crop_size}
    paths = [os.path.abspath(image_list.paths[i]) for i in index]
    path = save_codes(out, codes, image_list.labels[index], paths, meta, fix="pass out=<a path on another disk>")
    log.info("%d %d-bit codes of %s/%s -> %s", len(index), model.hash_bit, cfg.dataset.name, cfg.split, path)
    return path


def out_path(cfg: DictConfig, name: str) -> Path:
    """cfg.out, or by default codes_<name>.npz in the run folder."""
    return Path(cfg.out) if cfg.get("out") else Path(cfg.paths.output_dir) / f"codes_{name}.npz"


def encode_folder(cfg: DictConfig) -> Path:
    """Every image below the folder cfg.images (hashnet.data.image_files), encoded by the checkpoint's own eval
    transform and network (hashnet.inference.hasher), into a code file with no labels (N, 0); unreadable files are
    skipped, named in the log and listed in the file's metadata ("skipped")."""
    out = check_writable(out_path(cfg, "images"), "out", "out=codes_images.npz", CODE_FILE)  # before encoding
    hasher = Hasher.from_checkpoint(cfg.ckpt_path, device=cfg.device)
    index = hasher.index(cfg.images, workers=cfg.num_workers, batch_size=cfg.batch_size)
    codes = unpack_codes(index.codes)
    meta = {**index.meta, "split": "images"}
    paths = [os.path.abspath(path) for path in index.paths]
    path = save_codes(out, codes, np.zeros((len(codes), 0), np.uint8), paths, meta, fix="pass out=<a path on another disk>")
    log.info("%d %d-bit codes of the images below %s -> %s", len(codes), hasher.hash_bit, cfg.images, path)
    return path


def encode_store(cfg: DictConfig) -> Path:
    """Worker cfg.shard of cfg.shards encoding the folder cfg.images into the code store cfg.store, cfg.chunk_size
    images a chunk (hashnet.inference.sharded); scripts/merge_codes.py merges the chunks once every worker is done."""
    if not cfg.get("images"):
        raise ConfigError(f"store={cfg.store} stores the codes of a folder: pass images=<dir> too")
    if cfg.get("trainer"):  # Trainer.predict on several devices (trainer=ddp / ddp_spawn trainer.devices=G)
        hasher = Hasher.from_checkpoint(cfg.ckpt_path, device="cpu")
        meta = prepare_store(cfg.store, cfg.images, cfg.chunk_size, store_settings(hasher))
        options = {key: cfg.trainer[key] for key in ("accelerator", "devices", "strategy", "num_nodes")}
        predict_into_store(hasher, cfg.store, meta, options, cfg.batch_size, cfg.num_workers)
        return Path(cfg.store)
    hasher = Hasher.from_checkpoint(cfg.ckpt_path, device=cfg.device)
    done = encode_into_store(hasher, cfg.images, cfg.store, chunk_size=cfg.chunk_size, shards=cfg.shards,
                             shard=cfg.shard, batch_size=cfg.batch_size, workers=cfg.num_workers)
    log.info("worker %d of %d: %d chunks encoded into %s", cfg.shard, cfg.shards, len(done), cfg.store)
    return Path(cfg.store)
