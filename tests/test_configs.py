import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from hashnet.data import HashDataModule
from hashnet.nets import BACKBONES
from conftest import CONFIGS, compose_config

DATASETS = {"digits": (10, 1000), "digits_multi": (10, 1000), "imagenet": (100, 1000),
            "nus_wide": (21, 5000), "nus_wide_81": (81, 5000), "coco": (80, 5000),
            "cifar10": (10, None), "cifar10_1": (10, None), "cifar10_2": (10, None)}
ROOTS = {name: f"cifar10/{name}" for name in ("cifar10", "cifar10_1", "cifar10_2")}  # lists beside the shared images/


def test_every_net_option_has_a_config():
    assert sorted(p.stem for p in (CONFIGS / "net").glob("*.yaml")) == sorted(BACKBONES)


def test_every_dataset_option_is_tested():
    assert sorted(p.stem for p in (CONFIGS / "dataset").glob("*.yaml")) == sorted(DATASETS)


@pytest.mark.parametrize("dataset", DATASETS)
@pytest.mark.parametrize("net", BACKBONES)
def test_train_config_composes(dataset, net, tmp_path):
    cfg = compose_config("train", [f"dataset={dataset}", f"net={net}", "hash_bit=32"], tmp_path)
    OmegaConf.resolve(cfg)
    num_classes, topk = DATASETS[dataset]
    assert cfg.model.net == {"_target_": "hashnet.nets.HashNet", "backbone": net, "hash_bit": 32,
                             "pretrained": not dataset.startswith("digits"), "channels_last": False}
    assert (cfg.dataset.num_classes, cfg.model.topk, cfg.model.dataset) == (num_classes, topk, dataset)
    assert cfg.paths.output_dir == str(tmp_path)
    assert cfg.trainer.max_steps == (10000 if not dataset.startswith("digits") else cfg.max_steps)


@pytest.mark.parametrize("dataset", DATASETS)
def test_dataset_config_instantiates(dataset, tmp_path):
    cfg = compose_config("train", [f"dataset={dataset}", f"paths.data_dir={tmp_path}"], tmp_path)
    datamodule = instantiate(cfg.dataset)
    assert isinstance(datamodule, HashDataModule)
    assert datamodule.root == str(tmp_path / ROOTS.get(dataset, dataset))
    assert datamodule.list_path("query").name == "test.txt"


def test_paper_defaults(tmp_path):
    cfg = compose_config("train", ["dataset=coco"], tmp_path)
    assert cfg.optim.schedule == {"policy": "step", "gamma": 0.5, "step_size": 2000, "power": 0.75}
    assert (cfg.optim.momentum, cfg.optim.weight_decay, cfg.optim.nesterov, cfg.optim.hash_lr_mult) == (0.9, 5e-4, True, 10.0)
    assert (cfg.continuation.gamma, cfg.continuation.power, cfg.continuation.step_size) == (0.005, 0.5, 200)
    assert cfg.dataset.batch_size == 72 and cfg.loss.pairs == "halves" and cfg.loss.threshold == 15.0


def test_evaluate_config_needs_a_checkpoint(tmp_path):
    cfg = compose_config("evaluate", ["dataset=coco"], tmp_path)
    assert OmegaConf.is_missing(cfg, "ckpt_path")
    assert cfg.dataset.topk == 5000


@pytest.mark.parametrize("dataset", ["digits", "digits_multi"])
@pytest.mark.parametrize("net", BACKBONES)
def test_embedded_datasets_pick_an_input_size_the_net_accepts(dataset, net, tmp_path):
    from hashnet.nets import min_input_size

    cfg = compose_config("train", [f"dataset={dataset}", f"net={net}"], tmp_path)
    assert min_input_size(net) <= cfg.dataset.crop_size <= cfg.dataset.resize_size
