"""The Python API: a trained checkpoint as a Hasher that turns images into packed binary codes and folders into a
searchable index, with no Hydra and no config file.

    from hashnet import Hasher, HammingIndex
    hasher = Hasher.from_checkpoint("outputs/.../checkpoints/last.ckpt", device="cpu")
    codes = hasher.encode(["a.jpg", "b.jpg"])            # (2, K/8) uint8, packed as code files are
    index = hasher.index("photos/")                       # every image below photos/, with its path
    distances, positions, paths = index.search(hasher.encode("query.jpg"), k=10, return_paths=True)
    index.save("photos.hnx"); index = hasher.load_index("photos.hnx")   # or HammingIndex.load("photos.hnx")

The checkpoint's own network runs in eval mode, on the checkpoint's own eval transform (hashnet.inference.encoding,
the one path every entry point encodes through), so a file's codes equal those `scripts/encode.py` writes for it,
bit for bit. `scripts/encode.py images=<dir>` builds its code file with Hasher.index.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from hashnet.data.dataset import ImageDataset
from hashnet.data.image_files import find_images
from hashnet.inference.checkpoint import load_checkpoint, trained_input_size
from hashnet.inference.encoding import (
    FORMATS,
    Images,
    InputError,
    check_count,
    check_files,
    eval_transform,
    images_to_codes,
    pick_device,
    readable_codes,
)
from hashnet.retrieval.codes import check_packable, checkpoint_mismatch
from hashnet.retrieval.index import HammingIndex
from hashnet.retrieval.index_file import IndexFileError
from hashnet.training.module import HashingModule
from hashnet.utils.files import file_sha256

log = logging.getLogger(__name__)

SHOWN_SKIPPED = 10  # unreadable files named in the log line; the count and the index's meta hold all of them
__all__ = ["Hasher", "InputError"]


class Hasher:
    """A trained HashingModule in eval mode with its eval transform: images -> packed codes (N, K/8) uint8.

    model: the network (built by from_checkpoint, or any HashingModule); resize_size, crop_size: its eval
    transform (resize to (resize_size, resize_size), centre crop crop_size); device: "cpu", "cuda", "cuda:1" or
    "auto" (the GPU when there is one); checkpoint: the file it came from, recorded in an index's metadata (its
    path and content hash, sha256) and checked by load_index (the content: a moved checkpoint matches, one rewritten
    in place does not). hash_bit K must be a multiple of 8 (codes are packed whole bytes).
    """

    def __init__(self, model: HashingModule, resize_size: int, crop_size: int, device: str | torch.device = "cpu",
                 checkpoint: str | Path | None = None) -> None:
        check_packable(model.hash_bit)
        self.model = model.eval()
        self.device = pick_device(device) if isinstance(device, str) else device
        self.model.to(self.device)
        self.resize_size, self.crop_size = resize_size, crop_size
        self.transform = eval_transform(resize_size, crop_size)
        self.checkpoint = None if checkpoint is None else str(Path(checkpoint).resolve())
        self.checkpoint_sha256 = None if checkpoint is None else file_sha256(checkpoint)

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str | torch.device = "cpu") -> Hasher:
        """The network of the Lightning checkpoint at path (written by scripts/train.py), in eval mode on device,
        with the eval transform it was trained with. CheckpointError / CheckpointFileError (UserErrors) say what
        is wrong with a file that cannot be used; a model without a checkpoint: Hasher(model, resize, crop)."""
        model = load_checkpoint(path)
        resize_size, crop_size = trained_input_size(path)
        return cls(model, resize_size, crop_size, device, checkpoint=path)

    # ---- what identifies the codes ----
    @property
    def hash_bit(self) -> int:
        """K, bits per code; a packed code is K/8 bytes."""
        return self.model.hash_bit

    @property
    def meta(self) -> dict[str, Any]:
        """What an index built by this Hasher records: hash_bit, net, method, dataset (trained on), checkpoint and
        the eval transform's resize_size / crop_size."""
        return {"hash_bit": self.hash_bit, "net": self.model.hparams.net["backbone"], "method": self.model.method.name,
                "dataset": self.model.hparams.dataset, "checkpoint": self.checkpoint,
                "checkpoint_sha256": self.checkpoint_sha256,
                "resize_size": self.resize_size, "crop_size": self.crop_size}

    def __repr__(self) -> str:
        meta = self.meta
        return (f"Hasher({meta['method']} on {meta['net']}, {meta['hash_bit']} bits, trained on {meta['dataset']}, "
                f"input {self.resize_size} -> {self.crop_size} px, {self.device})")

    # ---- images -> codes ----
    def encode(self, images: Images, batch_size: int = 256, workers: int = 0) -> np.ndarray:
        """Packed codes (N, K/8) uint8 of images, one row per image in the order given.

        images: an image path, a PIL image or a numpy array (H, W[, 3]) (N = 1), a list of them, a numpy batch
        (N, H, W, 3), or a tensor batch (N, 3, H, W) of RGB pixels, uint8 in [0, 255] or float in [0, 1]; any H, W
        (they get the eval transform). The same picture gives the same code whichever way it comes in.
        Encoded batch_size images at a time (workers: DataLoader processes decoding the files). A missing or
        unreadable file, a folder, or a tensor of another shape raises InputError naming it.
        """
        return images_to_codes(self.model, images, self.transform, self.device, batch_size, workers)

    # ---- a folder -> an index ----
    def index(self, images: str | Path | Sequence[str | Path], workers: int = 0, batch_size: int = 64,
              backend: str = "auto", progress: bool = True) -> HammingIndex:
        """A HammingIndex of the codes (N, K/8) of every image below a folder (recursively; hashnet.data.image_files
        says which files count) or of a list of image files, with their paths (N,) in that order and self.meta.

        Files are decoded by `workers` DataLoader processes (0: in this one), batch_size at a time, with a
        progress bar (log lines when stderr is not a terminal; progress=False: none). Files that cannot be
        decoded are skipped: named in a warning with their count, and listed in index.meta["skipped"]. A missing
        folder or file, a folder without images, or nothing readable raises InputError.
        """
        check_count("batch_size", batch_size, 1)
        check_count("workers", workers, 0)
        paths, meta = self._files_of(images), dict(self.meta)
        codes, kept, failed = readable_codes(self.model, ImageDataset(paths, self.transform, "report"), self.device,
                                             batch_size, workers, progress)
        skipped = [(paths[position], why) for position, why in failed]
        if skipped:
            shown = "".join(f"\n  {path}: {why}" for path, why in skipped[:SHOWN_SKIPPED])
            more = f"\n  ... and {len(skipped) - SHOWN_SKIPPED} more" if len(skipped) > SHOWN_SKIPPED else ""
            log.warning("skipped %d of %d images that cannot be read (listed in the index's meta['skipped']):%s%s",
                        len(skipped), len(paths), shown, more)
        if not kept:
            raise InputError(f"none of the {len(paths)} images of {_named(images)} can be read (e.g. {skipped[0][0]}: "
                             f"{skipped[0][1]}) -- pass {FORMATS} files")
        meta["skipped"] = [path for path, _ in skipped]
        if isinstance(images, (str, Path)) and Path(images).is_dir():
            meta["images"] = str(Path(images).resolve())
        return HammingIndex(codes, backend, paths=[paths[i] for i in kept], meta=meta)

    def _files_of(self, images: str | Path | Sequence[str | Path]) -> list[str]:
        """The image files of a folder (walked) or of a list of files (checked), as strings."""
        if isinstance(images, (str, Path)):
            folder = Path(images)
            if folder.is_file():
                return [str(folder)]
            if not folder.is_dir():
                raise InputError(f"image folder {folder} does not exist -- pass an existing folder, or a list of files")
            found = find_images(folder)
            if not found:
                raise InputError(f"image folder {folder} holds no image files ({FORMATS}, at any depth; hidden files "
                                 "and folders are left out) -- pass the folder that holds your images")
            return [str(path) for path in found]
        if isinstance(images, (Image.Image, Tensor, np.ndarray)):
            raise InputError(f"index() takes a folder or a list of image files, got a {type(images).__name__} -- "
                             "encode() takes images themselves; HammingIndex(codes, paths=...) indexes codes")
        paths = list(images)
        if not paths:
            raise InputError("index() got an empty list of images -- pass a folder, or a list of image files")
        bad = [item for item in paths if not isinstance(item, (str, Path))]
        if bad:
            raise InputError(f"index() takes image paths, got a {type(bad[0]).__name__} among them -- pass a folder, "
                             "or a list of image files")
        check_files(paths)
        return [str(path) for path in paths]

    def load_index(self, path: str | Path, backend: str = "auto") -> HammingIndex:
        """The index saved at path (HammingIndex.save), refused (IndexFileError) unless its codes are this
        Hasher's: the same hash_bit, net and dataset, and the same checkpoint content (sha256) when both know it."""
        index = HammingIndex.load(path, backend, hash_bit=self.hash_bit, net=self.meta["net"],
                                  dataset=self.meta["dataset"])
        mismatch = checkpoint_mismatch(index.meta, self.checkpoint_sha256, self.checkpoint)
        if mismatch:
            raise IndexFileError(f"index {path}: {mismatch} -- build it again with this "
                                 "checkpoint (hasher.index(folder).save(path)), or load the checkpoint it was built "
                                 "with")
        return index


def _named(images: Any) -> str:
    return str(images) if isinstance(images, (str, Path)) else "the list"
