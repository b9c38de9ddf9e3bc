"""Fashion-MNIST protocols built from a small fake set of IDX files in the official format (never downloaded)."""
import functools
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from hashnet.data.builders import BUILDERS, Builder, fashion_mnist, fetch
from hashnet.data.builders.fashion_mnist import (
    FILES,
    IMAGES_MAGIC,
    LABELS_MAGIC,
    PROTOCOLS,
    TEST_IMAGES,
    TEST_LABELS,
    TRAIN_IMAGES,
    TRAIN_LABELS,
    IdxFileError,
    MissingFilesError,
    build_fashion_mnist,
    default_raw_dir,
    default_unseen_classes,
    protocol_lists,
    read_source,
)
from hashnet.data.lists import read_list
from hashnet.utils.errors import ConfigError

from conftest import datamodule
from small_data import fake_fashion_mnist, idx_bytes, write_gz

PER_CLASS = (8, 2)  # images of each class in the train and t10k files: 10 a class, 100 in all
QUERIES, TRAIN = 2, 4  # per class, instead of 100 and 500
UNSEEN = [5, 6, 9]  # default_unseen_classes(0)
LISTS = ("test.txt", "train.txt", "database.txt")


def no_download(folder: Path) -> None:
    raise AssertionError("tests never download")


def build(folder: Path, protocol: str, raw: Path, **kwargs) -> Path:
    build_fashion_mnist(folder / protocol, protocol, raw_dir=raw, queries_per_class=QUERIES, train_per_class=TRAIN,
                        download=no_download, **kwargs)
    return folder / protocol


def read_lists(root: Path) -> dict:
    return {name: read_list(root / name, 10, root=root) for name in LISTS}


def per_class(image_list) -> list[int]:
    return image_list.labels.sum(0).astype(int).tolist()


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> tuple[Path, dict]:
    raw = tmp_path_factory.mktemp("raw")
    return raw, fake_fashion_mnist(raw, PER_CLASS)


@pytest.fixture(scope="module")
def built(tmp_path_factory, source) -> Path:
    """The Fashion-MNIST folder with both protocols built from the fake files."""
    folder = tmp_path_factory.mktemp("data") / "fashion_mnist"
    for protocol in PROTOCOLS:
        build(folder, protocol, source[0])
    return folder


def test_default_unseen_classes_are_three_drawn_with_seed_0():
    assert default_unseen_classes() == default_unseen_classes(0) == UNSEEN  # a pure function of the seed
    assert default_unseen_classes(1) != UNSEEN and default_unseen_classes(1) == sorted(default_unseen_classes(1))
    assert len(default_unseen_classes(0, count=5)) == len(set(default_unseen_classes(0, count=5))) == 5


def test_real_counts_of_the_two_protocols():
    labels = np.random.default_rng(1).permutation(np.repeat(np.arange(10), 7000))
    sizes = {name: tuple(len(index) for index in protocol_lists(labels, PROTOCOLS[name], 0, unseen).values())
             for name, unseen in (("fashion_mnist", ()), ("fashion_mnist_unseen", UNSEEN))}  # (train, test, db)
    assert sizes == {"fashion_mnist": (5000, 1000, 64000), "fashion_mnist_unseen": (3500, 300, 20700)}


def test_fashion_mnist_counts_per_split_and_class_and_disjoint_splits(built):
    lists = read_lists(built / "fashion_mnist")
    # 10 a class: database = 10 - 2 queries - 4 training images
    assert [per_class(lists[name]) for name in LISTS] == [[QUERIES] * 10, [TRAIN] * 10, [4] * 10]
    assert all((lst.labels.sum(1) == 1).all() and lst.labels.shape[1] == 10 for lst in lists.values())  # one-hot
    assert all(path.startswith("../images/") for lst in lists.values() for path in lst.raw_paths)
    paths = {name: set(lst.raw_paths) for name, lst in lists.items()}
    assert not paths["test.txt"] & paths["train.txt"] and not paths["test.txt"] & paths["database.txt"]
    assert not paths["train.txt"] & paths["database.txt"]
    assert len(paths["test.txt"] | paths["train.txt"] | paths["database.txt"]) == 100  # every image once


def test_unseen_classes_are_only_in_queries_and_database(built):
    lists = read_lists(built / "fashion_mnist_unseen")
    seen = [c for c in range(10) if c not in UNSEEN]
    counts = {name: per_class(lst) for name, lst in lists.items()}
    assert counts["train.txt"] == [0 if c in UNSEEN else TRAIN for c in range(10)]  # no unseen class in training
    assert counts["test.txt"] == [QUERIES if c in UNSEEN else 0 for c in range(10)]
    assert counts["database.txt"] == [10 - QUERIES if c in UNSEEN else 0 for c in range(10)]  # all the rest
    assert not lists["train.txt"].labels[:, UNSEEN].any() and not lists["test.txt"].labels[:, seen].any()
    paths = {name: set(lst.raw_paths) for name, lst in lists.items()}
    assert not paths["test.txt"] & paths["database.txt"] and not paths["train.txt"] & paths["database.txt"]
    # one split for both protocols: the same queries and training images, restricted to their classes
    plain = {name: set(lst.raw_paths) for name, lst in read_lists(built / "fashion_mnist").items()}
    assert paths["test.txt"] < plain["test.txt"] and paths["train.txt"] < plain["train.txt"]
    assert json.loads((built / "fashion_mnist_unseen" / ".complete").read_text()) == {
        "builder": "fashion_mnist_unseen", "seed": 0, "queries_per_class": QUERIES, "train_per_class": TRAIN,
        "unseen": UNSEEN}


def test_pngs_hold_the_idx_bytes_and_labels(built, source):
    _, arrays = source
    images = np.concatenate([arrays[TRAIN_IMAGES], arrays[TEST_IMAGES]])  # train-* first, then t10k-*
    labels = np.concatenate([arrays[TRAIN_LABELS], arrays[TEST_LABELS]])
    assert len(list((built / "images").glob("*.png"))) == 100  # written once, shared by both protocols
    for lst in read_lists(built / "fashion_mnist").values():
        for path, raw, onehot in zip(lst.paths, lst.raw_paths, lst.labels):
            index = int(raw[len("../images/"):-len(".png")])
            assert onehot.argmax() == labels[index]
            with Image.open(path) as png:
                assert (png.mode, png.size) == ("L", (28, 28))
                assert np.array_equal(np.asarray(png), images[index])
    assert np.array_equal(read_source(source[0])[0], images)


def test_rebuild_is_a_no_op_and_a_fresh_build_the_same_lists(built, source, tmp_path):
    root = built / "fashion_mnist_unseen"
    stamps = [(root / name).stat().st_mtime_ns for name in (*LISTS, ".complete")]
    build(built, "fashion_mnist_unseen", source[0])
    assert [(root / name).stat().st_mtime_ns for name in (*LISTS, ".complete")] == stamps
    folder = tmp_path / "fashion_mnist"
    for protocol in PROTOCOLS:
        fresh = build(folder, protocol, source[0])
        assert all((fresh / name).read_text() == (built / protocol / name).read_text() for name in LISTS)
    build_fashion_mnist(folder / "seed1", seed=1, raw_dir=source[0], queries_per_class=QUERIES, train_per_class=TRAIN,
                        download=no_download)
    assert (folder / "seed1" / "test.txt").read_text() != (folder / "fashion_mnist" / "test.txt").read_text()
    assert sorted(p.name for p in folder.iterdir()) == ["fashion_mnist", "fashion_mnist_unseen", "images", "seed1"]


def test_other_settings_are_refused_naming_the_folder_to_delete(built, source):
    root = built / "fashion_mnist_unseen"
    with pytest.raises(ValueError, match=f"delete {root} to rebuild"):
        build(built, "fashion_mnist_unseen", source[0], unseen_classes=[0, 1])
    with pytest.raises(ValueError, match="already holds"):
        build_fashion_mnist(root, "fashion_mnist", raw_dir=source[0], queries_per_class=QUERIES,
                            train_per_class=TRAIN, download=no_download)
    with pytest.raises(ConfigError, match="protocol must be one of"):
        build_fashion_mnist(built / "mnist", "mnist")


@pytest.mark.parametrize("unseen", [[], list(range(10)), [3, 3], [10], [-1], [1.5], [True]])
def test_bad_unseen_classes_are_refused(built, source, unseen):
    with pytest.raises(ConfigError, match=r"dataset.builder.unseen_classes=.* -- pass e.g. dataset.builder.unseen_classes=\[5,6,9]$"):
        build(built, "fashion_mnist_unseen", source[0], unseen_classes=unseen)


def test_unseen_classes_belong_to_the_unseen_protocol_only(built, source):
    with pytest.raises(ConfigError, match="is a setting of fashion_mnist_unseen only"):
        build(built, "fashion_mnist", source[0], unseen_classes=UNSEEN)


def damage(raw: Path, name: str, content: bytes) -> None:
    write_gz(raw / name, content)


def idx(magic: int, array: np.ndarray) -> bytes:
    return idx_bytes(magic, np.asarray(array, dtype=np.uint8))


@pytest.mark.parametrize("name, content, what", [
    (TRAIN_IMAGES, idx(LABELS_MAGIC, np.zeros(80)), "magic number is 0x00000801, expected 0x00000803"),
    (TEST_LABELS, idx(IMAGES_MAGIC, np.zeros((20, 28, 28))), "magic number is 0x00000803, expected 0x00000801"),
    (TEST_IMAGES, idx(IMAGES_MAGIC, np.zeros((20, 32, 32))), "its items are 32x32, expected 28x28"),
    (TEST_IMAGES, idx(IMAGES_MAGIC, np.zeros((20, 28, 28)))[:-5],
     "holds 15675 bytes after the header, which announces 15680"),
    (TRAIN_LABELS, b"\x00\x00\x08\x01\x00", "header is cut short: 5 bytes, expected 8"),
    (TRAIN_LABELS, idx(LABELS_MAGIC, np.zeros(79)), f"79 labels for the 80 images of .*{TRAIN_IMAGES}"),
    (TEST_LABELS, idx(LABELS_MAGIC, [0] * 7 + [10] + [0] * 12), "label 10 of image 7 is not a class id in 0..9"),
], ids=["labels-as-images", "images-as-labels", "32x32", "cut-data", "cut-header", "counts", "label-range"])
def test_a_damaged_file_is_named_with_what_is_wrong_and_the_fix(tmp_path, name, content, what):
    fake_fashion_mnist(tmp_path, PER_CLASS)
    damage(tmp_path, name, content)
    with pytest.raises(IdxFileError, match=f"{tmp_path / name}: .*{what}.* -- replace it with the original {name}: "
                       "`apt-get install dataset-fashion-mnist --reinstall`"):
        build(tmp_path / "fashion_mnist", "fashion_mnist", tmp_path)
    assert not any((tmp_path / "fashion_mnist").iterdir())  # no images, no lists, no half build


def test_a_file_that_is_not_gzip_is_named(tmp_path):
    fake_fashion_mnist(tmp_path, PER_CLASS)
    (tmp_path / TEST_IMAGES).write_bytes(b"not a gzip file")
    with pytest.raises(IdxFileError, match=f"{tmp_path / TEST_IMAGES}: cannot read it as a gzipped IDX file"):
        build(tmp_path / "fashion_mnist", "fashion_mnist", tmp_path)


def test_default_raw_dir_is_debians_when_it_holds_the_four_files(tmp_path, monkeypatch):
    debian = tmp_path / "debian"
    monkeypatch.setattr(fashion_mnist, "DEBIAN_DIR", debian)
    fake_fashion_mnist(debian, PER_CLASS)
    assert default_raw_dir(tmp_path / "fashion_mnist") == debian
    (debian / TEST_LABELS).unlink()
    assert default_raw_dir(tmp_path / "fashion_mnist") == tmp_path / "fashion_mnist" / "raw"


def test_missing_files_are_downloaded_with_torchvisions_md5s(tmp_path, monkeypatch):
    monkeypatch.setattr(fashion_mnist, "DEBIAN_DIR", tmp_path / "no_package")
    mirror = tmp_path / "mirror"
    fake_fashion_mnist(mirror, PER_CLASS)
    fetched = []

    def download_url(url, root, filename, md5):  # torchvision's, serving the fake files
        fetched.append((url, filename, md5))
        (Path(root) / filename).write_bytes((mirror / filename).read_bytes())

    monkeypatch.setattr(fetch, "download_url", download_url)
    folder = tmp_path / "fashion_mnist"
    (folder / "raw").mkdir(parents=True)
    (folder / "raw" / TRAIN_LABELS).write_bytes((mirror / TRAIN_LABELS).read_bytes())  # one is there already
    build_fashion_mnist(folder / "fashion_mnist", queries_per_class=QUERIES, train_per_class=TRAIN)
    md5 = dict(fashion_mnist.FashionMNIST.resources)
    url = fashion_mnist.FashionMNIST.mirrors[0]
    assert fetched == [(f"{url}{name}", name, md5[name]) for name in FILES if name != TRAIN_LABELS]
    assert len(read_list(folder / "fashion_mnist" / "test.txt", 10)) == 10 * QUERIES


def test_offline_message_names_the_four_files_the_folder_and_both_fixes(tmp_path, monkeypatch):
    monkeypatch.setattr(fashion_mnist, "DEBIAN_DIR", tmp_path / "no_package")

    def offline(url, root, filename, md5):  # torchvision's download_url, failing half-way
        (Path(root) / filename).write_bytes(b"partial")
        raise OSError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(fetch, "download_url", offline)
    folder = tmp_path / "fashion_mnist"
    with pytest.raises(MissingFilesError) as caught:
        build_fashion_mnist(folder / "fashion_mnist")  # the default raw folder and downloader
    message = str(caught.value)
    raw = folder / "raw"
    assert all(message.count(name) == 2 for name in FILES)  # missing, and to copy
    assert f"not in {raw}/" in message and f"into {raw}/" in message and "name resolution" in message
    assert "`apt-get install dataset-fashion-mnist`" in message and "copy the four files" in message
    assert not any(raw.iterdir()) and sorted(p.name for p in folder.iterdir()) == ["raw"]  # no partial file or build
    # an injected downloader failing names them the same way
    with pytest.raises(MissingFilesError, match=f"{TRAIN_IMAGES}, {TRAIN_LABELS}, {TEST_IMAGES}, {TEST_LABELS} "
                       f"not in {tmp_path}/elsewhere/"):
        build_fashion_mnist(folder / "fashion_mnist", raw_dir=tmp_path / "elsewhere", download=no_download)


def test_raw_dir_given_a_file_names_it_and_the_folder_to_pass(tmp_path, source):
    raw, _ = source
    with pytest.raises(MissingFilesError) as caught:  # one of the four files: its folder
        build_fashion_mnist(tmp_path / "fashion_mnist", raw_dir=raw / TRAIN_IMAGES, download=no_download)
    assert str(caught.value) == (f"dataset.builder.raw_dir={raw / TRAIN_IMAGES} is a file, not a folder -- pass the "
                                 f"folder of the four files {', '.join(FILES)}: dataset.builder.raw_dir={raw}")
    (tmp_path / "notes.txt").write_text("x")  # another file: no folder to name
    with pytest.raises(MissingFilesError, match=r"notes.txt is a file, not a folder -- .*"
                       r"dataset.builder.raw_dir=<the folder that holds them>$"):
        build_fashion_mnist(tmp_path / "fashion_mnist", raw_dir=tmp_path / "notes.txt", download=no_download)
    assert not (tmp_path / "fashion_mnist").exists()


def test_datamodule_builds_a_protocol_and_reads_it(tmp_path, source, monkeypatch):
    small = functools.partial(build_fashion_mnist, protocol="fashion_mnist_unseen", queries_per_class=QUERIES,
                              train_per_class=TRAIN, download=no_download)
    monkeypatch.setitem(BUILDERS, "fashion_mnist_unseen", Builder(small))
    folder = tmp_path / "fashion_mnist"

    def module(unseen: list[int]):
        builder = {"name": "fashion_mnist_unseen", "raw_dir": str(source[0]), "unseen_classes": unseen}
        return datamodule(name="fashion_mnist_unseen", root=folder / "fashion_mnist_unseen", num_classes=10,
                          topk=None, builder=builder, resize_size=32, crop_size=32, num_workers=0, batch_size=8)

    built = module([9, 0])
    built.prepare_data()
    built.setup("fit")
    query, database = built.dataset("query"), built.dataset("database")
    assert (len(built.dataset("train")), len(query), len(database)) == (8 * TRAIN, 2 * QUERIES, 2 * (10 - QUERIES))
    image, label, index = query[0]
    assert image.shape == (3, 32, 32) and label[[0, 9]].sum() == 1 and index == 0
    assert image.dtype == torch.uint8 and (image[0] == image[1]).all() and (image[1] == image[2]).all()  # grey
    built.prepare_data()  # a no-op on the finished build
    with pytest.raises(ValueError, match="delete .* to rebuild"):  # not silently the lists of other classes
        module([1]).prepare_data()


@pytest.mark.parametrize("builder, message", [
    ({"name": "digits", "unseen_classes": [1]}, r"dataset.builder.unseen_classes=\[1\] is not an option of the digits "
                                                 r"builder \(its options: seed\) -- drop dataset.builder.unseen_classes"),
    ({"name": "cifar10", "raw_dir": "raw"}, r"dataset.builder.raw_dir='raw' is not an option of the cifar10 builder"),
])
def test_options_a_builder_does_not_take_are_refused(tmp_path, builder, message):
    with pytest.raises(ConfigError, match=message):
        datamodule(name="x", root=tmp_path, num_classes=10, topk=None, builder=builder)
