"""Embedded datasets built from scikit-learn's bundled 8x8 digits (no download needed).

``digits``: the 1797 digits as 32x32 grey PNGs with one-hot labels over 10 classes.
``digits_multi``: 2x2 mosaics (64x64) of those digits showing 1 to 3 distinct classes,
labelled with the multi-hot set of the classes shown, a small stand-in for multi-label sets
such as NUS-WIDE or COCO: about 36% of mosaic pairs share a class (similar pairs are neither
rare nor the rule), so Hamming ranking has room to beat chance.

Both write ``train.txt``, ``test.txt`` (queries) and ``database.txt`` with paths relative to
the dataset folder, in the list format that :func:`hashnet.data.read_list` reads. Builds are
seeded, idempotent and atomic (:func:`hashnet.data.builders.atomic.build_atomically`): an interrupted build
leaves nothing behind and is redone, and two processes racing on the same folder both end
with one complete copy.
"""
from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits

from hashnet.data.builders import register
from hashnet.data.builders.atomic import build_atomically, save_pngs, write_list
from hashnet.data.builders.per_class import split_per_class

NUM_CLASSES = 10
QUERIES_PER_CLASS = 30  # 300 queries, held out of the database as in the paper's protocol
TRAIN_PER_CLASS = 100  # 1000 training images, drawn from the database
CELL = 32  # digits are upscaled from 8x8 so that conv stems have more than a few pixels
MULTI_QUERIES = 300
MULTI_DATABASE = 2000
MULTI_TRAIN = 1000  # the first database mosaics: train inside database, like the paper's lists
MULTI_MAX_CLASSES = 3  # classes a mosaic shows: 1..3 of 10 makes ~36% of pairs similar


def split_digits(labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seeded per-class split of digit indices (hashnet.data.builders.per_class).

    labels: (N,) int class ids in [0, NUM_CLASSES). Returns sorted index arrays
    (query, train, database): QUERIES_PER_CLASS queries per class, TRAIN_PER_CLASS train
    images per class drawn from the non-queries, and database = every non-query.
    """
    parts, _ = split_per_class(labels, NUM_CLASSES, seed,  # no class is too small: each holds over 170 digits
                               lambda count: (QUERIES_PER_CLASS, TRAIN_PER_CLASS, count - QUERIES_PER_CLASS))
    return parts["query"], parts["train"], parts["database"]


def digit_images() -> tuple[np.ndarray, np.ndarray]:
    """All digits as (N, CELL, CELL) uint8 grey images (white on black) and (N,) int labels."""
    digits = load_digits()
    images = np.empty((len(digits.images), CELL, CELL), np.uint8)
    for i, small in enumerate(digits.images):  # intensities 0..16
        grey = Image.fromarray(np.round(small * (255 / 16)).astype(np.uint8))
        images[i] = np.asarray(grey.resize((CELL, CELL), Image.BILINEAR))
    return images, digits.target


def mosaic(tiles: np.ndarray) -> np.ndarray:
    """Arrange tiles (M, 4, H, W) row-major into 2x2 mosaics (M, 2H, 2W)."""
    m, _, h, w = tiles.shape
    return tiles.reshape(m, 2, 2, h, w).transpose(0, 1, 3, 2, 4).reshape(m, 2 * h, 2 * w)


def _build_single(folder: Path, images: np.ndarray, labels: np.ndarray, seed: int) -> None:
    """Write every digit once under images/ and list the seeded splits."""
    query, train, database = split_digits(labels, seed)
    (folder / "images").mkdir()
    names = [f"images/{i:04d}.png" for i in range(len(images))]
    save_pngs(folder, names, images)
    onehot = np.eye(NUM_CLASSES, dtype=np.uint8)[labels]
    for list_name, index in (("train.txt", train), ("test.txt", query), ("database.txt", database)):
        write_list(folder / list_name, [names[i] for i in index], onehot[index])


def _draw_mosaics(rng: np.random.Generator, pool: np.ndarray, count: int, images: np.ndarray,
                  labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """count mosaics of 4 distinct digits from pool: images (count, 2*CELL, 2*CELL), multi-hot (count, 10).

    Each mosaic shows c distinct classes, c uniform in [1, MULTI_MAX_CLASSES]: every class at
    least once, the other cells repeat one of them, in a random order.
    """
    by_class = [pool[labels[pool] == label] for label in range(NUM_CLASSES)]
    picks = np.empty((count, 4), np.int64)
    for row in picks:
        classes = rng.choice(NUM_CLASSES, size=rng.integers(1, MULTI_MAX_CLASSES + 1), replace=False)
        cells = rng.permutation(np.concatenate([classes, rng.choice(classes, size=4 - len(classes))]))
        for label in np.unique(cells):
            slots = cells == label
            row[slots] = rng.choice(by_class[label], size=slots.sum(), replace=False)
    multi_hot = np.zeros((count, NUM_CLASSES), np.uint8)
    multi_hot[np.arange(count)[:, None], labels[picks]] = 1
    return mosaic(images[picks]), multi_hot


def _build_multi(folder: Path, images: np.ndarray, labels: np.ndarray, seed: int) -> None:
    """Queries from query digits only, database from the other digits, train = database head."""
    query_digits, _, database_digits = split_digits(labels, seed)
    rng = np.random.default_rng(seed)
    lists = {}
    for split, pool, count in (("query", query_digits, MULTI_QUERIES),
                               ("database", database_digits, MULTI_DATABASE)):
        (folder / split).mkdir()
        tiles, multi_hot = _draw_mosaics(rng, pool, count, images, labels)
        names = [f"{split}/{i:04d}.png" for i in range(count)]
        save_pngs(folder, names, tiles)
        lists[split] = names, multi_hot
    names, multi_hot = lists["database"]
    write_list(folder / "test.txt", *lists["query"])
    write_list(folder / "database.txt", names, multi_hot)
    write_list(folder / "train.txt", names[:MULTI_TRAIN], multi_hot[:MULTI_TRAIN])


def build_digits(root: str | Path, multi: bool = False, seed: int = 0) -> None:
    """Build the ``digits`` (or, with multi, ``digits_multi``) dataset into root unless done.

    root must be absent, an empty folder, or a finished build of the same recipe (then
    nothing happens). Writes PNGs, train.txt / test.txt / database.txt and a marker file.
    """
    root = Path(root)
    recipe = {"builder": "digits_multi" if multi else "digits", "seed": seed}
    if multi:
        recipe["classes_per_mosaic"] = [1, MULTI_MAX_CLASSES]  # tells this layout from earlier ones

    def write(folder: Path) -> None:
        images, labels = digit_images()
        (_build_multi if multi else _build_single)(folder, images, labels, seed)

    build_atomically(root, recipe, write)


register("digits", partial(build_digits, multi=False))
register("digits_multi", partial(build_digits, multi=True))
