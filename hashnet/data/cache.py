"""dataset.cache: the resized images of a list, decoded once into a uint8 array that later runs memory-map.

A split's cache is two files in the cache folder: ``<split>-<key>.npy``, the (N, 3, R, R) uint8
pixels in list order, and ``<split>-<key>.json``, its index (fingerprint, list file, resolved image
paths, unreadable entries). The key is a fingerprint of the list file's bytes, the resolved paths
and the resize settings, so editing the list, moving the root or changing resize_size selects a new
cache and building it deletes the stale one. Both files are written atomically, the index last: a
reader that finds a matching index finds the whole array. Images replaced in place under the same
names are not detected: delete the cache folder then.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch
from torch import Tensor

from hashnet.utils.files import atomic_write, atomic_write_json

FORMAT = 1  # bump when the file layout changes: old caches then no longer match


def fingerprint(list_path: str | Path, paths: Sequence[str], settings: dict) -> str:
    """sha256 (hex) of the list file's bytes, the resolved image paths and the settings (JSON values)."""
    digest = hashlib.sha256(Path(list_path).read_bytes())
    digest.update(json.dumps({"format": FORMAT, "paths": list(paths), "settings": settings}, sort_keys=True).encode())
    return digest.hexdigest()


class ImageCache:
    """The cache of one split, named by its fingerprint key: build() writes it, read(i) serves image i.

    The array is memory-mapped on first read in each process (workers included), so every rank and
    worker shares the page cache instead of holding a copy.
    """

    def __init__(self, folder: str | Path, split: str, key: str) -> None:
        self.folder, self.split, self.key = Path(folder), split, key
        stem = f"{split}-{key[:16]}"
        self.array_path, self.index_path = self.folder / f"{stem}.npy", self.folder / f"{stem}.json"
        self._pixels: np.ndarray | None = None
        self._unreadable: frozenset[int] = frozenset()

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_pixels": None}  # a worker maps the file itself rather than receive a copy

    def exists(self) -> bool:
        """Whether a complete cache with this key is on disk."""
        try:
            index = json.loads(self.index_path.read_text())
        except (OSError, ValueError):
            return False
        return index.get("fingerprint") == self.key and self.array_path.is_file()

    def build(self, images: Iterable[Tensor | None], paths: Sequence[str], size: int, list_path: str | Path) -> None:
        """Write images ((3, size, size) uint8 each, None when unreadable) in list order, then the index.

        Deletes the other caches of this split (stale keys) once the new one is complete.
        """
        unreadable: list[int] = []

        def write(f) -> None:
            shape = (len(paths), 3, size, size)
            np.lib.format.write_array_header_1_0(f, {"descr": "|u1", "fortran_order": False, "shape": shape})
            blank = bytes(3 * size * size)
            count = 0
            for i, image in enumerate(images):
                if image is None:
                    unreadable.append(i)
                elif image.shape != shape[1:] or image.dtype != torch.uint8:
                    raise ValueError(f"cache entry {i} ({paths[i]}) is {tuple(image.shape)} {image.dtype}, "
                                     f"expected {shape[1:]} uint8")
                f.write(blank if image is None else image.contiguous().numpy().tobytes())
                count += 1
            if count != len(paths):
                raise ValueError(f"cache of {self.split}: got {count} images for {len(paths)} list entries")

        atomic_write(self.array_path, write)
        atomic_write_json(self.index_path, {"fingerprint": self.key, "list": str(list_path), "size": size,
                                            "paths": list(paths), "unreadable": unreadable})
        for stale in self.folder.glob(f"{self.split}-*"):
            if stale not in (self.array_path, self.index_path):
                stale.unlink(missing_ok=True)

    def read(self, index: int) -> Tensor | None:
        """Image index as a (3, R, R) uint8 tensor (a copy), or None if it was unreadable when built."""
        if self._pixels is None:
            self._unreadable = frozenset(json.loads(self.index_path.read_text())["unreadable"])
            self._pixels = np.load(self.array_path, mmap_mode="r")
        if index in self._unreadable:
            return None
        return torch.from_numpy(np.array(self._pixels[index]))
