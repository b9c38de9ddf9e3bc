"""Image files without a list: a folder walked for them, and a dataset that reads them, skipping unreadable ones.

What the Python API (hashnet.inference.hasher), `scripts/encode.py images=<dir>` and the folder dataset builder
(hashnet.data.builders.folder) share. A folder is walked recursively in sorted order (so the same tree gives the
same order on every machine), following symbolic links to folders once; hidden files and folders (a leading
dot: .git, .ipynb_checkpoints, a build's own temporary folders) are left out, and so are files whose suffix is not
one of IMAGE_SUFFIXES, the formats the decoders read (hashnet.data.images.read_image).
"""
from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch.utils.data import Dataset, default_collate

from hashnet.data.images import read_image

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".ppm", ".pgm")

log = logging.getLogger(__name__)


def is_image_file(path: str | Path) -> bool:
    """Whether path's suffix (any case) is one of IMAGE_SUFFIXES."""
    return os.path.splitext(str(path))[1].lower() in IMAGE_SUFFIXES


def find_images(folder: str | Path) -> list[Path]:
    """Every image file below folder, at any depth, sorted by path (component by component; see the module
    docstring for what is left out)."""
    found: list[Path] = []
    seen: set[str] = set()  # real paths of the folders walked: a link back up the tree is walked once
    for top, folders, files in os.walk(folder, followlinks=True):
        real = os.path.realpath(top)
        if real in seen:
            folders[:] = []
            continue
        seen.add(real)
        folders[:] = sorted(name for name in folders if not name.startswith("."))
        found += [Path(top, name) for name in sorted(files) if not name.startswith(".") and is_image_file(name)]
    return sorted(found)  # by path components: a/deeper/two.png before a/one.png


class ImageFiles(Dataset):
    """Samples (transform(pixels), position) of image files; position = index in paths.

    A file that cannot be decoded yields (None, position, why) instead, which collate_files sets aside, so one bad
    file neither stops a DataLoader nor needs shared state between its workers: the batch carries it to the caller.
    """

    def __init__(self, paths: Sequence[str | Path], transform: Callable[[torch.Tensor], torch.Tensor]) -> None:
        self.paths = [str(path) for path in paths]
        self.transform = transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, position: int) -> tuple:
        try:
            pixels = read_image(self.paths[position])
        except (OSError, SyntaxError, ValueError, RuntimeError) as err:  # PIL reports corrupt files as any of these
            return None, position, f"{type(err).__name__}: {err}"
        return self.transform(pixels), position, None


def collate_files(samples: list[tuple]) -> tuple[torch.Tensor | None, torch.Tensor, list[tuple[int, str]]]:
    """A batch of ImageFiles samples -> (images (B, ...) of the readable ones or None if there is none, their
    positions (B,) int64, [(position, why)] of the unreadable ones)."""
    read = [(image, position) for image, position, _ in samples if image is not None]
    failed = [(position, why) for image, position, why in samples if image is None]
    images = default_collate([image for image, _ in read]) if read else None
    return images, torch.tensor([position for _, position in read], dtype=torch.int64), failed
