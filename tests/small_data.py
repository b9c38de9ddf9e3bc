"""Small datasets for tests that run scripts: digits list folders of a few dozen images (rows replaceable), fake
Fashion-MNIST IDX files, and image files that trouble decoders, written byte by byte: a 16-bit RGB PNG and a
decompression bomb."""
from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np

from hashnet.data.builders.fashion_mnist import (
    IMAGES_MAGIC,
    LABELS_MAGIC,
    TEST_IMAGES,
    TEST_LABELS,
    TRAIN_IMAGES,
    TRAIN_LABELS,
)

DIGITS = 10


def label_row(label: int | None) -> str:
    return " ".join("1" if i == label else "0" for i in range(DIGITS))


def write_list(path: Path, rows: list[tuple[str, int | None]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{image} {label_row(label)}\n" for image, label in rows))


def digits_rows(digits_root: Path, name: str, count: int) -> list[tuple[str, int]]:
    """The first count lines of a digits list as (absolute image path, class)."""
    rows = []
    for line in (digits_root / name).read_text().splitlines()[:count]:
        path, *bits = line.split()
        rows.append((str(digits_root / path), bits.index("1")))
    return rows


def small_lists(root: Path, digits_root: Path, train: list | None = None, query: list | None = None,
                database: list | None = None) -> Path:
    """A digits list folder of 40 training, 10 query and 50 database images (absolute paths), rows replaceable."""
    write_list(root / "train.txt", train or digits_rows(digits_root, "train.txt", 40))
    write_list(root / "test.txt", query or digits_rows(digits_root, "test.txt", 10))
    write_list(root / "database.txt", database or digits_rows(digits_root, "database.txt", 50))
    return root


def idx_bytes(magic: int, array: np.ndarray) -> bytes:
    """array (uint8) as an IDX file: big-endian magic, then each dimension as a big-endian int32, then the bytes."""
    return magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape) + array.tobytes()


def write_gz(path: Path, content: bytes) -> None:
    with gzip.open(path, "wb") as file:
        file.write(content)


def fake_fashion_mnist(folder: Path, per_class: tuple[int, int], seed: int = 0) -> dict[str, np.ndarray]:
    """Fashion-MNIST's four gzipped IDX files in folder, per_class images of each class in the train and the t10k
    file: random pixels, labels in shuffled order; returns {file name: array}."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for (images_name, labels_name), count in zip(((TRAIN_IMAGES, TRAIN_LABELS), (TEST_IMAGES, TEST_LABELS)), per_class):
        labels = rng.permutation(np.repeat(np.arange(10, dtype=np.uint8), count))
        arrays[images_name] = rng.integers(0, 256, (len(labels), 28, 28), dtype=np.uint8)
        arrays[labels_name] = labels
        write_gz(folder / images_name, idx_bytes(IMAGES_MAGIC, arrays[images_name]))
        write_gz(folder / labels_name, idx_bytes(LABELS_MAGIC, labels))
    return arrays


def png_16bit(path: Path, side: int = 32) -> Path:
    """A 16-bit RGB PNG (PIL writes 16-bit grey only) whose values ramp up to 64,491: 21 times the sample number."""
    ramp = (np.arange(side * side * 3).reshape(side, side, 3) * 21).astype(">u2")
    raw = b"".join(b"\x00" + row.tobytes() for row in ramp)
    return _png(path, side, side, 16, 2, zlib.compress(raw))


def png_bomb(path: Path, side: int = 12_000) -> Path:
    """A grey PNG of side x side black pixels: 144 million by default, over PIL's limit, in a file of about 150 KB."""
    packer, row = zlib.compressobj(9), b"\x00" * (side + 1)
    data = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    return _png(path, side, side, 8, 0, data)


def _png(path: Path, width: int, height: int, depth: int, colour: int, data: bytes) -> Path:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    header = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b""))
    return path
