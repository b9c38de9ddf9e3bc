"""encode(cfg): a trained network's codes of one dataset split, written as a code file (hashnet.codes)."""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch
from omegaconf import DictConfig
from torch import Tensor

from hashnet.codes import binarize, check_packable, save_codes
from hashnet.evaluate import load_checkpoint, use_trained_input_size
from hashnet.module import HashNetModule
from hashnet.train import build_datamodule


def pick_device(name: str) -> torch.device:
    """"auto": the GPU when there is one, else the CPU; anything else is passed to torch.device."""
    return torch.device(("cuda" if torch.cuda.is_available() else "cpu") if name == "auto" else name)


def encode_images(model: HashNetModule, batches: Iterable[Tensor], device: torch.device) -> Tensor:
    """Pre-sign outputs (N, K) float32 on the CPU of image batches (B, 3, H, W), network in eval mode."""
    model.eval().to(device)
    with torch.inference_mode():
        outputs = [model(images.to(device)).float().cpu() for images in batches]
    return torch.cat(outputs)


def encode(cfg: DictConfig) -> Path:
    """Encode cfg.split of cfg.dataset with the checkpoint cfg.ckpt_path; write the code file cfg.out."""
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
    meta = {"hash_bit": model.hash_bit, "net": model.hparams.net["backbone"], "dataset": cfg.dataset.name,
            "checkpoint": str(Path(cfg.ckpt_path).resolve()), "split": cfg.split,
            "resize_size": datamodule.hparams.resize_size, "crop_size": datamodule.hparams.crop_size}
    path = save_codes(cfg.out, codes, image_list.labels[index], [image_list.paths[i] for i in index], meta)
    print(f"{len(index)} {model.hash_bit}-bit codes of {cfg.dataset.name}/{cfg.split} -> {path}")
    return path
