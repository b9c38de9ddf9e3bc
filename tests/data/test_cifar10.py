"""CIFAR-10 protocols built from a small fake archive in the official pickle format (never downloaded)."""
import functools
import json
import pickle
import shutil
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hashnet.data.builders import BUILDERS, Builder, fetch
from hashnet.data.builders.cifar10 import (
    ARCHIVE,
    BATCHES,
    EXTRACTED,
    PROTOCOLS,
    URL,
    ArchiveError,
    build_cifar10,
    protocol_lists,
)
from hashnet.data.lists import read_list

from conftest import datamodule

PER_BATCH = 2  # images of each class in each of the 6 batch files: 12 a class, 120 in all
SMALL = {"cifar10": (2, 4), "cifar10_1": (2, 4), "cifar10_2": (3, 6)}  # (queries, train) per class
LISTS = ("test.txt", "train.txt", "database.txt")


def fake_batches(seed: int = 0) -> list[dict]:
    """The 6 batch dicts as the official pickles hold them: random pixels, labels in shuffled order."""
    rng = np.random.default_rng(seed)
    batches = []
    for name in BATCHES:
        labels = rng.permutation(np.repeat(np.arange(10), PER_BATCH))
        batches.append({b"batch_label": name.encode(), b"labels": labels.tolist(),
                        b"data": rng.integers(0, 256, (len(labels), 3072), dtype=np.uint8),
                        b"filenames": [f"{name}_{i}.png".encode() for i in range(len(labels))]})
    return batches


def write_extracted(folder: Path, batches: list[dict]) -> Path:
    """folder/cifar-10-batches-py/<batch> pickles, as the archive extracts."""
    (folder / EXTRACTED).mkdir(parents=True)
    for name, batch in zip(BATCHES, batches):
        (folder / EXTRACTED / name).write_bytes(pickle.dumps(batch, protocol=2))
    return folder / EXTRACTED


def write_archive(folder: Path, batches: list[dict]) -> Path:
    """folder/cifar-10-python.tar.gz holding cifar-10-batches-py/<batch>, and nothing else in folder."""
    extracted = write_extracted(folder / "tmp", batches)
    with tarfile.open(folder / ARCHIVE, "w:gz") as tar:
        tar.add(extracted, arcname=EXTRACTED)
    shutil.rmtree(folder / "tmp")
    return folder / ARCHIVE


def no_download(folder: Path) -> None:
    raise AssertionError("tests never download")


def build(folder: Path, protocol: str, **kwargs) -> Path:
    queries, train = SMALL[protocol]
    build_cifar10(folder / protocol, protocol, queries_per_class=queries, train_per_class=train,
                  download=no_download, **kwargs)
    return folder / protocol


def read_lists(root: Path) -> dict:
    return {name: read_list(root / name, 10, root=root) for name in LISTS}


@pytest.fixture(scope="module")
def batches() -> list[dict]:
    return fake_batches()


@pytest.fixture(scope="module")
def built(tmp_path_factory, batches) -> Path:
    """The CIFAR-10 folder with the three protocols built from the .tar.gz."""
    folder = tmp_path_factory.mktemp("data") / "cifar10"
    folder.mkdir()
    write_archive(folder, batches)
    for protocol in SMALL:
        build(folder, protocol)
    return folder


def test_real_counts_of_the_three_protocols():
    labels = np.random.default_rng(1).permutation(np.repeat(np.arange(10), 6000))
    sizes = {name: tuple(len(index) for index in protocol_lists(labels, PROTOCOLS[name], seed=0).values())
             for name in PROTOCOLS}  # (train, queries, database)
    assert sizes == {"cifar10": (5000, 1000, 54000), "cifar10_1": (5000, 1000, 59000),
                     "cifar10_2": (50000, 10000, 50000)}


@pytest.mark.parametrize("protocol, database_per_class", [("cifar10", 6), ("cifar10_1", 10), ("cifar10_2", 6)])
def test_counts_per_split_and_class(built, protocol, database_per_class):
    queries, train = SMALL[protocol]
    lists = read_lists(built / protocol)
    # 12 a class: cifar10 database = 12 - 2 - 4 = 6; cifar10_1 = 12 - 2 = 10; cifar10_2 = its 6 training images
    assert [lists[name].labels.sum(0).tolist() for name in LISTS] == \
        [[queries] * 10, [train] * 10, [database_per_class] * 10]
    assert all((lst.labels.sum(1) == 1).all() for lst in lists.values())  # one-hot, 10 wide
    assert all(path.startswith("../images/") for lst in lists.values() for path in lst.raw_paths)


def test_which_splits_overlap(built):
    paths = {protocol: {name: set(lst.raw_paths) for name, lst in read_lists(built / protocol).items()}
             for protocol in SMALL}
    for split in paths.values():
        assert not split["test.txt"] & split["database.txt"] and not split["test.txt"] & split["train.txt"]
    assert not paths["cifar10"]["train.txt"] & paths["cifar10"]["database.txt"]
    assert paths["cifar10_1"]["train.txt"] < paths["cifar10_1"]["database.txt"]
    assert paths["cifar10_2"]["train.txt"] == paths["cifar10_2"]["database.txt"]
    assert len(paths["cifar10_1"]["test.txt"] | paths["cifar10_1"]["database.txt"]) == 120  # every image
    # same counts, same seed: cifar10 and cifar10_1 share queries and training images
    assert paths["cifar10"]["test.txt"] == paths["cifar10_1"]["test.txt"]
    assert paths["cifar10"]["train.txt"] == paths["cifar10_1"]["train.txt"]


def test_images_are_written_once_with_the_archive_pixels_and_labels(built, batches):
    assert len(list((built / "images").glob("*.png"))) == 120  # shared by the three protocols
    rows = np.concatenate([batch[b"data"] for batch in batches])  # archive order: data_batch_1 first
    labels = np.concatenate([batch[b"labels"] for batch in batches])
    for name, lst in read_lists(built / "cifar10_1").items():
        for path, raw, onehot in zip(lst.paths, lst.raw_paths, lst.labels):
            index = int(raw[len("../images/"):-len(".png")])
            assert onehot.argmax() == labels[index]
            with Image.open(path) as png:
                assert (png.mode, png.size) == ("RGB", (32, 32))
                pixels = np.asarray(png)
            # row = 1,024 red bytes (32 rows of 32), then 1,024 green, then 1,024 blue
            assert pixels[5, 7, 0] == rows[index][0 * 1024 + 5 * 32 + 7]
            assert pixels[5, 7, 2] == rows[index][2 * 1024 + 5 * 32 + 7]
            assert np.array_equal(pixels, rows[index].reshape(3, 32, 32).transpose(1, 2, 0))


def test_extracted_folder_gives_the_same_build(built, batches, tmp_path):
    folder = tmp_path / "cifar10"
    write_extracted(folder, batches)
    root = build(folder, "cifar10")
    assert all((root / name).read_text() == (built / "cifar10" / name).read_text() for name in LISTS)
    for name in ("00000.png", "00119.png"):
        with Image.open(folder / "images" / name) as ours, Image.open(built / "images" / name) as theirs:
            assert np.array_equal(np.asarray(ours), np.asarray(theirs))


def test_rebuild_is_a_no_op_and_a_fresh_build_the_same_split(built, batches, tmp_path):
    root = built / "cifar10_2"
    stamps = [(root / name).stat().st_mtime_ns for name in (*LISTS, ".complete")]
    build(built, "cifar10_2")
    assert [(root / name).stat().st_mtime_ns for name in (*LISTS, ".complete")] == stamps
    folder = tmp_path / "cifar10"
    folder.mkdir()
    write_archive(folder, batches)
    assert all((build(folder, "cifar10_2") / name).read_text() == (root / name).read_text() for name in LISTS)
    other_seed = folder / "seed1"
    build_cifar10(other_seed, "cifar10_2", seed=1, queries_per_class=3, train_per_class=6, download=no_download)
    assert (other_seed / "test.txt").read_text() != (root / "test.txt").read_text()
    assert json.loads((root / ".complete").read_text()) == \
        {"builder": "cifar10_2", "seed": 0, "queries_per_class": 3, "train_per_class": 6}
    (folder / ARCHIVE).unlink()  # the images are written: another protocol needs no archive
    assert (build(folder, "cifar10") / "test.txt").read_text() == (built / "cifar10" / "test.txt").read_text()
    assert sorted(p.name for p in folder.iterdir()) == ["cifar10", "cifar10_2", "images", "seed1"]  # no leftovers


def test_other_settings_are_refused_naming_the_folder_to_delete(built):
    root = built / "cifar10"
    with pytest.raises(ValueError, match=f"delete {root} to rebuild"):
        build_cifar10(root, "cifar10", queries_per_class=3, train_per_class=4, download=no_download)
    with pytest.raises(ValueError, match="already holds"):
        build_cifar10(root, "cifar10_1", queries_per_class=2, train_per_class=4, download=no_download)
    with pytest.raises(ValueError, match="protocol must be one of"):
        build_cifar10(built / "cifar100", "cifar100")


def test_offline_message_names_the_file_the_folder_and_the_url(tmp_path, monkeypatch):
    folder = tmp_path / "cifar10"

    def offline(url, root, filename, md5):  # torchvision's download_url, failing half-way
        (Path(root) / filename).write_bytes(b"partial")
        raise OSError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(fetch, "download_url", offline)
    with pytest.raises(FileNotFoundError) as caught:
        build_cifar10(folder / "cifar10", "cifar10")  # the default downloader
    message = str(caught.value)
    assert f"put {ARCHIVE} into {folder}/" in message and URL in message and "name resolution" in message
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["cifar10"]  # no partial archive, no half build


def test_the_archive_in_the_dataset_root_is_found_and_left_there(tmp_path, batches):
    root = tmp_path / "mine"  # dataset.root=<a folder> holding the archive, as the README says to put it
    root.mkdir()
    write_archive(root, batches)
    build_cifar10(root, "cifar10", queries_per_class=SMALL["cifar10"][0], train_per_class=SMALL["cifar10"][1],
                  download=no_download)
    assert sorted(p.name for p in root.iterdir()) == sorted([".complete", ARCHIVE, *LISTS])
    lists = read_lists(root)
    assert len(lists["test.txt"]) == 20 and all(Path(p).is_file() for p in lists["database.txt"].paths)
    build_cifar10(root, "cifar10", queries_per_class=SMALL["cifar10"][0], train_per_class=SMALL["cifar10"][1],
                  download=no_download)  # built: nothing to do
    (root / "notes.txt").write_text("mine")
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match=f"{other} is not empty and holds no finished cifar10 build .it holds "
                                              "notes.txt. -- point dataset.root at a new folder"):
        build_cifar10(other, "cifar10", download=no_download)


def test_a_missing_archive_names_both_folders_looked_in(tmp_path):
    def offline(folder: Path) -> None:
        raise OSError("no network")

    with pytest.raises(FileNotFoundError, match=f"neither {ARCHIVE} nor its extracted {EXTRACTED}/ is in "
                                                f"{tmp_path / 'mine'} or {tmp_path}, and downloading it failed"):
        build_cifar10(tmp_path / "mine", "cifar10", download=offline)


def test_unreadable_archive_names_the_batch(tmp_path, batches):
    broken = [dict(batch) for batch in batches]
    broken[5][b"data"] = broken[5][b"data"].astype(np.int32)
    write_extracted(tmp_path, broken)
    with pytest.raises(ArchiveError, match=f"{EXTRACTED}/test_batch: b'data' is int32 .* download {URL}"):
        build(tmp_path, "cifar10")
    (tmp_path / EXTRACTED / "data_batch_3").unlink()
    with pytest.raises(ArchiveError, match="data_batch_3"):
        build(tmp_path, "cifar10")
    (tmp_path / ARCHIVE).write_bytes(b"not a gzip file")
    shutil.rmtree(tmp_path / EXTRACTED)
    with pytest.raises(ArchiveError, match=f"cannot read CIFAR-10 from {tmp_path / ARCHIVE}"):
        build(tmp_path, "cifar10")


def test_datamodule_builds_a_protocol_and_reads_it(tmp_path, batches, monkeypatch):
    folder = tmp_path / "cifar10"
    folder.mkdir()
    write_archive(folder, batches)
    monkeypatch.setitem(BUILDERS, "cifar10_1", Builder(functools.partial(build_cifar10, protocol="cifar10_1",
                                                                         download=no_download)))
    builder = {"name": "cifar10_1", "queries_per_class": 2, "train_per_class": 4}  # options from the dataset config
    module = datamodule(name="cifar10_1", root=folder / "cifar10_1", num_classes=10, topk=None, builder=builder,
                        resize_size=32, crop_size=32, num_workers=0, normalize_on_device=False)
    module.prepare_data()
    module.setup("test")
    query, database = module.dataset("query"), module.dataset("database")
    assert (len(module.dataset("train")), len(query), len(database)) == (40, 20, 100)
    image, label, index = query[0]
    assert image.shape == (3, 32, 32) and label.sum() == 1 and index == 0
