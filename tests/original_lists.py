"""Small fake copies of the original HashNet lists, as users download them, for the repro tests.

Images are tiny generated files under <root>/images/; the lists name them as the originals do:
through the authors' absolute prefix, or relative to another working folder.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

AUTHOR_PREFIX = "/home/author/dataset/{name}/"  # absolute paths of the authors' machine
RELATIVE_PREFIX = "./data/{name}/"  # relative to the original project's working folder


@dataclass(frozen=True)
class FakeDataset:
    """Where the fake copy lives and what its lists hold."""
    root: Path
    prefix: str          # how the lists spell the folder holding images/
    width: int
    train_unlabeled: int
    query_unlabeled: int
    queries_in_database: int


def write_lists(root: Path, name: str, width: int, prefix: str, *, one_hot: bool = False, train: int = 8,
                query: int = 4, database: int = 10, unlabeled: int = 0, queries_in_database: int = 0,
                size: int = 16, suffix: str = ".png", seed: int = 0) -> FakeDataset:
    """Write images and train/test/database lists in the original format under root/<name>.

    Labels are `width` wide: one-hot (ImageNet) or random multi-hot with at least one label; the last
    `unlabeled` rows of train and of test are all zero (NUS-WIDE-81). The first `queries_in_database`
    queries are also listed in the database (COCO). Images are size x size RGB, PNG or JPEG by suffix.
    """
    rng = np.random.default_rng(seed)
    root = root / name
    (root / "images").mkdir(parents=True)
    prefix = prefix.format(name=name)
    count = train + query + database
    for i in range(count):
        pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / "images" / f"{i:04d}{suffix}")
    if one_hot:
        labels = np.eye(width, dtype=int)[rng.integers(0, width, count)]
    else:
        labels = (rng.random((count, width)) < 3 / width).astype(int)
        labels[np.arange(count), rng.integers(0, width, count)] = 1  # at least one label each
    labels[train - unlabeled:train] = 0
    labels[train + query - unlabeled:train + query] = 0

    def line(i: int) -> str:
        return f"{prefix}images/{i:04d}{suffix} " + " ".join(map(str, labels[i])) + "\n"

    query_ids = list(range(train, train + query))
    database_ids = query_ids[:queries_in_database] + [train + query + i for i in range(database)]
    (root / "train.txt").write_text("".join(map(line, range(train))))
    (root / "test.txt").write_text("".join(map(line, query_ids)))
    (root / "database.txt").write_text("".join(map(line, database_ids)))
    return FakeDataset(root, prefix, width, unlabeled, unlabeled, queries_in_database)


# The original datasets' list formats: (config name, label width, one-hot, how paths are written).
FORMATS = {
    "imagenet": (100, True, AUTHOR_PREFIX),
    "nus_wide": (21, False, RELATIVE_PREFIX),
    "nus_wide_81": (81, False, AUTHOR_PREFIX),
    "coco": (80, False, AUTHOR_PREFIX),
}


def write_original(root: Path, name: str, **options) -> FakeDataset:
    """write_lists with the format of the original `name` dataset (see FORMATS)."""
    width, one_hot, prefix = FORMATS[name]
    return write_lists(root, name, width, prefix, one_hot=one_hot, **options)
