"""The one-line protocol of a mAP number (hashnet.data.protocol), how a run finds its own, and its config keys."""
from types import SimpleNamespace

import pytest
import torch

from hashnet.data.protocol import Protocol, queries_in_database, split_of
from hashnet.outputs.results import evaluation_protocol
from hashnet.retrieval.evaluation import evaluate_retrieval
from hashnet.tasks.setup import build_datamodule
from hashnet.utils.errors import ConfigError

from conftest import compose_config


def test_the_line_names_every_convention():
    assert str(Protocol(5000, "index", "drop", True, "original")) == \
        "mAP@5000 ties=index empty=drop queries-in-database=yes split=original"
    assert str(Protocol(None, "average", "zero", False, "strict")) == \
        "mAP@all ties=average empty=zero queries-in-database=no split=strict"
    assert str(Protocol(1000)) == "mAP@1000 ties=index empty=drop queries-in-database=unknown split=original"
    assert Protocol(1000) == Protocol(1000, "index", "drop", None, "original") != Protocol(1000, empty_queries="zero")


def test_unknown_conventions_are_refused():
    with pytest.raises(ValueError, match=r"ties='random': it must be one of \['index', 'average'\]"):
        Protocol(10, ties="random")
    with pytest.raises(ValueError, match=r"empty_queries='nan': it must be one of \['drop', 'zero'\]"):
        Protocol(10, empty_queries="nan")
    with pytest.raises(ValueError, match=r"split='heldout': it must be one of \['original', 'strict'\]"):
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


def test_a_run_finds_its_protocol_from_the_retrieval_and_the_datamodule():
    model = SimpleNamespace(topk=5000, ties="average", empty_queries="zero")
    coco_like = fake_datamodule(["q0.jpg", "q1.jpg"], ["d0.jpg", "q1.jpg"])
    assert str(evaluation_protocol(model, coco_like)) == \
        "mAP@5000 ties=average empty=zero queries-in-database=yes split=original"
    strict = fake_datamodule(["q0.jpg"], ["d0.jpg"], drop_unlabeled=True)
    assert evaluation_protocol(model, strict) == Protocol(5000, "average", "zero", False, "strict")
    # no image paths: "no" only when the option left the queries out, else unknown
    pathless = SimpleNamespace(drop_unlabeled=False, exclude_queries_from_database=True)
    assert evaluation_protocol(model, pathless) == Protocol(5000, "average", "zero", False, "strict")
    assert evaluation_protocol(model, None) == Protocol(5000, "average", "zero", None, "original")
    # continuous outputs ranked by score break ties by index whatever dataset.ties says
    outputs, labels = torch.tensor([[0.5, -0.2], [0.1, 0.3]]), torch.eye(2)
    scored = evaluate_retrieval(outputs, labels, outputs, labels, None, "continuous", "average", "zero")
    assert evaluation_protocol(scored, None) == Protocol(None, "index", "zero", None, "original")


def test_conventions_are_dataset_keys_checked_before_anything_is_built(tmp_path):
    cfg = compose_config("train", ["dataset=coco", "dataset.empty_queries=zero", "dataset.ties=average"], tmp_path)
    assert (cfg.dataset.ties, cfg.dataset.empty_queries) == ("average", "zero")
    defaults = compose_config("evaluate", ["dataset=digits"], tmp_path).dataset
    assert (defaults.ties, defaults.empty_queries) == ("index", "drop")
    bad = compose_config("train", ["dataset=coco", "dataset.empty_queries=skip"], tmp_path)
    with pytest.raises(ConfigError, match=r"dataset.empty_queries='skip': it must be one of \['drop', 'zero'\] -- pass "
                                          r"e.g. dataset.empty_queries=drop"):
        build_datamodule(bad)  # the DataModule checks its settings before reading anything


def test_a_protocol_with_unseen_classes_names_them():
    line = str(Protocol(None, "index", "drop", False, "original", (5, 6, 9)))
    assert line == "mAP@all ties=index empty=drop queries-in-database=no split=original unseen=5,6,9"


def test_several_cut_offs_come_from_one_scan_and_the_first_is_the_runs_map():
    codes = torch.tensor([[1, 1], [1, -1], [-1, -1], [1, 1]], dtype=torch.float32)
    labels = torch.tensor([[1, 0], [0, 1], [1, 0], [1, 0]])
    both = evaluate_retrieval(codes[:1], labels[:1], codes, labels, [None, 1])
    # query [1, 1] of class 0: ranking 0 (d=0, relevant), 3 (d=0, relevant), 1 (d=1), 2 (d=2, relevant)
    # AP@all = (1/1 + 2/2 + 3/4) / 3 = 0.9167; AP@1 = 1
    assert both.mAP_at == {"all": pytest.approx(2.75 / 3), "1": 1.0}
    assert (both.topk, both.mAP) == (None, both.mAP_at["all"])
    assert evaluate_retrieval(codes[:1], labels[:1], codes, labels, 1).mAP_at == {"1": 1.0}
