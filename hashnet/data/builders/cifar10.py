"""CIFAR-10 under the three deep-hashing protocols ``cifar10``, ``cifar10_1`` and ``cifar10_2``.

All 60,000 images of the official python archive (``data_batch_1..5`` then ``test_batch``) are
merged and each class is shuffled with a seeded generator; its first queries_per_class images
are queries, the next train_per_class training images, the others the rest. Per protocol
(DeepHash-pytorch's three CIFAR-10 settings):

- ``cifar10``: 100 queries and 500 training images a class; database = the rest (54,000).
- ``cifar10_1``: the same queries and training images; database = training + rest (59,000),
  DPSH's protocol.
- ``cifar10_2``: 1,000 queries and 5,000 training images a class; database = training (50,000).

The CIFAR-10 folder is the parent of a protocol's root (``data/cifar10/`` for
``data/cifar10/cifar10_1``): it holds the archive (``cifar-10-python.tar.gz`` or its extracted
``cifar-10-batches-py/``) and ``images/``, the 60,000 PNGs written once for all protocols with
``images/all.txt`` listing them; a protocol's root holds its train.txt / test.txt /
database.txt with paths ``../images/NNNNN.png``. Both are built atomically with a marker
(:mod:`hashnet.data.builders.pools`). The archive is read with pickle here, not with torchvision's dataset
class, whose checksums a hand-placed copy may not match; only the download uses torchvision.
"""
from __future__ import annotations

import logging
import pickle
import tarfile
import zlib
from functools import partial
from pathlib import Path
from typing import IO, Iterator, Sequence

import numpy as np
from torchvision.datasets import CIFAR10

from hashnet.data.builders import pools, register
from hashnet.data.builders.fetch import Download, download_missing, fetch
from hashnet.data.builders.pools import SplitCounts, build_protocol, protocol_recipe, write_image_folder
from hashnet.utils.errors import UserError

NUM_CLASSES = 10
SIDE = 32  # images are 32 x 32 RGB
ARCHIVE = CIFAR10.filename  # cifar-10-python.tar.gz
EXTRACTED = CIFAR10.base_folder  # cifar-10-batches-py, the archive's one folder
BATCHES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch")
URL = CIFAR10.url  # https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz
SOURCES = {ARCHIVE: [(URL, CIFAR10.tgz_md5)]}  # md5-checked by torchvision's downloader
IMAGES_RECIPE = {"builder": "cifar10_images", "batches": list(BATCHES)}

log = logging.getLogger(__name__)


PROTOCOLS = {"cifar10": SplitCounts(100, 500, ("rest",)),
             "cifar10_1": SplitCounts(100, 500, ("train", "rest")),
             "cifar10_2": SplitCounts(1000, 5000, ("train",))}


class ArchiveError(UserError, ValueError):
    """The CIFAR-10 archive or one of its batch files is unreadable or not in the expected format."""


class ArchiveMissingError(UserError, FileNotFoundError):
    """The CIFAR-10 archive is in none of the folders looked in, and could not be downloaded."""


def find_archive(folders: Sequence[Path], download: Download | None = None) -> Path:
    """The extracted folder or the archive in the first of folders that holds one, else the archive downloaded
    into the last of them (download(folder), by default from URL); ArchiveMissingError naming every folder looked
    in, what to fetch and where to put it if that fails."""
    for folder in folders:
        for candidate in (folder / EXTRACTED, folder / ARCHIVE):
            if candidate.exists():
                return candidate
    folder = folders[-1]
    looked = " or ".join(str(f) for f in folders)

    def missing(_: list[str], err: Exception) -> ArchiveMissingError:
        return ArchiveMissingError(
            f"CIFAR-10 is missing: neither {ARCHIVE} nor its extracted {EXTRACTED}/ is in {looked}, and "
            f"downloading it failed ({type(err).__name__}: {err}) -- download {URL} and put {ARCHIVE} "
            f"into {folder}/")

    return fetch(folder, [ARCHIVE], download or partial(download_missing, sources=SOURCES), missing) / ARCHIVE


def _decode_batch(file: IO[bytes], where: str) -> tuple[np.ndarray, np.ndarray]:
    """One pickled batch -> images (n, 32, 32, 3) uint8 RGB and labels (n,) int64.

    b"data" rows are 3,072 bytes: the red plane (32 x 32, row-major), then green, then blue.
    """
    entry = pickle.load(file, encoding="bytes")
    if not isinstance(entry, dict) or b"data" not in entry or b"labels" not in entry:
        raise ArchiveError(f"{where}: not a CIFAR-10 batch (no b'data' and b'labels' keys)")
    data, labels = np.asarray(entry[b"data"]), np.asarray(entry[b"labels"])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * SIDE * SIDE:
        raise ArchiveError(f"{where}: b'data' is {data.dtype} {data.shape}, expected uint8 (n, 3072)")
    if labels.shape != (len(data),) or not np.isin(labels, np.arange(NUM_CLASSES)).all():
        raise ArchiveError(f"{where}: b'labels' must be {len(data)} class ids in 0..9, got shape {labels.shape}")
    return data.reshape(-1, 3, SIDE, SIDE).transpose(0, 2, 3, 1), labels.astype(np.int64)


def _open_batches(source: Path) -> Iterator[tuple[IO[bytes], str]]:
    """(file, where) of each batch in BATCHES order, from the extracted folder or the .tar.gz."""
    if source.is_dir():
        for name in BATCHES:
            with open(source / name, "rb") as file:
                yield file, str(source / name)
        return
    with tarfile.open(source, "r:gz") as tar:
        for name in BATCHES:
            member = f"{EXTRACTED}/{name}"
            try:
                file = tar.extractfile(member)
            except KeyError:
                raise ArchiveError(f"{source} has no {member}") from None
            yield file, f"{source}:{member}"


def read_archive(source: Path) -> tuple[np.ndarray, np.ndarray]:
    """All batches of source (the .tar.gz or the extracted folder) in BATCHES order:
    images (N, 32, 32, 3) uint8 RGB and labels (N,) int64."""
    fix = f"delete it and download {URL} again"
    try:
        parts = [_decode_batch(file, where) for file, where in _open_batches(source)]
    except ArchiveError as err:
        raise ArchiveError(f"{err} -- {fix}") from None
    except (OSError, EOFError, zlib.error, tarfile.TarError, pickle.UnpicklingError) as err:
        raise ArchiveError(f"cannot read CIFAR-10 from {source} ({type(err).__name__}: {err}) -- {fix}") from err
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def protocol_lists(labels: np.ndarray, protocol: SplitCounts, seed: int) -> dict[str, np.ndarray]:
    """{list file name: sorted image indices} of a CIFAR-10 protocol (:func:`hashnet.data.builders.pools.protocol_lists`)."""
    return pools.protocol_lists(labels, protocol, seed, num_classes=NUM_CLASSES,
                                 fix=f"the archive is incomplete: download {URL} again")


def _write_images(out: Path, source: Path) -> None:
    """Write every image of source (archive or extracted folder) as out/NNNNN.png, listed in out/all.txt."""
    images, labels = read_archive(source)
    log.info("writing %d CIFAR-10 images from %s", len(images), source)
    write_image_folder(out, images, labels, NUM_CLASSES)


def build_cifar10(root: str | Path, protocol: str = "cifar10", seed: int = 0,
                  queries_per_class: int | None = None, train_per_class: int | None = None,
                  download: Download | None = None) -> None:
    """Build protocol's lists into root (and the shared images into root's parent) unless done.

    protocol: a key of PROTOCOLS; queries_per_class / train_per_class default to the protocol's.
    download(folder) fetches the archive into folder when it is absent (default: from URL, with
    torchvision's downloader). root must be absent, empty, or a finished build of the same
    settings; a build with other settings raises ValueError naming the folder to delete.
    """
    spec, recipe = protocol_recipe(PROTOCOLS, protocol, seed, queries_per_class, train_per_class)
    root = Path(root)
    folder = root.parent

    # the archive may be in root (dataset.root=<it>) or in its parent (the README's): it stays where it is
    build_protocol(root, recipe, IMAGES_RECIPE, lambda out: _write_images(out, find_archive((root, folder), download)),
                   lambda labels: protocol_lists(labels, spec, seed), NUM_CLASSES, keep=(ARCHIVE, EXTRACTED))


for _protocol in PROTOCOLS:
    register(_protocol, partial(build_cifar10, protocol=_protocol))
