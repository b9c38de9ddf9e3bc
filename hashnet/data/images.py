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
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image, ImageOps
from torchvision.io import ImageReadMode, decode_image, read_file
from torchvision.transforms import v2

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


# formats PIL always identifies when whole: a header it cannot read is damaged
DECODER = 2  # bumped when read_image's pixels change, so caches of resized images are rebuilt (2: EXIF, 16-bit grey)
IMAGE_FORMATS = ("JPEG", "PNG", "WebP", "GIF", "TIFF", "BMP", "PPM/PGM")
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


def read_image(source: str | Path | bytes) -> torch.Tensor:
    """The (3, H, W) uint8 RGB pixels of an image file (a path) or of its bytes (an upload): the one decoder of
    every way in (files, lists, folders, uploads, search queries; PIL images and arrays: to_pixels, to the same
    pixels).

    JPEG/PNG/WebP/GIF are decoded by torchvision.io (libjpeg-turbo, libpng), without a PIL image in between;
    other formats (TIFF, BMP, ...), and files torchvision rejects, go through PIL (pil_pixels), which raises the
    OSError (or SyntaxError/ValueError) that names what is wrong with a corrupt file. Either way: the EXIF
    orientation is applied, an animated file gives its first frame, alpha is dropped, palette, grey and CMYK
    become RGB, and 16-bit samples are scaled to 8 bits (the high byte, as PIL reads 16-bit RGB). An image over
    PIL's pixel limit is refused from its header (OSError), before decoding. scripts/check_lists.py decodes with
    this too.
    """
    data = torch.frombuffer(bytearray(source), dtype=torch.uint8) if isinstance(source, bytes) else \
        read_file(str(source))
    check_pixels(data.numpy().tobytes(), str(source) if not isinstance(source, bytes) else "upload")
    try:
        image = decode_image(data, mode=ImageReadMode.RGB, apply_exif_orientation=True)
    except RuntimeError:
        try:
            with Image.open(io.BytesIO(data.numpy().tobytes())) as pil:
                return pil_pixels(pil)
        except Image.UnidentifiedImageError:
            raise OSError(f"not an image file: neither torchvision nor PIL reads its format (read: "
                          f"{', '.join(IMAGE_FORMATS)})") from None
    if image.ndim == 4:  # an animated GIF / WebP: its frames (F, 3, H, W)
        image = image[0]
    if image.dtype != torch.uint8:  # 16-bit PNG: torchvision keeps the 16 bits
        image = v2.functional.to_dtype(image, torch.uint8, scale=True)
    return image


SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N", "I")  # PIL's modes of 16-bit grey (and 32-bit "I", read alike)


def pil_pixels(image: Image.Image) -> torch.Tensor:
    """The (3, H, W) uint8 RGB pixels of a PIL image, as read_image reads its file: the first frame, the EXIF
    orientation applied, 16-bit grey scaled to 8 bits by its high byte (PIL's convert("RGB") would clip it to
    white), 32-bit float grey (mode F) read as pixels in [0, 1], or in [0, 255] where it goes above 1, alpha
    dropped, palette and CMYK converted by PIL."""
    if getattr(image, "n_frames", 1) > 1:
        image.seek(0)
    image = ImageOps.exif_transpose(image)
    if image.mode == "F":  # 32-bit float grey: PIL's convert("RGB") clips it, and a [0, 1] picture turns black
        values = np.asarray(image, dtype=np.float32)
        if values.size and not (values.min() >= 0 and values.max() <= 255):  # NaN too
            raise ValueError(f"a 32-bit float image (PIL mode F) must hold pixels in [0, 1] or [0, 255], got values "
                             f"in [{values.min():.3g}, {values.max():.3g}]")
        return array_pixels(values if not values.size or values.max() <= 1 else values / 255)
    if image.mode in SIXTEEN_BIT:
        return array_pixels(np.clip(np.asarray(image), 0, 65535).astype(np.uint16))
    return torch.from_numpy(np.array(image.convert("RGB"))).permute(2, 0, 1).contiguous()


def array_pixels(array: np.ndarray) -> torch.Tensor:
    """(3, H, W) uint8 RGB pixels of one image as a numpy array (H, W) grey or (H, W, 3|4) RGB(A): uint8 (or 8-bit
    values of a wider integer type), uint16 (scaled by the high byte, as read_image) or floats in [0, 1] (rounded to
    the uint8 they came from).
    ValueError for another shape, type or range."""
    if array.ndim == 2:
        array = array[..., None].repeat(3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise ValueError(f"an image array must be (H, W) grey or (H, W, 3) RGB, got shape {array.shape}")
    if not array.shape[0] or not array.shape[1]:
        raise ValueError(f"an image array must hold at least 1 x 1 pixels, got shape {array.shape}")
    array = array[..., :3]
    if array.dtype.kind == "f":
        if array.size and not (array.min() >= 0 and array.max() <= 1):
            raise ValueError(f"a float image array must hold pixels in [0, 1], got values in "
                             f"[{array.min():.3g}, {array.max():.3g}]")
        array = np.rint(array * 255)
    elif array.dtype == np.uint16:
        array = array >> 8
    elif array.dtype.kind in "ui" and array.size and 0 <= array.min() and array.max() <= 255:
        pass  # 8-bit values in a wider integer type (np.array of a list gives int64)
    elif array.dtype != np.uint8:
        raise ValueError(f"an image array must hold uint8 or uint16 pixels (or 8-bit values in another integer "
                         f"type), or floats in [0, 1], got {array.dtype}")
    return torch.from_numpy(np.ascontiguousarray(array.astype(np.uint8))).permute(2, 0, 1).contiguous()


def float_to_uint8(pixels: torch.Tensor) -> torch.Tensor:
    """Float pixels in [0, 1] -> the uint8 pixels they came from (x * 255, rounded): a float tensor of an image
    then gives the same code as its uint8 pixels."""
    return pixels.mul(255).round_().clamp_(0, 255).to(torch.uint8)


def to_pixels(image: Image.Image | np.ndarray | torch.Tensor) -> torch.Tensor:
    """(3, H, W) uint8 RGB pixels of an image given in memory: a PIL image (pil_pixels), a numpy array
    (array_pixels) or a tensor (3, H, W) of uint8 or [0, 1] float pixels."""
    if isinstance(image, Image.Image):
        return pil_pixels(image)
    if isinstance(image, np.ndarray):
        return array_pixels(image)
    if image.dtype != torch.uint8 and image.numel() and not (image.min() >= 0 and image.max() <= 1):  # NaN too
        raise ValueError(f"a float image tensor must hold pixels in [0, 1], got values in [{float(image.min()):.3g}, "
                         f"{float(image.max()):.3g}]")
    return image if image.dtype == torch.uint8 else float_to_uint8(image)


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
