"""A folder of images without labels (hashnet.data.builders.folder, labels "none" or a flat folder): its lists, the
refusal of methods that learn from labels, a fitted method trained on it, with no evaluation (train, evaluate and
the report say why), and ITQ and CIBHash from the folder to its search page."""
import io
import json
import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from hashnet.data.builders.folder import build_folder, count_classes
from hashnet.data.lists import read_list
from hashnet.inference.checkpoint import load_checkpoint
from hashnet.outputs.runs import collect
from hashnet.retrieval.codes import load_codes
from hashnet.tasks.encode import encode
from hashnet.tasks.evaluate import evaluate
from hashnet.tasks.serve import create_app
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


@pytest.mark.parametrize("method", ["itq", "cibhash"])
def test_a_method_without_labels_trains_on_the_folder_and_its_page_finds_each_image(flat, tmp_path, method):
    """The flat folder end to end: train (CIBHash 2 steps on two views a picture; ITQ fitted), encode every image of
    the folder (encode images=<dir>), and the page finds an uploaded image of it at distance 0."""
    steps = ["max_steps=2", "val_every=1000"] if method == "cibhash" else []
    results = train(compose_config("train", [*FOLDER, f"dataset.root={flat}", f"method={method}", *steps],
                                   tmp_path / "run"))
    assert results["steps"] == (2 if method == "cibhash" else 0) and "not_evaluated" in results
    checkpoint = tmp_path / "run" / "checkpoints" / "last.ckpt"
    codes_path = encode(compose_config("encode", [f"ckpt_path={checkpoint}", f"images={flat}", "num_workers=0",
                                                  f"out={tmp_path / 'photos.npz'}"], tmp_path / "encode"))
    database = load_codes(codes_path, hash_bit=8, dataset="folder")
    assert len(database) == 20 and database.labels.shape == (20, 0) and database.meta["method"] == method
    client = create_app(load_checkpoint(checkpoint), database, checkpoint=str(checkpoint), k=20).test_client()
    query = flat / "13.png"
    found = client.post("/api/search", data={"image": (io.BytesIO(query.read_bytes()), "13.png"), "k": "20"},
                        content_type="multipart/form-data").get_json()
    at_zero = [r["path"] for r in found["results"] if r["distance"] == 0]
    assert found["results"][0]["distance"] == 0 and str(query) in at_zero and len(found["results"]) == 20
    page = client.get("/?item=13&k=5").get_data(as_text=True)
    assert page.count('<figure class="result') == 5 and 'data-rank="1" data-distance="0"' in page
