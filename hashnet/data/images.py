"""Decoding and HashNet's image transforms, on uint8 tensors: an image file -> (3, crop, crop) pixels.

Decoding goes through torchvision.io (libjpeg-turbo) and every geometric step runs on uint8
tensors with torch's vectorised antialiased kernels; the float conversion and ImageNet
normalisation come last, in the worker (normalize=True) or batched on the device
(:func:`normalize_pixels`, called by HashNet.forward on uint8 input).
"""
from __future__ import annotations

import io
import re
import warnings
from typing import Sequence

import torch
from PIL import Image
from torchvision.io import ImageReadMode, decode_image, read_file
from torchvision.transforms import v2

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


# formats PIL always identifies when whole: a header it cannot read is damaged
SIGNATURES = {b"\x89PNG\r\n\x1a\n": "PNG", b"\xff\xd8\xff": "JPEG", b"GIF87a": "GIF", b"GIF89a": "GIF"}


def check_pixels(data: bytes, path: str) -> None:
    """OSError when the image header in data announces more pixels than Pillow's MAX_IMAGE_PIXELS (a decompression
    bomb: a small file that decodes to gigabytes), or when a PNG / JPEG / GIF header is damaged (PIL's error, before
    libpng prints its own on stderr); nothing when PIL does not know the format (torchvision may)."""
    limit = Image.MAX_IMAGE_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the limit is checked below
            with Image.open(io.BytesIO(data)) as image:  # reads the header only
                pixels = image.size[0] * image.size[1]
    except Image.DecompressionBombError as err:  # over twice the limit: PIL refuses to open it at all
        pixels = int(re.search(r"\((\d+) pixels\)", str(err)).group(1))
    except (OSError, SyntaxError, ValueError) as err:
        kind = next((name for signature, name in SIGNATURES.items() if data.startswith(signature)), None)
        if kind is not None:
            raise OSError(f"a damaged {kind} file: its header cannot be read ({type(err).__name__})") from None
        return
    if limit and pixels > limit:
        raise OSError(f"{pixels:,} pixels, over the decoder's limit of {limit:,} (PIL.Image.MAX_IMAGE_PIXELS): "
                      "a decompression bomb, or an image to shrink first")


def read_image(path: str) -> torch.Tensor:
    """The (3, H, W) uint8 RGB pixels of an image file.

    JPEG/PNG/WebP/GIF are decoded by torchvision.io (libjpeg-turbo, libpng), without a PIL image
    in between; other formats, and files torchvision rejects, go through PIL, which raises the
    OSError (or SyntaxError/ValueError) that names what is wrong with a corrupt file. 16-bit PNGs
    are scaled to 8 bits (the high byte), as PIL reads 16-bit RGB. An image over PIL's pixel limit
    is refused from its header (OSError), before decoding. scripts/check_lists.py decodes with this too.
    """
    data = read_file(path)
    check_pixels(data.numpy().tobytes(), path)
    try:
        image = decode_image(data, mode=ImageReadMode.RGB)
    except RuntimeError:
        with Image.open(path) as pil:
            return v2.functional.pil_to_tensor(pil.convert("RGB"))
    if image.dtype != torch.uint8:  # 16-bit PNG: torchvision keeps the 16 bits
        image = v2.functional.to_dtype(image, torch.uint8, scale=True)
    return image


def normalize_pixels(images: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """uint8 pixels (..., 3, H, W) -> dtype (..., 3, H, W): x / 255 then ImageNet mean/std.

    The same operations, in the same order, as the transforms' ToDtype(scale) + Normalize, so
    normalising a batch on the device gives the tensors the workers would have produced.
    """
    return v2.functional.normalize(v2.functional.to_dtype(images, dtype, scale=True),
                                   IMAGENET_MEAN, IMAGENET_STD)


def resize_steps(resize_size: int) -> list:
    """The first steps of every transform: any image -> uint8 tensor -> Resize((r, r)), antialiased.

    A (3, r, r) input passes through unchanged, which is what lets the cache store their output.
    """
    return [v2.ToImage(), v2.Resize((resize_size, resize_size), antialias=True)]


def transforms(resize_size: int = 256, crop_size: int = 224,
               crop_scale: Sequence[float] = (0.08, 1.0), hflip: bool = True,
               train: bool = False, normalize: bool = True) -> v2.Compose:
    """HashNet's preprocessing of an RGB image (PIL or uint8 (3, H, W) tensor) into (3, crop_size, crop_size).

    train: Resize((r, r)) -> RandomResizedCrop(c, scale=crop_scale) -> [RandomHorizontalFlip];
    eval: Resize((r, r)) -> CenterCrop(c); all on uint8 tensors (torch's vectorised antialiased
    kernels), then, if normalize, ToDtype(float32, /255) -> Normalize(ImageNet). normalize=False
    leaves uint8 pixels for :func:`normalize_pixels` on the device.
    """
    if crop_size > resize_size:
        raise ValueError(f"crop_size {crop_size} exceeds resize_size {resize_size}")
    steps: list = resize_steps(resize_size)
    if train:
        steps.append(v2.RandomResizedCrop(crop_size, scale=tuple(crop_scale), antialias=True))
        if hflip:
            steps.append(v2.RandomHorizontalFlip())
    else:
        steps.append(v2.CenterCrop(crop_size))
    if normalize:
        steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    return v2.Compose([*steps, v2.ToPureTensor()])
