"""The folder dataset: an image tree becomes seeded, class-stratified lists written once into its hidden .hashnet/
folder; sizes as counts or fractions; classes too small for the split are refused by name; num_classes=auto; the
config composes and builds its DataModule."""
import json
import logging
import os
from pathlib import Path

import numpy as np
import pytest

from hashnet.data.builders import num_classes
from hashnet.data.builders import folder as folder_module
from hashnet.data.builders.folder import FolderError, build_folder, count_classes
from hashnet.data.lists import read_list
from hashnet.tasks.setup import build_datamodule
from hashnet.utils.errors import ConfigError, UserError

from conftest import compose_config, write_image_tree

COUNTS = {"cats": 20, "dogs": 10, "owls": 31}


def lists_of(root: Path) -> dict:
    return {split: read_list(root / ".hashnet" / f"{split}.txt", None, root) for split in ("train", "test", "database")}


@pytest.fixture
def tree(tmp_path) -> Path:
    return write_image_tree(tmp_path / "photos", COUNTS)


def test_default_split_is_stratified_seeded_and_relative(tree):
    build_folder(tree)
    lists = lists_of(tree)
    assert (tree / ".hashnet" / "classes.txt").read_text() == "cats\ndogs\nowls\n"
    queries = lists["test"].labels.sum(axis=0).tolist()
    assert queries == [2, 1, 3]  # 10% of each class, rounded, at least 1
    rest = [n - q for n, q in zip(COUNTS.values(), queries)]
    assert lists["train"].labels.sum(axis=0).tolist() == rest == lists["database"].labels.sum(axis=0).tolist()
    test, train, database = (set(lists[split].raw_paths) for split in ("test", "train", "database"))
    assert not test & database and train == database  # queries held out; every other image trains and is searched
    every = {path.relative_to(tree).as_posix() for path in tree.rglob("*.png")}
    assert test | database == every and "cats/more/002.png" in every  # any depth, paths relative to the tree
    assert all((tree / path).is_file() for path in test)
    for image_list in lists.values():  # labels: the class folder, one-hot
        assert image_list.labels.shape[1] == 3 and (image_list.labels.sum(axis=1) == 1).all()
        for path, row in zip(image_list.raw_paths, image_list.labels):
            assert path.split("/")[0] == ["cats", "dogs", "owls"][int(row.argmax())]
        assert image_list.raw_paths == sorted(image_list.raw_paths)
    assert json.loads((tree / ".hashnet" / "counts.json").read_text()) == COUNTS
    assert json.loads((tree / ".hashnet" / ".complete").read_text()) == {
        "builder": "folder", "seed": 0, "query": 0.1, "train": 1.0, "database": 1.0}

    other = write_image_tree(tree.parent / "again", COUNTS)
    build_folder(other)
    assert lists_of(other)["test"].raw_paths == lists["test"].raw_paths  # the same tree and seed: the same split
    third = write_image_tree(tree.parent / "seeded", COUNTS)
    build_folder(third, seed=1)
    assert lists_of(third)["test"].raw_paths != lists["test"].raw_paths


def test_sizes_as_counts_and_fractions(tree):
    build_folder(tree, query=2, train=5, database=0.5)
    lists = lists_of(tree)
    assert lists["test"].labels.sum(axis=0).tolist() == [2, 2, 2]
    assert lists["train"].labels.sum(axis=0).tolist() == [5, 5, 5]
    assert lists["database"].labels.sum(axis=0).tolist() == [9, 4, 15]  # half of the 18, 8, 29 non-queries
    train, database = set(lists["train"].raw_paths), set(lists["database"].raw_paths)
    shared = train & database  # drawn from both ends of the non-queries, they meet only where 5 + database > rest:
    assert [path.split("/")[0] for path in shared] == ["dogs"]  # dogs 5 + 4 > 8 (cats 5 + 9 <= 18, owls 5 + 15 <= 29)
    assert not set(lists["test"].raw_paths) & (train | database)


def test_classes_too_small_are_refused_by_name(tmp_path):
    root = write_image_tree(tmp_path / "photos", {"cats": 20, "lonely": 1, "pair": 2})
    (root / "empty").mkdir()
    with pytest.raises(FolderError, match="2 of the 4 classes in .*photos have too few images for the split \\(query "
                                          "0.1, train 1.0, database 1.0\\): 'empty' \\(0 images, fewer than 1 query \\+ 1 "
                                          "to train on and find\\); 'lonely' \\(1 image, fewer .*-- add images to them"):
        build_folder(root)
    assert not (root / ".hashnet").exists()  # nothing half-written
    with pytest.raises(FolderError, match="'cats' \\(20 images, fewer than 15 queries \\+ 6 to train on and find\\)"):
        build_folder(write_image_tree(tmp_path / "few", {"cats": 20, "dogs": 30}), query=15, train=6)


@pytest.mark.parametrize("counts, message", [
    ({"cats": 5}, "holds 1 class folder: 'cats'; a folder dataset needs at least 2"),
    ({}, "holds 0 class folders; a folder dataset needs at least 2"),
])
def test_a_tree_needs_two_classes(counts, message, tmp_path):
    root = write_image_tree(tmp_path / "photos", counts)
    with pytest.raises(FolderError, match=message):
        build_folder(root)


def test_loose_images_are_left_out_and_hidden_folders_skipped(tree, caplog):
    (tree / "cats" / "000.png").rename(tree / "loose.png")
    write_image_tree(tree / ".thumbnails", {"cats": 3})  # hidden: neither a class nor images of one
    write_image_tree(tree / "dogs" / ".cache", {"x": 2})
    (tree / "owls" / "notes.txt").write_text("not an image")
    build_folder(tree)
    assert "1 images directly in" in caplog.text and "loose.png" in caplog.text
    lists = lists_of(tree)
    every = set(lists["test"].raw_paths) | set(lists["database"].raw_paths)
    assert len(every) == sum(COUNTS.values()) - 1
    assert not any(part.startswith(".") for path in every for part in path.split("/"))


# ---- issue 29: names a list line cannot hold, a class folder that is a link to another ----
@pytest.mark.parametrize("name, message", [  # ids: newline, U+2028, Latin-1
    ("line\nbreak.png", r"'.*cats/line\\nbreak.png': its name holds a line break \(U\+000A\), which a list file "
                         r"cannot hold -- rename it without one, or move it out of dataset.root"),
    ("para\u2028graph.png", r"its name holds a line break \(U\+2028\)"),
    (b"caf\xe9.png", r"b'.*cats/caf\\xe9.png': its name is not UTF-8 text, which a list file holds -- rename it in "
                     "UTF-8, or move it out of dataset.root"),
])
def test_a_file_name_no_list_line_can_hold_is_refused_by_name(tree, name, message):
    (tree / "cats" / "000.png").rename(tree / "cats" / (os.fsdecode(name) if isinstance(name, bytes) else name))
    with pytest.raises(FolderError, match=message):
        build_folder(tree)
    assert not (tree / ".hashnet").exists()


def test_a_class_folder_starting_with_a_space_reads_back(tree):
    (tree / "dogs").rename(tree / " dogs")
    build_folder(tree)
    lists = lists_of(tree)
    assert all(os.path.isfile(path) for image_list in lists.values() for path in image_list.paths)
    assert sum(raw.startswith("./ dogs/") for raw in lists["database"].raw_paths) == 9  # 10, less one query
    assert (tree / ".hashnet" / "classes.txt").read_text() == " dogs\ncats\nowls\n"


def test_a_class_folder_linked_to_another_is_warned_about(tree, caplog):
    (tree / "kittens").symlink_to(tree / "cats")
    caplog.set_level(logging.WARNING)
    build_folder(tree)
    assert (f"class folders 'cats' and 'kittens' of {tree} hold the same 20 image files ({tree / 'kittens'} is a link "
            f"to {tree / 'cats'}): each is listed in both classes -- remove the link (or the copy) unless those images "
            "belong to both") in caplog.text


def test_written_once_another_split_is_refused_and_a_changed_tree_warned(tree, caplog):
    build_folder(tree)
    written = (tree / ".hashnet" / "test.txt").read_text()
    build_folder(tree)  # the same settings: nothing to do
    with pytest.raises(FolderError, match="the lists in .*photos/.hashnet were written with another split \\(query "
                                          "0.1 -> 0.2\\) -- delete .*photos/.hashnet to split the folder again"):
        build_folder(tree, query=0.2)
    write_image_tree(tree / "dogs" / "new", {"a": 4}, seed=5)
    caplog.set_level(logging.WARNING)
    build_folder(tree)
    assert "changed since its lists were written (dogs: 10 -> 14 images); the lists stay as written" in caplog.text
    assert (tree / ".hashnet" / "test.txt").read_text() == written


@pytest.mark.parametrize("key, value", [("query", 0), ("train", 1.5), ("database", True), ("query", "a")])
def test_bad_sizes_are_refused(tree, key, value):
    with pytest.raises(FolderError, match=f"{key} size is {value!r}: it must be a number of images per class"):
        build_folder(tree, **{key: value})


def test_a_read_only_tree_says_where_else_the_lists_can_go(tree, monkeypatch, tmp_path):
    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(folder_module, "build_atomically", refuse)
    with pytest.raises(FolderError, match="cannot write the lists into .*photos/.hashnet .* the builder's lists "
                                          "folder may be absolute"):
        build_folder(tree)
    monkeypatch.undo()
    build_folder(tree, lists=str(tmp_path / "elsewhere"))  # an absolute lists folder: the tree is left untouched
    assert not (tree / ".hashnet").exists() and (tmp_path / "elsewhere" / "train.txt").is_file()
    assert read_list(tmp_path / "elsewhere" / "test.txt", 3, tree).paths[0].startswith(str(tree))


def test_num_classes_auto(tree, tmp_path):
    assert count_classes(tree) == 3 == num_classes({"name": "folder"}, tree)  # the class folders, before a build
    build_folder(tree)
    (tree / "zebras").mkdir()  # after the build, the written classes count
    assert count_classes(tree) == 3
    with pytest.raises(ConfigError, match="dataset.num_classes=auto needs a builder that counts its classes \\(folder\\)"
                                          ", not dataset.builder=digits"):
        num_classes("digits", tmp_path)


def test_the_config_builds_its_datamodule_and_refuses_a_missing_root(tree, tmp_path):
    cfg = compose_config("train", ["dataset=folder", "net.pretrained=false"], tmp_path)
    assert cfg.dataset.root is None
    with pytest.raises(ConfigError, match="dataset=folder needs dataset.root: pass dataset.root=<dir> "
                                          "\\(configs/dataset/folder.yaml says what it is\\)"):
        build_datamodule(cfg)
    cfg = compose_config("train", ["dataset=folder", f"dataset.root={tree}",
                                   "net.pretrained=false", "dataset.builder.query=2"], tmp_path)
    datamodule = build_datamodule(cfg)
    assert datamodule.num_classes == 3 == cfg.model.num_classes
    assert datamodule.list_path("query") == tree / ".hashnet" / "test.txt"
    datamodule.prepare_data()
    assert datamodule.read_split("query").labels.sum(axis=0).tolist() == [2, 2, 2]
    assert datamodule.cache_dir == tree / ".hashnet" / "cache"
    other = compose_config("train", ["dataset=folder", f"dataset.root={tree}",
                                     "net.pretrained=false", "dataset.builder.query=2", "dataset.builder.seed=3"], tmp_path)
    with pytest.raises(FolderError, match="written with another split \\(seed 0 -> 3\\)") as refused:
        build_datamodule(other).prepare_data()  # lists there: the build is still asked, and refuses
    assert isinstance(refused.value, UserError)
    assert np.array_equal(read_list(tree / ".hashnet" / "test.txt", 3).labels.sum(axis=0), [2, 2, 2])
