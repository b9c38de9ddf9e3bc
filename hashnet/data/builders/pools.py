"""Datasets with several protocols over one pool of single-label images (CIFAR-10, Fashion-MNIST): the images are
written once into ``images/`` (listed with their labels in ``images/all.txt``), each protocol's lists into a sibling
folder, drawn per class with a seeded generator (:mod:`hashnet.data.builders.per_class`); each folder is built
atomically (:mod:`hashnet.data.builders.atomic`).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from hashnet.data.builders.atomic import build_atomically, save_pngs, write_list
from hashnet.data.builders.per_class import split_per_class
from hashnet.data.lists import read_list
from hashnet.utils.errors import ConfigError

IMAGES = "images"  # the pool's images, sibling of its protocol folders
ALL_LIST = "all.txt"  # inside images/: every image and its label, in source order


@dataclass(frozen=True)
class SplitCounts:
    """Per-class counts and which parts ("train", "rest") make up the database."""

    queries_per_class: int
    train_per_class: int
    database: tuple[str, ...]


def protocol_recipe(protocols: dict[str, SplitCounts], protocol: str, seed: int, queries_per_class: int | None,
                    train_per_class: int | None) -> tuple[SplitCounts, dict]:
    """The protocol's counts (a count given replaces its default) and the recipe recorded with its lists; an unknown
    protocol raises ConfigError naming the known ones."""
    if protocol not in protocols:
        raise ConfigError(f"protocol must be one of {list(protocols)}, got {protocol!r}")
    spec = protocols[protocol]
    spec = SplitCounts(spec.queries_per_class if queries_per_class is None else queries_per_class,
                       spec.train_per_class if train_per_class is None else train_per_class, spec.database)
    return spec, {"builder": protocol, "seed": seed, "queries_per_class": spec.queries_per_class,
                  "train_per_class": spec.train_per_class}


def protocol_lists(labels: np.ndarray, protocol: SplitCounts, seed: int, num_classes: int = 10,
                   fix: str = "rebuild the images from complete source files") -> dict[str, np.ndarray]:
    """{list file name: sorted image indices} of protocol: train.txt, test.txt (queries), database.txt.

    labels: (N,) class ids in [0, num_classes), split per class (hashnet.data.builders.per_class) into
    queries_per_class queries, the next train_per_class training images and the rest. A class too small for the
    counts raises ValueError ending with fix.
    """
    queries, train = protocol.queries_per_class, protocol.train_per_class
    parts, small = split_per_class(labels, num_classes, seed,
                                   lambda count: (queries, train, max(count - queries - train, 0)))  # rest: the others
    if small:
        raise ValueError(f"class {small[0]} has {np.count_nonzero(labels == small[0])} images, fewer than {queries} "
                         f"queries + {train} training images -- {fix}")
    named = {"train": parts["train"], "rest": parts["database"]}
    database = np.sort(np.concatenate([named[name] for name in protocol.database]))
    return {"train.txt": parts["train"], "test.txt": parts["query"], "database.txt": database}


def write_image_folder(out: Path, images: np.ndarray, labels: np.ndarray, num_classes: int) -> None:
    """Write images (N, H, W) or (N, H, W, 3) uint8 as out/NNNNN.png, listed with their one-hot
    labels (from class ids (N,)) in out/ALL_LIST."""
    names = [f"{i:05d}.png" for i in range(len(images))]
    save_pngs(out, names, images)
    write_list(out / ALL_LIST, names, np.eye(num_classes, dtype=np.uint8)[labels])


def build_protocol(root: Path, recipe: dict, images_recipe: dict, write_images: Callable[[Path], None],
                   choose: Callable[[np.ndarray], dict[str, np.ndarray]], num_classes: int,
                   keep: Sequence[str] = ()) -> None:
    """Build a protocol's lists into root over the images in root.parent / IMAGES, each folder unless done.

    write_images(folder) writes the images and ALL_LIST (:func:`write_image_folder`) when
    images_recipe's build is absent; choose(class ids (N,) of ALL_LIST's rows) gives
    {list file name: image indices}. The lists name their images ``../images/NNNNN.png``. keep: entries root
    may already hold (a source archive placed there), left beside the lists.
    """
    images = root.parent / IMAGES

    def write(out: Path) -> None:
        build_atomically(images, images_recipe, write_images)
        listed = read_list(images / ALL_LIST, num_classes)
        for list_name, index in choose(listed.labels.argmax(axis=1)).items():
            write_list(out / list_name, [f"../{IMAGES}/{listed.raw_paths[i]}" for i in index],
                       listed.labels[index])

    build_atomically(root, recipe, write, keep=keep)
