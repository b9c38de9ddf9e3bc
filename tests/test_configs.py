import pytest
import torchvision
from hydra.utils import instantiate
from omegaconf import OmegaConf

from hashnet.data import HashDataModule
from hashnet.guards import check_train_config
from hashnet.nets import BACKBONES
from conftest import CONFIGS, compose_config

NET_CONFIGS = sorted(p.stem for p in (CONFIGS / "net").glob("*.yaml"))
# ViT on the embedded datasets is built for their input size (configs/dataset_net/digits_vit_*.yaml).
EMBEDDED_IMAGE_SIZE = {"vit_b_16": 32, "vit_b_32": 64}

DATASETS = {"digits": (10, 1000), "digits_multi": (10, 1000), "imagenet": (100, 1000),
            "nus_wide": (21, 5000), "nus_wide_81": (81, 5000), "coco": (80, 5000)}


def test_every_net_config_is_a_torchvision_backbone():
    assert BACKBONES == tuple(torchvision.models.list_models(module=torchvision.models)) and len(BACKBONES) >= 80
    assert set(NET_CONFIGS) <= set(BACKBONES)
    assert {"alexnet", "resnet50", "vit_b_16", "swin_b", "convnext_base", "regnet_y_1_6gf"} <= set(NET_CONFIGS)


def test_every_dataset_option_is_tested():
    assert sorted(p.stem for p in (CONFIGS / "dataset").glob("*.yaml")) == sorted(DATASETS)


@pytest.mark.parametrize("dataset", DATASETS)
@pytest.mark.parametrize("net", NET_CONFIGS)
def test_train_config_composes(dataset, net, tmp_path):
    cfg = compose_config("train", [f"dataset={dataset}", f"net={net}", "hash_bit=32"], tmp_path)
    OmegaConf.resolve(cfg)
    num_classes, topk = DATASETS[dataset]
    embedded = dataset.startswith("digits")
    assert cfg.model.net == {"_target_": "hashnet.nets.HashNet", "backbone": net, "hash_bit": 32,
                             "pretrained": not embedded, "channels_last": False,
                             "image_size": EMBEDDED_IMAGE_SIZE.get(net) if embedded else None}
    assert (cfg.dataset.num_classes, cfg.model.topk, cfg.model.dataset) == (num_classes, topk, dataset)
    assert cfg.paths.output_dir == str(tmp_path)
    assert cfg.trainer.max_steps == (10000 if not dataset.startswith("digits") else cfg.max_steps)
    check_train_config(cfg)  # the net accepts the dataset's crop (else it raises naming the sizes to use)
    assert cfg.dataset.crop_size <= cfg.dataset.resize_size


@pytest.mark.parametrize("dataset", DATASETS)
def test_dataset_config_instantiates(dataset, tmp_path):
    cfg = compose_config("train", [f"dataset={dataset}", f"paths.data_dir={tmp_path}"], tmp_path)
    datamodule = instantiate(cfg.dataset)
    assert isinstance(datamodule, HashDataModule)
    assert datamodule.root == str(tmp_path / dataset)
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
