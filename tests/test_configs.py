"""The config groups: every option composes into what its class takes, the default run's and the paper's settings reach
the built objects, and the lists of options are the config folders and torchvision's models (no table to keep in step)."""
import re

import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from hashnet.data.datamodule import HashDataModule
from hashnet.nets import BACKBONES, HashEncoder
from hashnet.tasks.checks import check_train_config
from hashnet.tasks.setup import build_datamodule, build_model
from hashnet.training.module import HashingModule
from hashnet.utils.errors import ConfigError

from conftest import CONFIGS, compose_config, resolved_model, write_image_tree

DATASET_CONFIGS = sorted(p.stem for p in (CONFIGS / "dataset").glob("*.yaml"))


def test_net_is_any_torchvision_classification_model_without_a_file():
    assert len(BACKBONES) >= 80  # torchvision's classification models (0.29: 80)
    assert {"alexnet", "resnet50", "vit_b_16", "swin_b", "convnext_base", "regnet_y_1_6gf"} <= set(BACKBONES)
    assert not (CONFIGS / "net").exists()  # hashnet/nets/configs.py registers net=<name> for each


@pytest.mark.parametrize("net", ["alexnet", "resnet50", "vit_b_16", "swin_t", "inception_v3"])
def test_net_composes_a_torchvision_model_on_the_base(net, tmp_path):
    cfg = compose_config("train", [f"net={net}", "hash_bit=32"], tmp_path)
    assert OmegaConf.to_container(cfg.net, resolve=True) == {
        "_target_": "hashnet.nets.HashEncoder", "backbone": net, "hash_bit": 32, "pretrained": False,
        "channels_last": False, "image_size": 32}


def test_every_net_takes_the_digits_or_says_which_sizes_to_pass(tmp_path):
    cfg = compose_config("train", ["hash_bit=32"], tmp_path)
    refused = []
    for net in BACKBONES:  # what net=<name> gives, without composing 80 times (the test above composes a few)
        cfg.net.backbone = net
        try:
            check_train_config(cfg)
        except ConfigError as err:  # e.g. AlexNet needs 63 px: the message's sizes work as typed
            fix = re.search(r"use ((?:dataset\.\w+=\d+ ?)+)", str(err)).group(1).split()
            check_train_config(compose_config("train", [f"net={net}", *fix], tmp_path))
            refused.append(net)
    assert {"alexnet", "inception_v3", "swin_t"} <= set(refused) and not {"resnet18", "vit_b_16"} & set(refused)


@pytest.mark.parametrize("dataset", DATASET_CONFIGS)
def test_every_dataset_config_builds_its_datamodule(dataset, tmp_path):
    # the folder dataset is the user's own image tree: a small one here
    root = [f"dataset.root={write_image_tree(tmp_path / 'photos', {'a': 3, 'b': 3})}"] if dataset == "folder" else []
    overrides = [f"dataset={dataset}", "net.pretrained=false", f"paths.data_dir={tmp_path}", *root]  # no weights here
    cfg = compose_config("train", overrides, tmp_path)
    check_train_config(cfg)
    module = build_datamodule(cfg)
    assert isinstance(module, HashDataModule) and module.name == dataset == cfg.dataset.name
    assert module.root.startswith(str(tmp_path)) and module.list_path("query").name == "test.txt"
    assert module.num_classes > 1 and cfg.model.num_classes == module.num_classes


def test_the_default_run_reaches_the_built_objects(digits_root, tmp_path):
    cfg = compose_config("train", [f"paths.data_dir={digits_root.parent}"], tmp_path)
    model = resolved_model(cfg)
    assert (model.method.name, model.hash_bit, model.net.backbone_name, model.hparams.dataset) == (
        "hashnet", 48, "resnet18", "digits")
    assert model.method.class_num == pytest.approx(1000 * 999 / (10 * 100 * 99))  # auto: |S|/|S1| of 10 x 100 digits
    optimizer = model.configure_optimizers()["optimizer"]
    assert type(optimizer).__name__ == "SGD" and [g["lr"] for g in optimizer.param_groups] == [2e-3, pytest.approx(2e-2)]
    trainer = instantiate(cfg.trainer, logger=False, enable_checkpointing=False)
    assert (trainer.max_steps, cfg.val_every, cfg.lr_schedule.step_size) == (250, 125, 125)


def test_the_paper_settings_reach_the_built_model(tmp_path):
    cfg = compose_config("train", ["dataset=coco", "net=resnet50", "net.pretrained=false"], tmp_path)
    model = build_model(cfg)
    assert isinstance(model, HashingModule) and isinstance(model.net, HashEncoder) and model.method.name == "hashnet"
    assert (model.method.alpha, model.method.class_num, model.method.threshold, model.method.pairs) == (10 / 48, 1.0, 15.0, "halves")
    assert round(model.method.beta_at(9000), 2) == 6.78 and model.method.beta_at(199) == 1.0
    optimizer = model.configure_optimizers()["optimizer"]
    assert type(optimizer).__name__ == "SGD" and [g["lr"] for g in optimizer.param_groups] == [3e-4, pytest.approx(3e-3)]
    assert (optimizer.defaults["momentum"], optimizer.defaults["weight_decay"], optimizer.defaults["nesterov"]) == (0.9, 5e-4, True)
    scheduler = model.configure_optimizers()["lr_scheduler"]["scheduler"]
    assert [scheduler.lr_lambdas[0](step) for step in (1999, 2000, 4000)] == [1.0, 0.5, 0.25]
    assert (cfg.max_steps, cfg.val_every, cfg.dataset.batch_size, cfg.compile) == (10000, 1000, 72, False)
    assert (model.hparams.num_classes, model.hparams.multi_label, model.topk) == (80, True, 5000)


def test_evaluate_config_needs_a_checkpoint(tmp_path):
    cfg = compose_config("evaluate", ["dataset=coco"], tmp_path)
    assert OmegaConf.is_missing(cfg, "ckpt_path")
    assert cfg.dataset.topk == 5000
