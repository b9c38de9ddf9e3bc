"""A folder of images without labels (hashnet.data.builders.folder, labels "none" or a flat folder): its lists, the
refusal of methods that learn from labels, and a fitted method trained on it, with no evaluation (train, evaluate and
the report say why)."""
import json
import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hashnet.data.builders.folder import build_folder, count_classes
from hashnet.data.lists import read_list
from hashnet.outputs.runs import collect
from hashnet.tasks.evaluate import evaluate
from hashnet.tasks.setup import build_datamodule, check_labels
from hashnet.tasks.train import train
from hashnet.training.checkpoints import read_checkpoint
from hashnet.utils.errors import ConfigError

from conftest import compose_config

EVALUATE = ["dataset=folder", "dataset.num_workers=0", "trainer.accelerator=cpu", "logger=csv"]
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
def test_itq_fits_on_the_folder_and_has_nothing_to_score(flat, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    results = train(compose_config("train", [*FOLDER, f"dataset.root={flat}", "method=itq"], tmp_path / "run"))
    why = "dataset=folder has no labels, which mAP needs"
    assert results["not_evaluated"] == why and "mAP" not in results and results["steps"] == 0
    assert json.loads((tmp_path / "run" / "metrics.json").read_text()) == results  # no score, not a null one
    assert not (tmp_path / "run" / "plots").exists()
    checkpoint = tmp_path / "run" / "checkpoints" / "last.ckpt"
    assert checkpoint.is_file() and read_checkpoint(checkpoint)["datamodule_hyper_parameters"]["crop_size"] == 32
    line = f"no evaluation: {why}; the checkpoint encodes and serves it"
    assert [r.getMessage() for r in caplog.records].count(line) == 1
    notes = []
    assert collect([tmp_path / "run"], notes) == [] and notes == [f"left out {tmp_path / 'run'}: not evaluated ({why})"]

    caplog.clear()  # the evaluation of its checkpoint says the same, and writes nothing
    assert evaluate(compose_config("evaluate", [*EVALUATE, f"dataset.root={flat}", f"ckpt_path={checkpoint}"],
                                   tmp_path / "eval")) == {"not_evaluated": why}
    assert [r.getMessage() for r in caplog.records][-1] == line and not (tmp_path / "eval").exists()
