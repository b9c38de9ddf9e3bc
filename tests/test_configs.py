import pytest
import torchvision
from hydra.utils import instantiate
from omegaconf import OmegaConf

from hashnet.data.datamodule import HashDataModule
from hashnet.methods import METHODS
from hashnet.nets import BACKBONES, HashEncoder
from hashnet.tasks.setup import build_model, check_train_config
from hashnet.training.module import HashingModule

from conftest import CONFIGS, compose_config

NET_CONFIGS = sorted(p.stem for p in (CONFIGS / "net").glob("*.yaml"))
# ViT on the embedded datasets is built for their input size (configs/dataset_net/digits_vit_*.yaml).
EMBEDDED_IMAGE_SIZE = {"vit_b_16": 32, "vit_b_32": 64}

DATASETS = {"digits": (10, 1000), "digits_multi": (10, 1000), "imagenet": (100, 1000),
            "nus_wide": (21, 5000), "nus_wide_81": (81, 5000), "coco": (80, 5000),
            "cifar10": (10, None), "cifar10_1": (10, None), "cifar10_2": (10, None)}
ROOTS = {name: f"cifar10/{name}" for name in ("cifar10", "cifar10_1", "cifar10_2")}  # lists beside the shared images/


def test_every_net_config_is_a_torchvision_backbone():
    assert BACKBONES == tuple(torchvision.models.list_models(module=torchvision.models)) and len(BACKBONES) >= 80
    assert set(NET_CONFIGS) <= set(BACKBONES)
    assert {"alexnet", "resnet50", "vit_b_16", "swin_b", "convnext_base", "regnet_y_1_6gf"} <= set(NET_CONFIGS)


def test_every_method_option_has_a_config():
    assert sorted(p.stem for p in (CONFIGS / "method").glob("*.yaml")) == sorted(METHODS)


def test_every_dataset_option_is_tested():
    assert sorted(p.stem for p in (CONFIGS / "dataset").glob("*.yaml")) == sorted(DATASETS)


@pytest.mark.parametrize("dataset, net", [(dataset, "resnet50") for dataset in DATASETS] +
                         [(dataset, net) for dataset in ("digits", "digits_multi") for net in NET_CONFIGS] +
                         [("coco", "alexnet"), ("coco", "vit_b_16")])
def test_train_config_composes(dataset, net, tmp_path):
    cfg = compose_config("train", [f"dataset={dataset}", f"net={net}", "hash_bit=32"], tmp_path)
    num_classes, topk = DATASETS[dataset]
    embedded = dataset.startswith("digits")
    assert OmegaConf.to_container(cfg.net, resolve=True) == {
        "_target_": "hashnet.nets.HashEncoder", "backbone": net, "hash_bit": 32, "pretrained": not embedded,
        "channels_last": False, "image_size": EMBEDDED_IMAGE_SIZE.get(net) if embedded else None}
    assert (cfg.dataset.num_classes, cfg.dataset.topk, cfg.dataset.name) == (num_classes, topk, dataset)
    assert cfg.paths.output_dir == str(tmp_path)
    trainer = instantiate(cfg.trainer, logger=False, enable_checkpointing=False)
    assert trainer.max_steps == (250 if embedded else 10000)
    check_train_config(cfg)  # the net accepts the dataset's crop (else it raises naming the sizes to use)


@pytest.mark.parametrize("dataset", DATASETS)
def test_dataset_config_instantiates(dataset, tmp_path):
    cfg = compose_config("train", [f"dataset={dataset}", f"paths.data_dir={tmp_path}"], tmp_path)
    datamodule = instantiate(cfg.dataset)
    assert isinstance(datamodule, HashDataModule)
    assert datamodule.root == str(tmp_path / ROOTS.get(dataset, dataset))
    assert datamodule.list_path("query").name == "test.txt"


def test_paper_defaults_reach_the_built_model(tmp_path):
    cfg = compose_config("train", ["dataset=coco", "net.pretrained=false"], tmp_path)
    model = build_model(cfg)
    assert isinstance(model, HashingModule) and isinstance(model.net, HashEncoder) and model.method.name == "hashnet"
    assert (model.method.alpha, model.method.class_num, model.method.threshold, model.method.pairs) == (10 / 48, 1.0, 15.0, "halves")
    assert round(model.method.beta_at(9000), 2) == 6.78 and model.method.beta_at(199) == 1.0
    optimizer = model.configure_optimizers()["optimizer"]
    assert type(optimizer).__name__ == "SGD" and [g["lr"] for g in optimizer.param_groups] == [3e-4, pytest.approx(3e-3)]
    assert (optimizer.defaults["momentum"], optimizer.defaults["weight_decay"], optimizer.defaults["nesterov"]) == (0.9, 5e-4, True)
    scheduler = model.configure_optimizers()["lr_scheduler"]["scheduler"]
    assert [scheduler.lr_lambdas[0](step) for step in (1999, 2000, 4000)] == [1.0, 0.5, 0.25]
    assert instantiate(cfg.dataset).batch_size == 72 and (model.hparams.num_classes, model.hparams.multi_label) == (80, True)


def test_evaluate_config_needs_a_checkpoint(tmp_path):
    cfg = compose_config("evaluate", ["dataset=coco"], tmp_path)
    assert OmegaConf.is_missing(cfg, "ckpt_path")
    assert cfg.dataset.topk == 5000
