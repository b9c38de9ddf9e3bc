"""A folder of images without labels (hashnet.data.builders.folder, labels "none" or a flat folder): its lists, the
refusal of methods that learn from labels, and a fitted method trained, encoded and searched on it."""
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hashnet.data.builders.folder import build_folder, count_classes
from hashnet.data.lists import read_list
from hashnet.tasks.setup import check_labels
from hashnet.tasks.setup import build_datamodule
from hashnet.tasks.train import train
from hashnet.utils.errors import ConfigError

from conftest import compose_config

FOLDER = ["dataset=folder", "net.pretrained=false", "dataset.resize_size=32", "dataset.crop_size=32",
          "dataset.batch_size=8", "dataset.num_workers=0", "hash_bit=8", "trainer.accelerator=cpu", "logger=csv"]


@pytest.fixture
def flat(tmp_path: Path) -> Path:
    """20 random 8 x 8 PNGs directly in a folder, no class folders."""
    rng = np.random.default_rng(0)
    root = tmp_path / "photos"
    root.mkdir()
    for i in range(20):
        Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(root / f"{i:02d}.png")
    return root


def test_a_flat_folder_is_split_without_labels_and_wholly_searchable(flat):
    build_folder(flat)
    lists = {name: read_list(flat / ".hashnet" / f"{name}.txt", 1, flat) for name in ("train", "test", "database")}
    assert [len(lists[name]) for name in ("test", "train", "database")] == [2, 18, 20]  # 10% queries; every image
    assert not any(image_list.labels.any() for image_list in lists.values())  # one column of zeros
    assert set(lists["test"].paths) | set(lists["train"].paths) == set(lists["database"].paths)
    assert count_classes(flat) == 1


def test_a_method_that_learns_from_labels_is_refused_naming_those_that_need_none(flat, tmp_path):
    cfg = compose_config("train", [*FOLDER, f"dataset.root={flat}", "method=dsh"], tmp_path / "run")
    with pytest.raises(ConfigError, match="dataset=folder has no labels, and method=dsh learns from labels -- pass "
                                          "method=itq, or another method that needs none: bihalf, cibhash"):
        check_labels(cfg, build_datamodule(cfg))


@pytest.mark.usefixtures("one_thread")
def test_itq_fits_on_the_folder_and_has_nothing_to_score(flat, tmp_path):
    results = train(compose_config("train", [*FOLDER, f"dataset.root={flat}", "method=itq"], tmp_path / "run"))
    assert results["mAP"] is None and results["steps"] == 0 and results["num_database"] == 20
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").is_file()
