"""The Lightning DataModule over list files: splits, protocol options, builders, loaders.

The list format and its parser live in :mod:`hashnet.data.lists`, the image dataset in
:mod:`hashnet.data.dataset`; both are re-exported here. Samples are ``(image (3, H, W), labels (C,) float32, index
int64)`` with index the line's position in its list. The image is float and normalised, or, when
the DataModule normalises on the device (the default), uint8 pixels that HashNet.forward
normalises (:func:`hashnet.data.images.normalize_pixels`): a uint8 batch crosses worker queues and
the PCIe bus in a quarter of the bytes. Decoding and transforms live in :mod:`hashnet.data.images`.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Literal, Sequence

import numpy as np
import pytorch_lightning as pl
import torch
import torchvision
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2

from hashnet.data.arguments import check_arguments
from hashnet.data.builders.atomic import MARKER, built_recipe
from hashnet.data.cache import ImageCache, fingerprint
from hashnet.data.data_folder import build_into, check_data_folder
from hashnet.data.dataset import BadImageError, ImageDataset, Unreadable, collate_readable
from hashnet.data.heldout import heldout_rows
from hashnet.data.images import DECODER, normalize_pixels, read_image, resize_steps, transforms
from hashnet.data.lists import ImageList, ListFileError, read_list, resolve_paths
from hashnet.data.sampling import ResumableSampler, SeededSamples
from hashnet.data.views import Views, contrastive_transform
from hashnet.utils.errors import ConfigError, UserError

__all__ = ["BadImageError", "HashDataModule", "ImageDataset", "ImageList", "ListFileError",
           "MissingImagesError", "collate_readable", "normalize_pixels", "read_image", "read_list",
           "resolve_paths", "transforms"]

SPLITS = ("train", "query", "database")
SHOWN_MISSING = 5  # missing images quoted in the error; the count covers all of them

log = logging.getLogger(__name__)


class MissingImagesError(UserError, FileNotFoundError):
    """Images named by the lists are absent on disk; raised once, counting all of them."""


class HashDataModule(pl.LightningDataModule):
    """Train, query (list ``test.txt``) and database splits of a list-file dataset.

    The arguments are configs/base/dataset.yaml's keys (their defaults and reasons are there), checked here.
    root: folder for relative list names and image paths; builder: a registered dataset (a name, or
    {name: ..., options}: hashnet.data.builders) that prepare_data builds into root when its lists are absent;
    topk, ties, empty_queries: the benchmark's mAP protocol (hashnet.data.protocol), which the model's
    evaluation takes from the dataset config (train.yaml's model section); multi_label: whether a row may hold several
    labels (a training row with several is refused otherwise). on_bad_image: "error" or "skip".
    Protocol options (both off = the original lists as they are): drop_unlabeled leaves out train
    and query rows with no label; exclude_queries_from_database leaves out database rows whose image
    is a query (the strict protocol). What they leave out is logged and counted in `removed`.
    seed: the training order and crops are a function of (seed, epoch, step) (hashnet.data.sampling).
    views: training samples of that many augmented views each (count, 3, H, W) (hashnet.data.views), for a method that
    asks for them (HashMethod.views; build_datamodule passes it); 1: the usual train transform.
    normalize_on_device: batches hold uint8 pixels that HashNet.forward normalises on the device
    (False: workers yield normalised float32). cache: decode and resize each split once into
    cache_dir (default root/cache), see :mod:`hashnet.data.cache`; built by prepare_data, which
    Lightning runs on one process per node, and memory-mapped by every rank.
    """

    def __init__(self, name: str, root: str | Path, num_classes: int, topk: int | None, ties: str, empty_queries: str,
                 builder: str | dict | None, multi_label: bool, train_list: str, query_list: str, database_list: str,
                 path_map: dict[str, str] | None, resize_size: int, crop_size: int, crop_scale: Sequence[float],
                 hflip: bool, batch_size: int, eval_batch_size: int, num_workers: int, val: str, val_fraction: float,
                 on_bad_image: str, drop_unlabeled: bool, exclude_queries_from_database: bool,
                 normalize_on_device: bool, cache: bool, cache_dir: str | Path | None, seed: int = 0, views: int = 1):
        super().__init__()
        check_arguments(topk=topk, ties=ties, empty_queries=empty_queries, builder=builder, resize_size=resize_size,
                        crop_size=crop_size, crop_scale=crop_scale, batch_size=batch_size,
                        eval_batch_size=eval_batch_size, num_workers=num_workers, val=val, val_fraction=val_fraction,
                        on_bad_image=on_bad_image)
        self.save_hyperparameters()
        self.val, self.val_fraction = val, val_fraction
        self.name, self.root, self.num_classes, self.topk = name, str(root), num_classes, topk
        self.multi_label = multi_label
        self.ties, self.empty_queries = ties, empty_queries
        self.list_names = {"train": train_list, "query": query_list, "database": database_list}
        self.path_map = dict(path_map) if path_map else None
        self.builder, self.on_bad_image = builder, on_bad_image
        self.drop_unlabeled, self.exclude_queries_from_database = drop_unlabeled, exclude_queries_from_database
        self.removed: dict[str, int] = {}  # split -> rows left out by the protocol options
        self.batch_size, self.eval_batch_size, self.num_workers = batch_size, eval_batch_size, num_workers
        self.seed = seed
        self.resize_size, self.use_cache = resize_size, cache
        self.cache_dir = Path(cache_dir) if cache_dir else Path(self.root) / "cache"
        self._transforms = {train: transforms(resize_size, crop_size, crop_scale, hflip, train,
                                              normalize=not normalize_on_device)
                            for train in (True, False)}
        if views > 1:  # a method that trains on several views of each image (hashnet.data.views)
            self._transforms[True] = Views(contrastive_transform(resize_size, crop_size, not normalize_on_device), views)
        self._lists: dict[str, ImageList] = {}
        self.unlabeled_rows: dict[str, int] = {}  # split -> rows with no label (counted at setup, warned about)
        self._warned_unlabeled = False
        self._datasets: dict[tuple[str, bool], ImageDataset] = {}

    def list_path(self, split: str) -> Path:
        """The list file of split ("train", "query" or "database")."""
        return Path(self.root) / self.list_names[split]

    def prepare_data(self) -> None:
        """Build the builder's dataset into root when a builder is set and its lists are absent (or were built:
        the builder checks that they were built with these settings), then, with cache=True, the cache of every
        split whose list or settings changed."""
        check_data_folder(Path(self.root))
        built = (self.list_path("train").parent / MARKER).is_file()
        if self.builder and (built or not all(self.list_path(split).is_file() for split in SPLITS)):
            build_into(self.builder, self.root, self.name)
        missing = [self.list_names[split] for split in SPLITS if not self.list_path(split).is_file()]
        if missing and not self.builder:
            raise ListFileError(self.root, None, f"dataset={self.name} has no list files {', '.join(missing)} here",
                                "missing", "put them there: the paper's datasets take the original HashNet "
                                "release's lists (github.com/thuml/HashNet, docs/paper.md), your own one '<image path> "
                                "<0/1 labels>' line per image; then check them with python scripts/check_lists.py "
                                f"dataset={self.name}; or pass dataset.root=<the folder that holds them>")
        if self.use_cache:
            for split in SPLITS:
                self.image_cache(split)

    @property
    def unseen_classes(self) -> tuple[int, ...] | None:
        """The classes the built lists hold out of training, as their build recorded them (None: none)."""
        record = built_recipe(Path(self.root))
        return tuple(record["unseen"]) if record and record.get("unseen") else None

    def image_cache(self, split: str) -> ImageCache:
        """The cache of split's resized images, built first if it is missing or stale."""
        self._load((split,))
        image_list = self._lists[split]
        settings = {"resize_size": self.resize_size, "torchvision": torchvision.__version__, "decoder": DECODER}
        cache = ImageCache(self.cache_dir, split, fingerprint(self.list_path(split), image_list.paths, settings))
        if not cache.exists():
            resized = ImageDataset(image_list, v2.Compose([*resize_steps(self.resize_size), v2.ToPureTensor()]),
                                       self.on_bad_image)
            loader = DataLoader(resized, batch_size=64, num_workers=self.num_workers, collate_fn=list)
            samples = (sample for batch in loader for sample in batch)
            cache.build((None if isinstance(sample, Unreadable) else sample[0] for sample in samples),
                        image_list.paths, self.resize_size, self.list_path(split))
        return cache

    def setup(self, stage: str | None = None) -> None:
        """Read the lists the stage needs and check that every image they name exists.

        Fitting is followed by the test on query and database, so "fit" checks all three splits at once (and
        the held-out validation rows with val=heldout): one MissingImagesError counts every missing image
        before the first step.
        """
        fit = (*SPLITS, "val") if self.val == "heldout" else SPLITS
        self._load(("query", "database") if stage == "test" else fit)
        if stage in (None, "fit"):
            self._check_training_list()

    def _check_training_list(self) -> None:
        """ConfigError when the training list holds less than one batch for every process; a warning (once) counting
        the training rows with no label, which every pairwise loss takes as dissimilar to everything."""
        train = self._lists["train"]
        world = self.trainer.world_size if self.trainer is not None else 1
        if len(train) < self.batch_size * world:
            fits = len(train) // world // 2 * 2  # even: HashNet's two streams
            processes = f" x {world} processes" if world > 1 else ""
            fix = f"pass dataset.batch_size={fits}" if fits >= 2 else "a batch needs 2 images (a pair) on every process"
            raise ConfigError(f"dataset.batch_size={self.batch_size}: the training list {train.source} has "
                              f"{len(train)} images, less than one batch of {self.batch_size}{processes} -- {fix}")
        unlabeled = np.flatnonzero(~train.labels.any(axis=1))
        self.unlabeled_rows = {"train": len(unlabeled)}
        if len(unlabeled) and self.labelled() and not self._warned_unlabeled:
            self._warned_unlabeled = True
            shown = ", ".join(train.where(i) for i in unlabeled[:SHOWN_MISSING])
            log.warning("%d of %d training rows have no label (%s%s): every pairwise loss takes them as dissimilar "
                        "to every image -- dataset.drop_unlabeled=true leaves them out", len(unlabeled), len(train),
                        shown, ", ..." if len(unlabeled) > SHOWN_MISSING else "")

    def labelled(self, split: str = "train") -> bool:
        """Whether split's list holds any label (a folder without labels holds none: hashnet.data.builders.folder);
        read on first use, and kept for the stage that reads it next."""
        self._load((split,))
        return bool(self._lists[split].labels.any())

    def _load(self, splits: Sequence[str]) -> None:
        """Read the lists of splits not read yet; one MissingImagesError covers all of them."""
        lists = {split: self.read_split(split) for split in splits if split not in self._lists}
        missing = [(image_list, i) for image_list in lists.values()
                   for i, path in enumerate(image_list.paths) if not os.path.isfile(path)]
        if missing:
            total = sum(len(image_list) for image_list in lists.values())
            shown = "".join(f"\n  {image_list.paths[i]}  ({image_list.where(i)}: "
                            f"'{image_list.raw_paths[i]}')" for image_list, i in missing[:SHOWN_MISSING])
            raise MissingImagesError(
                f"{len(missing)} of {total} images named by the lists are missing, e.g.:{shown}\n-- set "
                f"dataset.root (now '{self.root}') to the folder relative paths start from, or "
                "dataset.path_map={old_prefix: new_prefix} to rewrite absolute paths")
        self._lists.update(lists)

    def read_split(self, split: str) -> ImageList:
        """split's list as parsed, less the rows the protocol options leave out (logged); with val=heldout,
        "val" is the held-out part of the training list and "train" the rest (hashnet.data.heldout)."""
        if split == "val" or (split == "train" and self.val == "heldout"):
            train = self.read_list_file("train")
            held = heldout_rows(train.labels, self.val_fraction, self.seed)
            return train.take(held if split == "val" else ~held)
        return self.read_list_file(split)

    def read_list_file(self, split: str) -> ImageList:
        """split's list file as parsed, less the rows the protocol options leave out (logged)."""
        image_list = read_list(self.list_path(split), self.num_classes, self.root, self.path_map)
        if not self.multi_label and len(image_list) and image_list.labels.sum(axis=1).max() > 1:
            row = int(np.argmax(image_list.labels.sum(axis=1) > 1))
            raise ListFileError(image_list.source, int(image_list.lines[row]), "several labels on one row of a "
                                "single-label dataset", image_list.raw_paths[row],
                                f"set dataset.multi_label=true if {self.name} is multi-label")
        keep, why = None, ""
        if self.drop_unlabeled and split in ("train", "query"):
            keep, why = image_list.labels.any(axis=1), "rows with no label (drop_unlabeled=true)"
        elif self.exclude_queries_from_database and split == "database":
            queries = set(read_list(self.list_path("query"), self.num_classes, self.root, self.path_map).paths)
            keep = np.array([path not in queries for path in image_list.paths], dtype=bool)
            why = "query images (exclude_queries_from_database=true)"
        if keep is None:
            return image_list
        self.removed[split] = len(image_list) - int(keep.sum())
        log.info("%s: left out %d of %d %s from %s", self.name, self.removed[split], len(image_list), why,
                 image_list.source)
        return image_list.take(keep)

    def dataset(self, split: Literal["train", "query", "database"],
                train_transform: bool = False) -> ImageDataset:
        """The dataset of split with the train or eval transform (read on first use)."""
        key = (split, train_transform)
        if key not in self._datasets:
            self._load((split,))
            cache = self.image_cache(split) if self.use_cache and split in SPLITS else None
            self._datasets[key] = ImageDataset(self._lists[split], self._transforms[train_transform],
                                                   self.on_bad_image, cache)
        return self._datasets[key]

    def _loader(self, dataset: Dataset, batch_size: int, sampler: ResumableSampler | None = None) -> DataLoader:
        """A loader over dataset in order, or in the sampler's order (training)."""
        return DataLoader(dataset, batch_size=batch_size, sampler=sampler, drop_last=sampler is not None,
                          num_workers=self.num_workers, persistent_workers=self.num_workers > 0,
                          pin_memory=torch.cuda.is_available(),
                          collate_fn=collate_readable if self.on_bad_image == "skip" else None)

    def train_dataloader(self) -> DataLoader:
        """Shuffled full batches (the loss needs full halves), resumable at the trainer's global step."""
        data = self.dataset("train", train_transform=True)
        if len(data) < self.batch_size:
            raise ConfigError(f"dataset.batch_size={self.batch_size}: {self.list_path('train')} has {len(data)} "
                              "images, less than one batch -- lower dataset.batch_size")
        trainer = self.trainer
        sampler = ResumableSampler(data, self.batch_size, self.seed, trainer.global_step if trainer else 0,
                                   trainer.world_size if trainer else 1, trainer.global_rank if trainer else 0)
        return self._loader(SeededSamples(data), self.batch_size, sampler)

    def test_dataloader(self) -> list[DataLoader]:
        """[query loader, database loader], in list order."""
        return [self.split_dataloader("query"), self.split_dataloader("database")]

    def val_dataloader(self) -> list[DataLoader]:
        """Validation queries and database: the test protocol's (val="test", the original's), or the
        held-out training rows against the rest of the training list (val="heldout")."""
        if self.val == "heldout":
            return [self.split_dataloader("val"), self.split_dataloader("train")]
        return self.test_dataloader()

    def split_dataloader(self, split: Literal["train", "query", "database"],
                         train_transform: bool = False) -> DataLoader:
        """All of split in list order, eval_batch_size per batch, eval transform unless train_transform."""
        return self._loader(self.dataset(split, train_transform), self.eval_batch_size)

    @property
    def skipped_images(self) -> list[str]:
        """Distinct resolved paths skipped as unreadable so far, over every split."""
        return sorted({path for data in self._datasets.values() for path in data.skipped_images})

    @property
    def num_skipped(self) -> int:
        """How many distinct images were skipped as unreadable so far."""
        return len(self.skipped_images)
