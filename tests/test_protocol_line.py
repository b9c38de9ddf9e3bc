"""The one-line protocol of a mAP number (hashnet.protocol), how a run finds its own, and its config keys."""
from types import SimpleNamespace

import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from conftest import compose_config
from hashnet.module import HashNetModule
from hashnet.protocol import Protocol, queries_in_database, split_of
from hashnet.results import evaluation_protocol


def test_the_line_names_every_convention():
    assert str(Protocol(5000, "index", "drop", True, "original")) == \
        "mAP@5000 ties=index empty=drop queries-in-database=yes split=original"
    assert str(Protocol(None, "average", "zero", False, "strict")) == \
        "mAP@all ties=average empty=zero queries-in-database=no split=strict"
    assert str(Protocol(1000)) == "mAP@1000 ties=index empty=drop queries-in-database=unknown split=original"
    assert Protocol(1000) == Protocol(1000, "index", "drop", None, "original") != Protocol(1000, empty_queries="zero")


def test_unknown_conventions_are_refused():
    with pytest.raises(ValueError, match=r"ties must be one of \['index', 'average'\], got 'random'"):
        Protocol(10, ties="random")
    with pytest.raises(ValueError, match=r"empty_queries must be one of \['drop', 'zero'\], got 'nan'"):
        Protocol(10, empty_queries="nan")
    with pytest.raises(ValueError, match=r"split must be one of \['original', 'strict'\], got 'heldout'"):
        Protocol(10, split="heldout")


def test_split_and_queries_in_database():
    assert [split_of(False, False), split_of(True, False), split_of(False, True)] == ["original", "strict", "strict"]
    assert queries_in_database(["a.png", "b.png"], ["c.png", "b.png"]) is True
    assert queries_in_database(["a.png"], ["c.png", "b.png"]) is False


def fake_datamodule(query_paths, db_paths, drop_unlabeled=False, exclude=False):
    """What evaluation_protocol reads of a HashDataModule: options and each split's image paths."""
    lists = {"query": query_paths, "database": db_paths}
    return SimpleNamespace(drop_unlabeled=drop_unlabeled, exclude_queries_from_database=exclude,
                           dataset=lambda split: SimpleNamespace(image_list=SimpleNamespace(paths=lists[split])))


def test_a_run_finds_its_protocol_from_the_model_and_the_datamodule():
    model = SimpleNamespace(topk=5000, ties="average", empty_queries="zero", eval_codes="sign")
    coco_like = fake_datamodule(["q0.jpg", "q1.jpg"], ["d0.jpg", "q1.jpg"])
    assert str(evaluation_protocol(model, coco_like)) == \
        "mAP@5000 ties=average empty=zero queries-in-database=yes split=original"
    strict = fake_datamodule(["q0.jpg"], ["d0.jpg"], drop_unlabeled=True)
    assert evaluation_protocol(model, strict) == Protocol(5000, "average", "zero", False, "strict")
    # no image paths: "no" only when the option left the queries out, else unknown
    pathless = SimpleNamespace(drop_unlabeled=False, exclude_queries_from_database=True)
    assert evaluation_protocol(model, pathless) == Protocol(5000, "average", "zero", False, "strict")
    assert evaluation_protocol(model, None) == Protocol(5000, "average", "zero", None, "original")
    # continuous outputs ranked by score break ties by index whatever model.ties says
    model.eval_codes = "continuous"
    assert evaluation_protocol(model, None) == Protocol(5000, "index", "zero", None, "original")


def test_conventions_are_dataset_keys_that_reach_the_model(tmp_path):
    cfg = compose_config("train", ["dataset=coco", "dataset.empty_queries=zero", "dataset.ties=average"], tmp_path)
    OmegaConf.resolve(cfg)
    assert (cfg.model.ties, cfg.model.empty_queries) == ("average", "zero")
    defaults = compose_config("evaluate", ["dataset=digits"], tmp_path).dataset
    assert (defaults.ties, defaults.empty_queries) == ("index", "drop")
    bad = compose_config("train", ["dataset=coco", "dataset.empty_queries=skip", f"paths.data_dir={tmp_path}"], tmp_path)
    with pytest.raises(Exception, match=r"dataset.empty_queries must be one of \['drop', 'zero'\], got 'skip'"):
        instantiate(bad.dataset)  # Hydra wraps the ValueError, keeping its message


def test_the_module_refuses_unknown_conventions():
    net = {"_target_": "hashnet.nets.HashNet", "backbone": "resnet18", "hash_bit": 8, "pretrained": False}
    with pytest.raises(ValueError, match=r"model.ties must be one of \['index', 'average'\], got 'mean'"):
        HashNetModule(net, {}, {}, ties="mean")
