"""encode(cfg): a trained network's codes of one dataset split, written as a code file (hashnet.retrieval.codes)."""
from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path

import torch
from omegaconf import DictConfig
from torch import Tensor

from hashnet.data.datamodule import SPLITS
from hashnet.retrieval.codes import binarize, check_packable, save_codes
from hashnet.tasks.setup import (
    build_datamodule,
    encode_images,
    load_checkpoint,
    pick_device,
    use_trained_input_size,
)
from hashnet.utils.errors import check_choice
from hashnet.utils.files import check_writable

log = logging.getLogger(__name__)


def encode(cfg: DictConfig) -> Path:
    """Encode cfg.split of cfg.dataset with the checkpoint cfg.ckpt_path; write the code file cfg.out (image paths
    absolute, so that search and serve find the images from any folder)."""
    check_choice("split", cfg.split, SPLITS)
    out = check_writable(cfg.out, "out", f"out=codes_{cfg.split}.npz")  # before any image is encoded
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
            "checkpoint": str(Path(cfg.ckpt_path).resolve()), "split": cfg.split,
            "resize_size": datamodule.hparams.resize_size, "crop_size": datamodule.hparams.crop_size}
    paths = [os.path.abspath(image_list.paths[i]) for i in index]
    path = save_codes(out, codes, image_list.labels[index], paths, meta, fix="pass out=<a path on another disk>")
    log.info("%d %d-bit codes of %s/%s -> %s", len(index), model.hash_bit, cfg.dataset.name, cfg.split, path)
    return path
