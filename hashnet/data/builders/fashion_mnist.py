"""Fashion-MNIST under the protocols ``fashion_mnist`` and ``fashion_mnist_unseen``.

Fashion-MNIST (Xiao, Rasul and Vollgraf, 2017; github.com/zalandoresearch/fashion-mnist): 70,000
real 28x28 grey photos of Zalando products in 10 classes, 7,000 a class, shipped as four gzipped
IDX files (FILES). They are read from raw_dir: by default Debian's package ``dataset-fashion-mnist``
(DEBIAN_DIR) when it holds them, else ``<data_dir>/fashion_mnist/raw/``, where missing files are
downloaded with torchvision's downloader (its mirrors and md5s). Both files' images are merged
(train-* then t10k-*, 70,000) and each class is split with a seeded generator
(:func:`hashnet.data.builders.per_class.split_per_class`) into 100 queries, 500 training images and the rest:

- ``fashion_mnist``: 100 queries and 500 training images a class (1,000 / 5,000); database = the
  other 64,000 images (CIFAR-10's ``cifar10`` protocol on the merged pool).
- ``fashion_mnist_unseen``: retrieval of classes never seen in training (Sablayrolles, Douze,
  Usunier and Jegou, "How should we evaluate supervised hashing?", ICASSP 2017): training = the 500
  training images of each seen class; queries = the 100 queries of each unseen class, database =
  every other image of the unseen classes. The unseen classes are a setting, by default
  :func:`default_unseen_classes` (three, drawn with seed 0).

Like CIFAR-10 (:func:`hashnet.data.builders.pools.build_protocol`), the 70,000 images are written once as
grey PNGs into ``<data_dir>/fashion_mnist/images/`` (listed with their labels in ``images/all.txt``)
and shared by the protocols; a protocol's folder holds its train.txt / test.txt / database.txt
with paths ``../images/NNNNN.png``, one-hot labels 10 wide. Both are built atomically with a
marker recording their settings, and a folder built with other settings is refused.
"""
from __future__ import annotations

import gzip
import logging
import zlib
from functools import partial
from pathlib import Path
from typing import Sequence

import numpy as np
from torchvision.datasets import FashionMNIST

from hashnet.data.builders import pools, register
from hashnet.data.builders.fetch import Download, download_missing, fetch
from hashnet.data.builders.pools import SplitCounts, build_protocol, protocol_recipe, write_image_folder
from hashnet.utils.errors import ConfigError, UserError

NUM_CLASSES = 10
SIDE = 28  # images are 28 x 28 grey
TRAIN_IMAGES, TRAIN_LABELS = "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"
TEST_IMAGES, TEST_LABELS = "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"
FILES = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)
PAIRS = ((TRAIN_IMAGES, TRAIN_LABELS), (TEST_IMAGES, TEST_LABELS))  # merged in this order
MD5 = dict(FashionMNIST.resources)  # of the gzipped files as torchvision downloads them
SOURCES = {name: [(f"{mirror}{name}", MD5[name]) for mirror in FashionMNIST.mirrors] for name in FILES}
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")  # where `apt-get install dataset-fashion-mnist` puts FILES
IMAGES_MAGIC = 0x00000803  # IDX header: 0x00 0x00, type 0x08 (unsigned byte), 3 dimensions (n, 28, 28)
LABELS_MAGIC = 0x00000801  # the same with 1 dimension (n,)
IMAGES_RECIPE = {"builder": "fashion_mnist_images", "files": list(FILES)}
UNSEEN = "fashion_mnist_unseen"
UNSEEN_COUNT = 3  # classes held out of training by default
PROTOCOLS = {"fashion_mnist": SplitCounts(100, 500, ("rest",)),
             UNSEEN: SplitCounts(100, 500, ("train", "rest"))}  # then restricted to the unseen classes
CLASS_NAMES = tuple(FashionMNIST.classes)  # T-shirt/top, Trouser, ..., Ankle boot: for messages
APT_FIX = "apt-get install dataset-fashion-mnist"

log = logging.getLogger(__name__)


class IdxFileError(UserError, ValueError):
    """A Fashion-MNIST IDX file is unreadable or not in the expected format."""


class MissingFilesError(UserError, FileNotFoundError):
    """Fashion-MNIST's files are neither in the raw folder nor downloadable."""


def default_unseen_classes(seed: int = 0, count: int = UNSEEN_COUNT) -> list[int]:
    """The default unseen classes of fashion_mnist_unseen: count of the 10 class ids, drawn without
    replacement by numpy's generator seeded with seed; sorted ([5, 6, 9] for seed 0: Sandal, Shirt, Ankle boot)."""
    return sorted(np.random.default_rng(seed).choice(NUM_CLASSES, size=count, replace=False).tolist())


def default_raw_dir(folder: Path) -> Path:
    """Where the IDX files are read from by default: DEBIAN_DIR if it holds all four FILES, else folder/raw
    (folder: the Fashion-MNIST folder, ``<data_dir>/fashion_mnist``)."""
    if all((DEBIAN_DIR / name).is_file() for name in FILES):
        return DEBIAN_DIR
    return Path(folder) / "raw"


def _bad_file(path: Path, what: str) -> IdxFileError:
    return IdxFileError(f"{path}: {what} -- replace it with the original {path.name}: `{APT_FIX} --reinstall` "
                        f"restores {DEBIAN_DIR}/, or delete it and it is downloaded again")


def read_idx(path: Path, magic: int, dims: tuple[int, ...]) -> np.ndarray:
    """The uint8 array (n, *dims) of a gzipped IDX file.

    The file is a big-endian header (magic: 0x0000 then type 0x08 for unsigned bytes and the number of
    dimensions; then each dimension as a 4-byte integer) followed by the bytes, row-major. magic is the
    expected one (IMAGES_MAGIC or LABELS_MAGIC), dims the expected dimensions after the first.
    IdxFileError names the file, what is wrong and the fix.
    """
    path = Path(path)
    try:
        with gzip.open(path, "rb") as file:
            data = file.read()
    except (OSError, EOFError, zlib.error) as err:
        raise _bad_file(path, f"cannot read it as a gzipped IDX file ({type(err).__name__}: {err})") from err
    ndim = 1 + len(dims)
    header = 4 + 4 * ndim
    if len(data) < 4 or int.from_bytes(data[:4], "big") != magic:
        found = f"0x{int.from_bytes(data[:4], 'big'):08x}" if len(data) >= 4 else f"{len(data)} bytes"
        raise _bad_file(path, f"its IDX magic number is {found}, expected 0x{magic:08x} "
                        f"(unsigned bytes, {ndim} dimension{'s' if ndim > 1 else ''})")
    if len(data) < header:
        raise _bad_file(path, f"its header is cut short: {len(data)} bytes, expected {header}")
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    if shape[1:] != dims:
        raise _bad_file(path, f"its items are {'x'.join(map(str, shape[1:]))}, expected {'x'.join(map(str, dims))}")
    if len(data) - header != int(np.prod(shape)):
        raise _bad_file(path, f"it holds {len(data) - header} bytes after the header, which announces "
                        f"{int(np.prod(shape))} ({' x '.join(map(str, shape))})")
    return np.frombuffer(data, np.uint8, offset=header).reshape(shape)


def read_pair(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images (n, 28, 28) uint8 and labels (n,) int64 in 0..9 of one images file and its labels file."""
    images = read_idx(images_path, IMAGES_MAGIC, (SIDE, SIDE))
    labels = read_idx(labels_path, LABELS_MAGIC, ())
    if len(labels) != len(images):
        raise _bad_file(labels_path, f"it holds {len(labels)} labels for the {len(images)} images of {images_path}")
    if len(labels) and labels.max() >= NUM_CLASSES:
        row = int(np.argmax(labels >= NUM_CLASSES))
        raise _bad_file(labels_path, f"label {labels[row]} of image {row} is not a class id in 0..{NUM_CLASSES - 1}")
    return images, labels.astype(np.int64)


def read_source(raw_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """All 70,000 images (N, 28, 28) uint8 and labels (N,) int64 of raw_dir's FILES: train-*, then t10k-*."""
    parts = [read_pair(Path(raw_dir) / images, Path(raw_dir) / labels) for images, labels in PAIRS]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def find_files(raw_dir: Path, download: Download | None = None) -> Path:
    """raw_dir once it holds the four FILES: missing ones are downloaded first (download(raw_dir), by default
    from torchvision's mirrors); MissingFilesError naming the files, the folder and both fixes if that fails."""
    raw_dir = Path(raw_dir)
    if raw_dir.exists() and not raw_dir.is_dir():  # e.g. one of the four files: its folder is meant
        folder = raw_dir.parent if raw_dir.name in FILES else "<the folder that holds them>"
        raise MissingFilesError(f"dataset.builder.raw_dir={raw_dir} is a file, not a folder -- pass the folder of "
                                f"the four files {', '.join(FILES)}: dataset.builder.raw_dir={folder}")

    def missing_files(missing: list[str], err: Exception) -> MissingFilesError:
        return MissingFilesError(
            f"Fashion-MNIST is missing: {', '.join(missing)} not in {raw_dir}/, and downloading failed "
            f"({type(err).__name__}: {err}) -- install Debian's package (`{APT_FIX}` puts the four files "
            f"in {DEBIAN_DIR}/, read from there when dataset.builder.raw_dir is null), or copy the four files "
            f"{', '.join(FILES)} into {raw_dir}/")

    return fetch(raw_dir, FILES, download or partial(download_missing, sources=SOURCES), missing_files)


def check_unseen(unseen: Sequence[int]) -> list[int]:
    """unseen as a sorted list of distinct class ids in 0..9 leaving at least one seen class; ConfigError otherwise."""
    values = list(unseen)
    if (not values or len(values) >= NUM_CLASSES or len(set(values)) != len(values)
            or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and 0 <= v < NUM_CLASSES
                       for v in values)):
        example = ",".join(map(str, default_unseen_classes(0)))
        raise ConfigError(f"dataset.builder.unseen_classes={values!r}: it must list 1 to {NUM_CLASSES - 1} distinct "
                          f"class ids in 0..{NUM_CLASSES - 1} -- pass e.g. dataset.builder.unseen_classes=[{example}]")
    return sorted(int(v) for v in values)


def protocol_lists(labels: np.ndarray, protocol: SplitCounts, seed: int,
                   unseen: Sequence[int] = ()) -> dict[str, np.ndarray]:
    """{list file name: sorted image indices}: train.txt, test.txt (queries), database.txt.

    labels: (N,) class ids. The per-class split of :func:`hashnet.data.builders.pools.protocol_lists`; with
    unseen classes, training keeps the seen classes' images only, queries and database the unseen ones'.
    """
    lists = pools.protocol_lists(labels, protocol, seed, num_classes=NUM_CLASSES,
                                  fix="the images folder is incomplete: delete it to rebuild it from the IDX files")
    if len(unseen):
        held = np.isin(labels, unseen)
        lists = {name: index[~held[index] if name == "train.txt" else held[index]] for name, index in lists.items()}
    return lists


def _write_images(out: Path, raw_dir: Path) -> None:
    """Write every image of raw_dir's IDX files as out/NNNNN.png (grey), listed in out/all.txt."""
    images, labels = read_source(raw_dir)
    log.info("writing %d Fashion-MNIST images from %s", len(images), raw_dir)
    write_image_folder(out, images, labels, NUM_CLASSES)


def build_fashion_mnist(root: str | Path, protocol: str = "fashion_mnist", seed: int = 0,
                        raw_dir: str | Path | None = None, unseen_classes: Sequence[int] | None = None,
                        queries_per_class: int | None = None, train_per_class: int | None = None,
                        download: Download | None = None) -> None:
    """Build protocol's lists into root (and the shared images into root's parent) unless done.

    protocol: a key of PROTOCOLS; seed: the per-class split's; raw_dir: the folder of the IDX files
    (None: :func:`default_raw_dir` of root's parent); unseen_classes: fashion_mnist_unseen's unseen class ids
    (None: :func:`default_unseen_classes` of seed 0); queries_per_class / train_per_class default to the
    protocol's (100 / 500). download(folder) fetches missing files into raw_dir (default: from
    torchvision's mirrors). root must be absent, empty, or a finished build of the same settings;
    a build with other settings raises ValueError naming the folder to delete.
    """
    spec, recipe = protocol_recipe(PROTOCOLS, protocol, seed, queries_per_class, train_per_class)
    root = Path(root)
    folder = root.parent
    held: list[int] = []
    if protocol == UNSEEN:
        held = check_unseen(default_unseen_classes(0) if unseen_classes is None else unseen_classes)
        recipe["unseen"] = held
        log.info("%s: unseen classes %s (%s)", protocol, held, ", ".join(CLASS_NAMES[c] for c in held))
    elif unseen_classes is not None:
        raise ConfigError(f"dataset.builder.unseen_classes={list(unseen_classes)!r} is a setting of {UNSEEN} only, "
                          f"not of {protocol} -- leave it null, or pick dataset={UNSEEN}")

    def write_images(out: Path) -> None:
        _write_images(out, find_files(Path(raw_dir) if raw_dir else default_raw_dir(folder), download))

    build_protocol(root, recipe, IMAGES_RECIPE, write_images, lambda labels: protocol_lists(labels, spec, seed, held),
                   NUM_CLASSES)


for _protocol in PROTOCOLS:
    register(_protocol, partial(build_fashion_mnist, protocol=_protocol))
