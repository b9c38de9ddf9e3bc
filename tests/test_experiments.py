"""The paper's runs as experiment files, the ablation switches and sweeps: compose, instantiate, smoke-run."""
import json

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf

from conftest import CONFIGS, compose_config
from hashnet.data import HashDataModule
from hashnet.module import HashNetModule
from hashnet.train import train
from original_lists import write_original

# (dataset, net) -> (lr, class_num): the original Caffe solvers / PyTorch README and Caffe class_num.
PAPER_RUNS = {
    ("imagenet", "alexnet"): (2e-4, 100.0), ("imagenet", "resnet50"): (3e-4, 100.0),
    ("nus_wide", "alexnet"): (5e-5, 5.0), ("nus_wide", "resnet50"): (3e-4, 5.0),
    ("coco", "alexnet"): (5e-5, 1.0), ("coco", "resnet50"): (3e-4, 1.0),
}
ABLATIONS = {  # name -> (class_num, continuation.enabled, eval_codes), on top of HashNet on COCO-less digits
    "hashnet": (10.0, True, "sign"), "hashnet_w": (1.0, True, "sign"), "hashnet_sgn": (10.0, False, "sign"),
    "hashnet_c": (10.0, True, "continuous"), "pairwise": (1.0, False, "sign"),
}


def test_every_experiment_file_is_tested():
    names = sorted(p.stem for p in (CONFIGS / "experiment").glob("*.yaml"))
    assert names == sorted([f"hashnet_{d}_{n}" for d, n in PAPER_RUNS] + ["ablations"])
    assert sorted(p.stem for p in (CONFIGS / "ablation").glob("*.yaml")) == sorted(ABLATIONS)


@pytest.mark.parametrize("dataset,net", PAPER_RUNS)
def test_paper_experiment_composes_and_instantiates(dataset, net, tmp_path):
    cfg = compose_config("train", [f"experiment=hashnet_{dataset}_{net}", "hash_bit=32", "net.pretrained=false",
                                   f"paths.data_dir={tmp_path}"], tmp_path)
    lr, class_num = PAPER_RUNS[(dataset, net)]
    assert (cfg.dataset.name, cfg.net.backbone, cfg.optim.lr, cfg.loss.class_num) == (dataset, net, lr, class_num)
    assert (cfg.max_steps, cfg.dataset.batch_size, cfg.optim.schedule.step_size, cfg.optim.schedule.gamma) == (
        10000, 72, 2000, 0.5)
    assert cfg.continuation.enabled and cfg.model.eval_codes == "sign" and cfg.dataset.resize_size == 256
    assert isinstance(instantiate(cfg.dataset), HashDataModule)
    model = instantiate(cfg.model)
    assert isinstance(model, HashNetModule) and model.hash_bit == 32 and model.class_num == class_num
    assert model.hparams.optim["lr"] == lr and model.topk == cfg.dataset.topk


def test_experiment_pretrained_by_default(tmp_path):
    assert compose_config("train", ["experiment=hashnet_coco_alexnet"], tmp_path).net.pretrained is True


@pytest.mark.parametrize("ablation", ABLATIONS)
def test_each_ablation_is_one_switch(ablation, tmp_path):
    cfg = compose_config("train", [f"ablation={ablation}"], tmp_path)  # digits: HashNet has class_num 10
    assert (cfg.loss.class_num, cfg.continuation.enabled, cfg.model.eval_codes) == ABLATIONS[ablation]
    assert instantiate(cfg.continuation).enabled == ABLATIONS[ablation][1]


def test_ablation_switch_applies_over_a_paper_experiment(tmp_path):
    cfg = compose_config("train", ["experiment=hashnet_imagenet_alexnet", "ablation=hashnet_w"], tmp_path)
    assert cfg.loss.class_num == 1.0 and cfg.optim.lr == 2e-4


def hydra_config(overrides: list[str]):
    with initialize_config_dir(str(CONFIGS), version_base="1.3"):
        return compose("train", overrides=overrides, return_hydra_config=True)


def test_sweeps_are_configured():
    ablations = hydra_config(["experiment=ablations"])
    assert ablations.hydra.sweeper.params == {"ablation": "hashnet,hashnet_w,hashnet_sgn,hashnet_c,pairwise"}
    assert (ablations.dataset.name, ablations.loss.class_num, ablations.net.pretrained) == ("digits_multi", "auto", False)
    assert OmegaConf.to_container(ablations.hydra.sweep)["subdir"] == "${hydra.job.num}_${dataset.name}_${hydra:runtime.choices.ablation}_${hash_bit}bit_seed${seed}"
    table1 = hydra_config(["hydra/sweeper=paper_table1"]).hydra.sweeper
    assert table1._target_ == "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"
    assert table1.params == {"experiment": "hashnet_imagenet_alexnet,hashnet_nus_wide_alexnet,hashnet_coco_alexnet",
                             "hash_bit": "16,32,48,64"}


@pytest.mark.slow
@pytest.mark.parametrize("dataset", ["imagenet", "nus_wide", "coco"])
def test_two_step_smoke_run_on_generated_images(dataset, tmp_path):
    fake = write_original(tmp_path / "data", dataset, size=70, suffix=".jpg", unlabeled=1, queries_in_database=2)
    cfg = compose_config("train", [
        f"experiment=hashnet_{dataset}_alexnet", f"paths.data_dir={tmp_path / 'data'}",
        f"dataset.path_map={{{fake.prefix}: {fake.root}/}}", "net.pretrained=false", "hash_bit=16",
        "dataset.resize_size=64", "dataset.crop_size=64", "dataset.batch_size=4", "dataset.eval_batch_size=32",
        "dataset.num_workers=0", "max_steps=2", "val_every=2", "trainer.accelerator=cpu",
        *(["loss.class_num=auto"] if dataset != "imagenet" else []),  # 8 one-hot rows of 100 classes share none
    ], tmp_path / "run")
    results = train(cfg)
    assert json.loads((tmp_path / "run" / "metrics.json").read_text()) == results
    assert (results["dataset"], results["net"], results["hash_bit"]) == (dataset, "alexnet", 16)
    assert (results["num_queries"], results["num_database"]) == (4, 12) and 0.0 <= results["mAP"] <= 1.0
    assert isinstance(cfg.loss.class_num, float)  # auto was resolved before the model was built
