"""The image dataset: decoded pixels, transformed, with labels and their position, of a parsed list, of image files,
or of pictures in memory.

Samples are ``(image (3, H, W), labels (C,) float32, index int)`` with index the item's position (a list line's),
which is how DDP gathers outputs by sample. An image that cannot be decoded raises BadImageError naming the file
(on_bad_image="error"), or yields ``Unreadable(index, why)``, which collate_readable drops and split_readable sets
aside: then the batch carries it to the caller, and one bad file neither stops a DataLoader nor needs state shared
between its workers beyond the flags of skipped_images.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset, default_collate

from hashnet.data.cache import ImageCache
from hashnet.data.images import read_image, to_pixels
from hashnet.data.lists import ImageList
from hashnet.utils.errors import UserError, check_choice

BAD_IMAGE_MODES = ("error", "skip")  # dataset.on_bad_image; the Python API reports unreadable images itself
ON_BAD_IMAGE = (*BAD_IMAGE_MODES, "report")
IN_MEMORY = (Image.Image, np.ndarray, torch.Tensor)  # images handed over decoded, not as files

log = logging.getLogger(__name__)


class BadImageError(UserError, OSError):
    """An image file exists but cannot be decoded."""


class Unreadable(NamedTuple):
    """The sample of an image that cannot be decoded: its index and why (the error's type and message)."""

    index: int
    why: str


class ImageDataset(Dataset):
    """Samples ``(transform(image), labels (C,) float32, index int)``; index = position in images.

    images: a parsed list (labels and the line of each image for messages; ``image_list``), or image paths and PIL
    images, numpy arrays or (3, H, W) tensors (no labels: C = 0; read by :func:`to_pixels` to the pixels their file
    would give). Files are decoded by :func:`read_image`,
    or read from cache (an ImageCache of the resized images of a list) when given. An unreadable image raises
    BadImageError naming it (on_bad_image="error"), or yields Unreadable: "skip" logs it once and records it in
    shared memory, so that skipped_images includes samples read in workers; "report" leaves both to the caller.
    """

    def __init__(self, images: ImageList | Sequence[str | Path | Image.Image | np.ndarray | torch.Tensor],
                 transform: Callable[[torch.Tensor], torch.Tensor], on_bad_image: str = "error",
                 cache: ImageCache | None = None) -> None:
        check_choice("dataset.on_bad_image", on_bad_image, ON_BAD_IMAGE)
        listed = isinstance(images, ImageList)
        self.image_list = images if listed else None
        self.items = images.paths if listed else [item if isinstance(item, IN_MEMORY) else str(item) for item in images]
        labels = images.labels if listed else np.zeros((len(self.items), 0), np.uint8)
        self.labels = torch.from_numpy(labels.astype(np.float32))
        self.transform, self.on_bad_image, self.cache = transform, on_bad_image, cache
        self._skipped = torch.zeros(len(self.items), dtype=torch.bool).share_memory_()

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, int] | Unreadable:
        try:
            image = self._read(index)
        except (OSError, SyntaxError, ValueError, RuntimeError) as err:  # PIL reports corrupt files as any of these
            return self._unreadable(index, err)
        return self.transform(image), self.labels[index], index

    def _read(self, index: int) -> torch.Tensor | Image.Image:
        """The uint8 pixels (3, H, W) of image index (a picture: the RGB image)."""
        item = self.items[index]
        if isinstance(item, IN_MEMORY):
            return to_pixels(item)
        if self.cache is None:
            return read_image(item)
        image = self.cache.read(index)
        if image is None:
            raise OSError(f"marked unreadable in the cache {self.cache.index_path}")
        return image

    def _unreadable(self, index: int, err: Exception) -> Unreadable:
        """BadImageError (on_bad_image="error"), else the Unreadable sample of image index, logged once ("skip")."""
        named = self.items[index]
        if self.image_list is not None:
            named = f"{named} (listed at {self.image_list.where(index)})"
        if self.on_bad_image == "error":
            raise BadImageError(f"cannot read image {named}: {err} -- replace the file or set "
                                "dataset.on_bad_image=skip") from err
        if self.on_bad_image == "skip":
            if not self._skipped[index]:  # once per image, not once per epoch
                log.warning("skipping unreadable image %s: %s (dataset.on_bad_image=skip)", named, err)
            self._skipped[index] = True
        return Unreadable(index, f"{type(err).__name__}: {err}")

    @property
    def skipped_images(self) -> list[str]:
        """Paths of the images skipped so far as unreadable (on_bad_image="skip")."""
        return [self.items[i] for i in self._skipped.nonzero().flatten().tolist()]


def split_readable(samples: list) -> tuple[list[torch.Tensor] | None, list[Unreadable]]:
    """A batch of samples -> (default_collate of the readable ones: [images (B, ...), labels (B, C), index (B,)
    int64], or None when none is; the Unreadable ones)."""
    failed = [sample for sample in samples if isinstance(sample, Unreadable)]
    read = [sample for sample in samples if not isinstance(sample, Unreadable)]
    return (default_collate(read) if read else None), failed


def collate_readable(samples: list) -> list[torch.Tensor]:
    """default_collate of the samples that were read (split_readable); BadImageError when none was."""
    batch, _ = split_readable(samples)
    if batch is None:
        raise BadImageError(f"all {len(samples)} images of a batch are unreadable -- check the dataset files")
    return batch
