"""The original lists as users have them: parsing, path mapping, protocol options and class_num: auto."""
import logging
import os

import numpy as np
import pytest

from hashnet.data.check_lists import suggest_path_map
from hashnet.data.datamodule import HashDataModule, MissingImagesError
from hashnet.data.lists import read_list
from hashnet.methods.hashnet import similar_pair_weight
from hashnet.tasks.setup import build_datamodule, build_model, resolve_method

from conftest import compose_config, datamodule
from original_lists import FORMATS, write_lists, write_original


def module(fake, path_map=None, **options) -> HashDataModule:
    return datamodule(name=fake.root.name, root=fake.root, num_classes=fake.width, topk=None, multi_label=True,
                      path_map=path_map, resize_size=8, crop_size=8, batch_size=2, num_workers=0, **options)


@pytest.mark.parametrize("name", FORMATS)
def test_original_formats_parse_and_map_to_this_machine(name, tmp_path):
    fake = write_original(tmp_path, name, unlabeled=2, queries_in_database=3)
    parsed = read_list(fake.root / "train.txt", root=fake.root)  # width learnt from the first line
    assert parsed.labels.shape == (8, FORMATS[name][0])
    assert parsed.raw_paths[0] == f"{fake.prefix}images/0000.png"
    assert not os.path.isfile(parsed.paths[0])  # the authors' path does not exist here
    assert parsed.labels[-2:].sum() == 0 and parsed.labels[:-2].sum(axis=1).min() >= 1
    if FORMATS[name][1]:
        assert (parsed.labels[:-2].sum(axis=1) == 1).all()  # ImageNet: one-hot
    path_map = suggest_path_map(parsed.raw_paths, fake.root)
    assert path_map == {fake.prefix: f"{fake.root}/"}
    mapped = read_list(fake.root / "database.txt", FORMATS[name][0], fake.root, path_map)
    assert all(os.path.isfile(path) for path in mapped.paths) and len(mapped) == 13


def test_unmapped_author_paths_fail_at_setup_naming_the_fix(tmp_path):
    fake = write_original(tmp_path, "coco")
    # all three splits are checked at once: 8 train + 4 query + 10 database images
    with pytest.raises(MissingImagesError, match="(?s)22 of 22 images .* dataset.path_map"):
        module(fake).setup("fit")


def test_protocol_options_default_to_the_original_lists(tmp_path):
    fake = write_original(tmp_path, "nus_wide_81", unlabeled=3, queries_in_database=2)
    data = module(fake, {fake.prefix: f"{fake.root}/"})
    sizes = {split: len(data.dataset(split)) for split in ("train", "query", "database")}
    assert sizes == {"train": 8, "query": 4, "database": 12} and data.removed == {}


def test_drop_unlabeled_leaves_out_train_and_query_rows_only(tmp_path, caplog):
    fake = write_lists(tmp_path, "nus", 81, "", unlabeled=3)
    (fake.root / "database.txt").write_text((fake.root / "database.txt").read_text()
                                            + "images/0000.png " + " ".join(["0"] * 81) + "\n")
    data = module(fake, drop_unlabeled=True)
    with caplog.at_level(logging.INFO, logger="hashnet.data.datamodule"):
        train, query, database = (data.dataset(split) for split in ("train", "query", "database"))
    assert (len(train), len(query), len(database)) == (5, 1, 11)  # the database keeps its unlabeled row
    assert data.removed == {"train": 3, "query": 3}
    assert train.image_list.lines.tolist() == [1, 2, 3, 4, 5]
    assert query.labels.sum(dim=1).min() >= 1
    assert "left out 3 of 8 rows with no label (drop_unlabeled=true)" in caplog.text


def test_exclude_queries_from_database_is_the_strict_protocol(tmp_path, caplog):
    fake = write_original(tmp_path, "coco", queries_in_database=3)
    data = module(fake, {fake.prefix: f"{fake.root}/"}, exclude_queries_from_database=True)
    with caplog.at_level(logging.INFO, logger="hashnet.data.datamodule"):
        database = data.dataset("database").image_list
    assert len(database) == 10 and data.removed == {"database": 3}
    assert not set(database.paths) & set(data.dataset("query").image_list.paths)
    assert database.lines[0] == 4  # line numbers still point into database.txt
    assert "left out 3 of 13 query images (exclude_queries_from_database=true)" in caplog.text


def test_similar_pair_weight_by_hand():
    # rows: {0}, {0,1}, {1}, {} -> pairs (6): similar (0,1), (1,2) -> 6 / 2
    assert similar_pair_weight(np.array([[1, 0], [1, 1], [0, 1], [0, 0]])) == 3.0
    # 10 balanced one-hot classes of 100: 4950 * 10 similar out of 499500
    assert similar_pair_weight(np.eye(10)[np.repeat(np.arange(10), 100)]) == pytest.approx(499500 / 49500)
    # identical rows grouped: same answer as distinct copies
    assert similar_pair_weight(np.array([[1, 0]] * 3 + [[0, 1]] * 2)) == pytest.approx(10 / 4)
    with pytest.raises(ValueError, match="no two of the 3 training images share a label"):
        similar_pair_weight(np.eye(3))


def test_class_num_auto_is_computed_from_the_training_labels(digits_root, tmp_path):
    cfg = compose_config("train", ["method.class_num=auto", f"paths.data_dir={digits_root.parent}"], tmp_path)
    labels = read_list(digits_root / "train.txt", 10).labels
    resolve_method(cfg, build_datamodule(cfg))
    model = build_model(cfg)  # built from the resolved config: the number reaches the checkpoint
    assert model.method.class_num == pytest.approx(similar_pair_weight(labels)) and 9.5 < model.method.class_num < 10.5
    assert model.hparams.method["class_num"] == model.method.class_num


def test_numeric_class_num_is_left_alone(tmp_path):
    cfg = compose_config("train", ["method.class_num=5"], tmp_path)
    resolve_method(cfg, None)  # the data is not even looked at
    assert build_model(cfg).method.class_num == 5.0
