"""Named runs as experiment files: each file builds and passes the checks; an ablation that changes nothing is
refused; the sweeps are configured; a paper dataset trains two steps on generated images with its recipe. The values
each recipe composes to are tests/test_recipes.py's."""
import json

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from hashnet.methods import METHODS
from hashnet.tasks.checks import check_train_config
from hashnet.tasks.setup import build_model
from hashnet.tasks.train import train

from conftest import CONFIGS, compose_config
from original_lists import write_original

ABLATIONS = {"hashnet": "hashnet_digits_multi", "hashnet_w": "ablation_hashnet_w", "hashnet_sgn": "ablation_hashnet_sgn",
             "hashnet_c": "ablation_hashnet_c", "pairwise": "ablation_pairwise"}


@pytest.mark.parametrize("name", sorted(p.stem for p in (CONFIGS / "experiment").glob("*.yaml")))
def test_every_experiment_builds_and_passes_the_checks(name, tmp_path):
    overrides = [f"experiment={name}", "hash_bit=32", "net.pretrained=false"]
    cfg = compose_config("train", overrides, tmp_path)
    if cfg.method.name == "hashnet" and cfg.method.class_num == "auto":
        cfg.method.class_num = 2.8 if cfg.dataset.name == "digits_multi" else 10.0  # resolved from labels in train()
    check_train_config(cfg)
    model = build_model(cfg)
    assert model.method.name == cfg.method.name and type(model.method) is METHODS[cfg.method.name]
    assert model.hash_bit == 32


def test_a_hashnet_w_run_where_class_num_is_already_one_is_refused(tmp_path):
    cfg = compose_config("train", ["dataset=coco", "net=alexnet", "method.weighted=false", "net.pretrained=false"],
                         tmp_path)
    with pytest.raises(ValueError, match="method.weighted=false \\(HashNet-W\\) changes nothing here"):
        build_model(cfg)


def hydra_config(overrides: list[str]):
    with initialize_config_dir(str(CONFIGS), version_base="1.3"):
        return compose("train", overrides=overrides, return_hydra_config=True)


def test_sweeps_are_configured():
    ablations = hydra_config(["hydra/sweeper=ablations"]).hydra.sweeper
    assert ablations.params == {"experiment": ",".join(ABLATIONS.values())}
    table1 = hydra_config(["hydra/sweeper=paper_table1"]).hydra.sweeper
    assert table1._target_ == "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"
    assert table1.params == {"dataset": "imagenet,nus_wide,coco", "net": "alexnet", "hash_bit": "16,32,48,64"}
    subdir = OmegaConf.to_container(hydra_config([]).hydra.sweep)["subdir"]
    assert subdir == "${hydra.job.num}_${dataset.name}_${hydra:runtime.choices.method}_${net.backbone}_${hash_bit}bit_seed${seed}"


@pytest.mark.slow
@pytest.mark.parametrize("dataset", ["imagenet", "coco"])  # single- and multi-label (NUS-WIDE is as COCO)
# ResNet-18, not the paper's AlexNet: the lists and recipes are the point, and AlexNet's 58M weights took 30 s a run
def test_two_step_smoke_run_on_generated_images(dataset, tmp_path):
    fake = write_original(tmp_path / "data", dataset, size=70, suffix=".jpg", unlabeled=1, queries_in_database=2)
    cfg = compose_config("train", [
        f"dataset={dataset}", "net=resnet18", f"paths.data_dir={tmp_path / 'data'}",
        f"dataset.path_map={{{fake.prefix}: {fake.root}/}}", "net.pretrained=false", "hash_bit=16",
        "dataset.resize_size=64", "dataset.crop_size=64", "dataset.batch_size=4", "dataset.eval_batch_size=32",
        "dataset.num_workers=0", "max_steps=2", "val_every=1000", "trainer.accelerator=cpu",
        *(["method.class_num=auto"] if dataset != "imagenet" else []),  # 8 one-hot rows of 100 classes share none
    ], tmp_path / "run")
    results = train(cfg)
    assert json.loads((tmp_path / "run" / "metrics.json").read_text()) == results
    assert (results["dataset"], results["net"], results["hash_bit"]) == (dataset, "resnet18", 16)
    assert (results["num_queries"], results["num_database"]) == (4, 12) and 0.0 <= results["mAP"] <= 1.0
    assert isinstance(cfg.method.class_num, float)  # auto was resolved before the model was built
