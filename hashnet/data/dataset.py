"""The image dataset over a parsed list: decoded pixels, transformed, with labels and the list position.

Samples are ``(image (3, H, W), labels (C,) float32, index int64)``; unreadable images raise
BadImageError naming the file, or (on_bad_image="skip") are dropped by collate_readable and counted.
"""
from __future__ import annotations

import logging
from typing import Callable

import numpy as np
import torch
from torch.utils.data import Dataset, default_collate

from hashnet.data.cache import ImageCache
from hashnet.data.images import read_image
from hashnet.data.lists import ImageList
from hashnet.utils.errors import UserError, check_choice

BAD_IMAGE_MODES = ("error", "skip")

log = logging.getLogger(__name__)


class BadImageError(UserError, OSError):
    """An image file exists but cannot be decoded."""


class ImageListDataset(Dataset):
    """Samples ``(transform(image), labels (C,) float32, index int)``; index = list position.

    Images are decoded by :func:`read_image`, or read from cache (an ImageCache of the resized
    images) when given. An unreadable image raises BadImageError naming the file
    (on_bad_image="error"), or (on_bad_image="skip") yields None, which :func:`collate_readable`
    drops, and is recorded in shared memory so that the count includes samples read in workers.
    """

    def __init__(self, image_list: ImageList, transform: Callable[[torch.Tensor], torch.Tensor],
                 on_bad_image: str = "error", cache: ImageCache | None = None):
        check_choice("dataset.on_bad_image", on_bad_image, BAD_IMAGE_MODES)
        self.image_list, self.transform, self.on_bad_image = image_list, transform, on_bad_image
        self.cache = cache
        self.labels = torch.from_numpy(image_list.labels.astype(np.float32))
        self._skipped = torch.zeros(len(image_list), dtype=torch.bool).share_memory_()

    def __len__(self) -> int:
        return len(self.image_list)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, int] | None:
        image = self._read(index)
        return None if image is None else (self.transform(image), self.labels[index], index)

    def _read(self, index: int) -> torch.Tensor | None:
        """The uint8 pixels of image index, or None (skip mode) if it cannot be decoded."""
        path = self.image_list.paths[index]
        try:
            if self.cache is None:
                return read_image(path)
            image = self.cache.read(index)
            if image is None:
                raise OSError(f"marked unreadable in the cache {self.cache.index_path}")
            return image
        except (OSError, SyntaxError, ValueError) as err:  # PIL reports corrupt files as any of these
            if self.on_bad_image == "error":
                raise BadImageError(f"cannot read image {path} (listed at {self.image_list.where(index)}): "
                                    f"{err} -- replace the file or set dataset.on_bad_image=skip") from err
            if not self._skipped[index]:  # once per image, not once per epoch
                log.warning("skipping unreadable image %s (listed at %s): %s (dataset.on_bad_image=skip)", path,
                            self.image_list.where(index), err)
            self._skipped[index] = True
            return None

    @property
    def skipped_images(self) -> list[str]:
        """Resolved paths of the images skipped so far as unreadable."""
        return [self.image_list.paths[i] for i in self._skipped.nonzero().flatten().tolist()]


def collate_readable(samples: list) -> list[torch.Tensor]:
    """default_collate of the samples that were read; None marks an image skipped as unreadable."""
    kept = [sample for sample in samples if sample is not None]
    if not kept:
        raise BadImageError(f"all {len(samples)} images of a batch are unreadable -- check the dataset files")
    return default_collate(kept)
