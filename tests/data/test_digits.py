"""Embedded digits datasets: splits, labels, files, idempotence and atomic builds."""
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hashnet.data.builders import digits
from hashnet.data.builders.digits import build_digits, digit_images, mosaic, split_digits
from hashnet.data.lists import read_list


@pytest.fixture(scope="module")
def all_digits() -> tuple[np.ndarray, np.ndarray]:
    return digit_images()


@pytest.fixture(scope="module")
def multi_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("embedded") / "digits_multi"
    build_digits(root, multi=True)
    return root


@pytest.fixture
def tiny(monkeypatch):
    """Shrink the recipe to 3 digits per class (1 query, 1 train) so builds take milliseconds."""
    labels = np.repeat(np.arange(10), 3)
    images = np.arange(30, dtype=np.uint8)[:, None, None] * np.ones((1, 4, 4), np.uint8)
    monkeypatch.setattr(digits, "digit_images", lambda: (images, labels))
    monkeypatch.setattr(digits, "QUERIES_PER_CLASS", 1)
    monkeypatch.setattr(digits, "TRAIN_PER_CLASS", 1)


def test_split_sizes_are_disjoint_and_seeded(all_digits):
    labels = all_digits[1]
    query, train, database = split_digits(labels, seed=0)
    assert (len(query), len(train), len(database)) == (300, 1000, 1497)
    assert np.bincount(labels[query]).tolist() == [30] * 10
    assert np.bincount(labels[train]).tolist() == [100] * 10
    assert not np.intersect1d(query, database).size
    assert np.isin(train, database).all()
    assert np.array_equal(np.union1d(query, database), np.arange(1797))
    again = split_digits(labels, seed=0)
    assert all(np.array_equal(a, b) for a, b in zip(again, (query, train, database)))
    assert not np.array_equal(split_digits(labels, seed=1)[0], query)


def test_mosaic_layout_is_row_major():
    tiles = np.arange(4).reshape(1, 4, 1, 1).repeat(2, axis=2).repeat(2, axis=3)
    assert mosaic(tiles)[0].tolist() == [[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]]


def test_digits_build(digits_root, all_digits):
    images, labels = all_digits
    splits = {name: read_list(digits_root / f"{name}.txt", 10, root=digits_root)
              for name in ("train", "test", "database")}
    assert {name: len(lst) for name, lst in splits.items()} == {"train": 1000, "test": 300, "database": 1497}
    assert splits["test"].labels.sum(0).tolist() == [30] * 10
    assert splits["train"].labels.sum(0).tolist() == [100] * 10
    assert (splits["database"].labels.sum(0) == np.bincount(labels) - 30).all()
    assert all(lst.labels.sum(1).tolist() == [1] * len(lst) for lst in splits.values())
    query, train, database = (set(splits[name].raw_paths) for name in ("test", "train", "database"))
    assert not query & database and train <= database and len(query | database) == 1797
    name = splits["test"].raw_paths[0]  # images/NNNN.png holds digit NNNN
    index = int(name[7:11])
    with Image.open(digits_root / name) as png:
        assert (png.mode, png.size) == ("L", (32, 32))
        assert np.array_equal(np.asarray(png), images[index])
    assert splits["test"].labels[0].argmax() == labels[index]
    assert json.loads((digits_root / ".complete").read_text()) == {"builder": "digits", "seed": 0}


def test_rebuild_is_a_no_op(digits_root):
    files = [digits_root / name for name in ("train.txt", "test.txt", "database.txt", ".complete")]
    before = [path.stat().st_mtime_ns for path in files]
    siblings = sorted(digits_root.parent.iterdir())
    build_digits(digits_root)
    assert [path.stat().st_mtime_ns for path in files] == before
    assert sorted(digits_root.parent.iterdir()) == siblings


def test_other_recipe_or_foreign_folder_is_refused(digits_root, tmp_path):
    with pytest.raises(ValueError, match="already holds"):
        build_digits(digits_root, multi=True)
    (tmp_path / "mine.txt").write_text("user data")
    with pytest.raises(FileExistsError, match="not empty"):
        build_digits(tmp_path)


def test_tiny_build_into_empty_folder(tiny, tmp_path):
    root = tmp_path / "d"
    root.mkdir()
    build_digits(root)
    assert [len((root / f"{name}.txt").read_text().splitlines()) for name in ("test", "train", "database")] \
        == [10, 10, 20]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]


def test_interrupted_build_leaves_nothing_and_is_redone(tiny, tmp_path, monkeypatch):
    def crash(*args):
        raise KeyboardInterrupt

    root = tmp_path / "d"
    with monkeypatch.context() as patch:
        patch.setattr(digits, "save_pngs", crash)
        with pytest.raises(KeyboardInterrupt):
            build_digits(root)
    assert list(tmp_path.iterdir()) == []
    build_digits(root)
    assert (root / ".complete").is_file() and len(list((root / "images").iterdir())) == 30


def test_losing_a_race_keeps_the_winner(tiny, tmp_path, monkeypatch):
    root = tmp_path / "d"
    real = digits.digit_images

    def other_process_finishes_first():
        monkeypatch.setattr(digits, "digit_images", real)
        build_digits(root)  # the rival's build completes while ours is under way
        winner.append((root / "database.txt").stat().st_ino)
        return real()

    winner = []
    monkeypatch.setattr(digits, "digit_images", other_process_finishes_first)
    build_digits(root)
    assert (root / "database.txt").stat().st_ino == winner[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]


def test_multi_build(multi_root, all_digits):
    images, labels = all_digits
    query_digits, _, _ = split_digits(labels, seed=0)
    splits = {name: read_list(multi_root / f"{name}.txt", 10, root=multi_root)
              for name in ("train", "test", "database")}
    assert {name: len(lst) for name, lst in splits.items()} == {"train": 1000, "test": 300, "database": 2000}
    assert splits["train"].raw_paths == splits["database"].raw_paths[:1000]
    assert np.array_equal(splits["train"].labels, splits["database"].labels[:1000])
    digit_of = {image.tobytes(): i for i, image in enumerate(images)}
    for name, count in (("test", 300), ("database", 150)):
        lst = splits[name]
        for path, row in zip(lst.paths[:count], lst.labels[:count]):
            with Image.open(path) as png:
                assert (png.mode, png.size) == ("L", (64, 64))
                grid = np.asarray(png).reshape(2, 32, 2, 32).transpose(0, 2, 1, 3).reshape(4, 32, 32)
            shown = [digit_of[tile.tobytes()] for tile in grid]
            assert len(set(shown)) == 4
            from_queries = np.isin(shown, query_digits)
            assert from_queries.all() if name == "test" else not from_queries.any()
            assert np.flatnonzero(row).tolist() == sorted(set(labels[shown].tolist()))
    classes_shown = splits["database"].labels.sum(1)
    assert np.bincount(classes_shown).tolist() == [0, 695, 632, 673]  # 1 to 3 classes a mosaic, seeded
    similar = splits["test"].labels @ splits["database"].labels.T > 0
    assert similar.mean() == pytest.approx(0.3632, abs=1e-4)  # chance mAP: far from 0 and from 1
    assert json.loads((multi_root / ".complete").read_text()) == \
        {"builder": "digits_multi", "seed": 0, "classes_per_mosaic": [1, 3]}
