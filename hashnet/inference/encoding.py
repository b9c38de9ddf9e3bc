"""Images -> packed binary codes: the one path that the Python API (hashnet.inference.hasher), scripts/encode.py,
search.py and serve.py encode through.

The network runs in eval mode on the eval transform (eval_transform: resize to (resize_size, resize_size),
centre-crop crop_size) of uint8 pixels, which the model normalises on its device, exactly as the datasets feed it
(hashnet.data.images), so that an image's code is the same whichever entry point encodes it. A code is sign(h)
with sign(0) = +1, packed 8 bits a byte (hashnet.retrieval.codes.pack_codes).
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor
from torch.utils.data import DataLoader

from hashnet.data.dataset import IN_MEMORY, ImageDataset, split_readable
from hashnet.data.image_files import IMAGE_SUFFIXES
from hashnet.data.images import array_pixels, float_to_uint8, transforms
from hashnet.retrieval.codes import binarize, pack_codes
from hashnet.training.module import HashingModule
from hashnet.utils.errors import UserError
from hashnet.utils.progress import Progress

log = logging.getLogger(__name__)

Images = str | Path | Image.Image | np.ndarray | Tensor | Sequence[str | Path | Image.Image | np.ndarray]
Transform = Callable[[Tensor], Tensor]
FORMATS = ", ".join(IMAGE_SUFFIXES)


class InputError(UserError, ValueError):
    """Images handed to be encoded that cannot be: the message names the input and what it takes."""


def pick_device(name: str) -> torch.device:
    """"auto": the GPU when there is one, else the CPU; "gpu" is "cuda"; anything else is passed to torch.device.
    InputError for a CUDA device that is not here."""
    name = {"auto": "cuda" if torch.cuda.is_available() else "cpu", "gpu": "cuda"}.get(name, name)
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise InputError(f"device={name!r} is not a device ({err}) -- pass device=cpu, device=cuda or "
                         "device=auto") from None
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise InputError(f"device={name!r}: {torch.cuda.device_count()} CUDA GPUs are visible here -- pass "
                         "device=cpu, or device=auto (the GPU when there is one)")
    return device


def eval_transform(resize_size: int, crop_size: int) -> Transform:
    """A PIL image or uint8 (3, H, W) pixels -> uint8 (3, crop_size, crop_size), as the datasets' eval transform."""
    return transforms(resize_size, crop_size, train=False, normalize=False)


def encode_images(model: HashingModule, batches: Iterable[Tensor], device: torch.device) -> Tensor:
    """Continuous codes (N, K) float32 on the CPU of image batches (B, 3, H, W), network in eval mode."""
    model.eval().to(device)
    with torch.inference_mode():
        outputs = [model(images.to(device)).float().cpu() for images in batches]
    return torch.cat(outputs)


def packed_codes(model: HashingModule, batches: Iterable[Tensor], device: torch.device) -> np.ndarray:
    """Packed codes (N, K/8) uint8 of image batches (B, 3, H, W)."""
    return pack_codes(binarize(encode_images(model, batches, device)))


def images_to_codes(model: HashingModule, images: Images, transform: Transform, device: torch.device,
                    batch_size: int = 256, workers: int = 0) -> np.ndarray:
    """Packed codes (N, K/8) uint8 of images, one row per image in the order given.

    images: an image path, a PIL image or a numpy array (H, W[, 3]) (N = 1), a list of them, a numpy batch
    (N, H, W, 3), or a tensor batch (N, 3, H, W) of RGB pixels, uint8 in [0, 255] or float in [0, 1]; any H, W
    (they get the transform). Each gives the code of the same picture read from its file (hashnet.data.images).
    Encoded batch_size images at a time (workers: DataLoader processes decoding the files). A missing or
    unreadable file, a folder, or a tensor of another shape raises InputError naming it.
    """
    check_count("batch_size", batch_size, 1)
    check_count("workers", workers, 0)
    empty = np.zeros((0, model.hash_bit // 8), dtype=np.uint8)
    if isinstance(images, Tensor):
        check_pixels(images)
        return packed_codes(model, tensor_batches(images, transform, batch_size), device) if len(images) else empty
    if isinstance(images, (bytes, bytearray)):
        raise InputError("images is bytes: pass a path as a str (os.fsdecode(path)), or the file's bytes as "
                         "PIL.Image.open(io.BytesIO(data))")
    if isinstance(images, np.ndarray) and images.ndim == 4:
        items: list = list(images)  # a batch of (H, W, 3) arrays
    else:
        items = [images] if isinstance(images, (str, Path, *IN_MEMORY)) else list(images)
    for position, item in enumerate(items):
        if not isinstance(item, (str, Path, *IN_MEMORY)) or isinstance(item, Tensor) and item.ndim != 3:
            raise InputError(f"images[{position}] is a {type(item).__name__}: pass image paths, PIL images or numpy "
                             "arrays (H, W, 3) (or one tensor batch (N, 3, H, W))")
        if isinstance(item, str) and not item.strip():
            raise InputError(f"images[{position}] is an empty path {item!r} -- pass the path of an image file")
        if isinstance(item, np.ndarray):
            try:
                array_pixels(item)
            except ValueError as err:
                raise InputError(f"images[{position}]: {err} -- pass e.g. np.asarray(PIL.Image.open(path)."
                                 "convert('RGB'))") from err
    check_files([item for item in items if isinstance(item, (str, Path))])
    codes, _, failed = readable_codes(model, ImageDataset(items, transform, "report"), device, batch_size, workers)
    if failed:
        position, why = failed[0]
        named = items[position] if isinstance(items[position], (str, Path)) else \
            f"images[{position}] (a {type(items[position]).__name__})"
        raise InputError(f"image {named} cannot be read ({why}) -- pass a readable image file "
                         f"({FORMATS}); hasher.index() skips and reports unreadable files instead")
    return codes


def readable_codes(model: HashingModule, dataset: ImageDataset, device: torch.device, batch_size: int, workers: int,
                   progress: bool = False) -> tuple[np.ndarray, list[int], list[tuple[int, str]]]:
    """(packed codes (M, K/8) uint8 of the M readable images of dataset (on_bad_image="report"), their positions
    (M,), (position, why) of the unreadable ones), in dataset order; with a progress bar (log lines when stderr is
    not a terminal)."""
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=workers, collate_fn=split_readable)
    codes, kept, failed = [np.zeros((0, model.hash_bit // 8), dtype=np.uint8)], [], []
    with Progress(len(dataset), f"encoding {len(dataset)} images", log, enabled=progress) as bar:
        for batch, unreadable in loader:  # in order: no sampler
            if batch is not None:
                images, _, index = batch
                codes.append(packed_codes(model, [images], device))
                kept += index.tolist()
            failed += [(sample.index, sample.why) for sample in unreadable]
            bar.update(len(kept) + len(failed) - bar.done)
    return np.concatenate(codes), kept, failed


def tensor_batches(images: Tensor, transform: Transform, batch_size: int) -> Iterator[Tensor]:
    """A checked tensor batch of pixels (check_pixels) in transformed uint8 slices of batch_size: float pixels are
    taken back to the uint8 they came from first, so that both give the same code."""
    for start in range(0, len(images), batch_size):
        pixels = images[start:start + batch_size].cpu()
        yield transform(pixels if pixels.dtype == torch.uint8 else float_to_uint8(pixels))


def check_pixels(images: Tensor) -> None:
    """InputError unless images is a batch (N, 3, H, W) of uint8 pixels or of floats in [0, 1]."""
    if images.ndim != 4 or images.shape[1] != 3 or 0 in images.shape[2:]:
        hint = " (one image: images.unsqueeze(0))" if images.ndim == 3 and images.shape[0] == 3 else ""
        raise InputError(f"an image tensor must be a batch (N, 3, H, W) of RGB pixels, got shape "
                         f"{tuple(images.shape)}{hint}")
    if images.dtype != torch.uint8 and not images.is_floating_point():
        raise InputError(f"an image tensor must hold uint8 pixels in [0, 255] or floats in [0, 1], got {images.dtype}")
    if images.is_floating_point() and len(images) and not (0.0 <= images.min() and images.max() <= 1.0):
        raise InputError(f"a float image tensor must hold pixels in [0, 1] (uint8 pixels / 255), got values in "
                         f"[{float(images.min()):.3g}, {float(images.max()):.3g}]: pass the uint8 pixels, or undo "
                         "the normalisation first (the Hasher resizes, crops and normalises itself)")


def check_count(name: str, value: Any, minimum: int) -> None:
    """InputError unless value is a whole number >= minimum."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InputError(f"{name} must be a whole number >= {minimum}, got {value!r}")


def check_files(paths: Sequence[str | Path]) -> None:
    """InputError naming the first path that is not an existing file (and how many are not)."""
    missing = [path for path in paths if not Path(path).is_file()]
    if missing:
        first = Path(missing[0])
        what = "is a folder: hasher.index(folder) encodes the images below it" if first.is_dir() else "does not exist"
        others = f" ({len(missing)} of the {len(paths)} paths are not files)" if len(missing) > 1 else ""
        raise InputError(f"image {first} {what}{others} -- pass existing {FORMATS} files")
