"""The paper's runs as experiment files, the ablation switches and sweeps: compose, instantiate, smoke-run."""
import json

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf

from hashnet.data.datamodule import HashDataModule
from hashnet.tasks.setup import build_model
from hashnet.tasks.train import train
from hashnet.training.module import HashingModule

from conftest import CONFIGS, compose_config
from original_lists import write_original

# (dataset, net) -> (lr, class_num): the original Caffe solvers / PyTorch README and Caffe class_num.
PAPER_RUNS = {
    ("imagenet", "alexnet"): (2e-4, 100.0), ("imagenet", "resnet50"): (3e-4, 100.0),
    ("nus_wide", "alexnet"): (5e-5, 5.0), ("nus_wide", "resnet50"): (3e-4, 5.0),
    ("coco", "alexnet"): (5e-5, 1.0), ("coco", "resnet50"): (3e-4, 1.0),
}
ABLATIONS = {  # name -> (weight of similar pairs, continuation, eval_codes) of the built model, on digits
    "hashnet": (10.0, True, "sign"), "hashnet_w": (1.0, True, "sign"), "hashnet_sgn": (10.0, False, "sign"),
    "hashnet_c": (10.0, True, "continuous"), "pairwise": (1.0, False, "sign"),
}


# name -> (dataset, net, method, optimizer, backbone lr, hash_lr_mult, batch, max_steps, (lr gamma, step_size)):
# each method's paper / reference code, as the experiment file's comments cite.
METHOD_RUNS = {
    "dhn_nus_wide_alexnet": ("nus_wide", "alexnet", "dhn", "RMSprop", 1e-5, 1.0, 128, 7110, (1.0, 2000)),
    "dhn_cifar10_1_alexnet": ("cifar10_1", "alexnet", "dhn", "RMSprop", 1e-5, 1.0, 128, 3600, (1.0, 2000)),
    "dpsh_cifar10_1_alexnet": ("cifar10_1", "alexnet", "dpsh", "RMSprop", 1e-5, 1.0, 64, 11850, (1.0, 2000)),
    "dpsh_coco_alexnet": ("coco", "alexnet", "dpsh", "RMSprop", 1e-5, 1.0, 64, 23550, (1.0, 2000)),
    "dsh_cifar10_1_alexnet": ("cifar10_1", "alexnet", "dsh", "RMSprop", 1e-5, 1.0, 64, 7110, (1.0, 2000)),
    "dsh_nus_wide_alexnet": ("nus_wide", "alexnet", "dsh", "RMSprop", 1e-5, 1.0, 64, 14130, (1.0, 2000)),
    "greedyhash_cifar10_2_alexnet": ("cifar10_2", "alexnet", "greedyhash", "SGD", 1e-3, 1.0, 32, 62520, (0.1, 31260)),
    "greedyhash_imagenet_alexnet": ("imagenet", "alexnet", "greedyhash", "SGD", 1e-3, 1.0, 64, 40800, (0.1, 16320)),
    "csq_imagenet_resnet50": ("imagenet", "resnet50", "csq", "Adam", 1e-5, 100.0, 64, 18360, (0.7, 2040)),
    "csq_coco_resnet50": ("coco", "resnet50", "csq", "Adam", 5e-5, 20.0, 64, 14130, (0.7, 1570)),
    "csq_cifar10_1_alexnet": ("cifar10_1", "alexnet", "csq", "Adam", 1e-3, 1.0, 128, 6000, (1.0, 2000)),
    "hashnet_cifar10_alexnet": ("cifar10", "alexnet", "hashnet", "RMSprop", 1e-5, 1.0, 128, 10000, (1.0, 2000)),
    "hashnet_cifar10_resnet50": ("cifar10", "resnet50", "hashnet", "RMSprop", 1e-5, 1.0, 128, 10000, (1.0, 2000)),
}
# name -> (method attribute, value): the method weight each file sets.
METHOD_WEIGHTS = {
    "greedyhash_cifar10_2_alexnet": ("penalty_weight", 0.1), "greedyhash_imagenet_alexnet": ("penalty_weight", 1.0),
    "csq_imagenet_resnet50": ("quantization_weight", 0.05), "csq_coco_resnet50": ("quantization_weight", 0.05),
    "csq_cifar10_1_alexnet": ("quantization_weight", 1e-4), "hashnet_cifar10_alexnet": ("class_num", 10.0),
    "hashnet_cifar10_resnet50": ("class_num", 10.0),
}
# The other CIFAR-10 protocols of each method: its reference setting on other data, the same epochs, so the
# steps (and the steps between lr decays) scale with the training set (5,000 or 50,000 images).
OTHER_PROTOCOLS = {  # name -> (base, dataset, step factor)
    "dhn_cifar10_alexnet": ("dhn_cifar10_1_alexnet", "cifar10", 1), "dhn_cifar10_2_alexnet": ("dhn_cifar10_1_alexnet", "cifar10_2", 10),
    "dpsh_cifar10_alexnet": ("dpsh_cifar10_1_alexnet", "cifar10", 1), "dpsh_cifar10_2_alexnet": ("dpsh_cifar10_1_alexnet", "cifar10_2", 10),
    "dsh_cifar10_alexnet": ("dsh_cifar10_1_alexnet", "cifar10", 1), "dsh_cifar10_2_alexnet": ("dsh_cifar10_1_alexnet", "cifar10_2", 10),
    "csq_cifar10_alexnet": ("csq_cifar10_1_alexnet", "cifar10", 1), "csq_cifar10_2_alexnet": ("csq_cifar10_1_alexnet", "cifar10_2", 10),
    "greedyhash_cifar10_alexnet": ("greedyhash_cifar10_2_alexnet", "cifar10", 0.1),
    "greedyhash_cifar10_1_alexnet": ("greedyhash_cifar10_2_alexnet", "cifar10_1", 0.1),
    "hashnet_cifar10_1_alexnet": ("hashnet_cifar10_alexnet", "cifar10_1", 1),  # train.yaml's 10,000 steps, as its base
    "hashnet_cifar10_2_alexnet": ("hashnet_cifar10_alexnet", "cifar10_2", 1),
}
for _name, (_base, _dataset, _factor) in OTHER_PROTOCOLS.items():
    *_settings, _steps, (_gamma, _step_size) = METHOD_RUNS[_base]
    _schedule = (_gamma, round(_step_size * _factor) if _gamma != 1.0 else _step_size)
    METHOD_RUNS[_name] = (_dataset, *_settings[1:], round(_steps * _factor), _schedule)
    if _base in METHOD_WEIGHTS:
        METHOD_WEIGHTS[_name] = METHOD_WEIGHTS[_base]
SWEEPS = ["ablations", "methods_digits", "methods_digits_multi"]


def test_every_experiment_file_is_tested():
    names = sorted(p.stem for p in (CONFIGS / "experiment").glob("*.yaml"))
    assert names == sorted([f"hashnet_{d}_{n}" for d, n in PAPER_RUNS] + [*METHOD_RUNS, *SWEEPS])
    assert sorted(p.stem for p in (CONFIGS / "ablation").glob("*.yaml")) == sorted(ABLATIONS)


@pytest.mark.parametrize("dataset,net", PAPER_RUNS)
def test_paper_experiment_composes_and_instantiates(dataset, net, tmp_path):
    cfg = compose_config("train", [f"experiment=hashnet_{dataset}_{net}", "hash_bit=32", "net.pretrained=false",
                                   f"paths.data_dir={tmp_path}"], tmp_path)
    lr, class_num = PAPER_RUNS[(dataset, net)]
    assert (cfg.dataset.name, cfg.net.backbone) == (dataset, net)
    assert (cfg.max_steps, cfg.lr_schedule.step_size, cfg.lr_schedule.gamma) == (10000, 2000, 0.5)
    datamodule = instantiate(cfg.dataset)
    assert isinstance(datamodule, HashDataModule) and datamodule.batch_size == 72 and datamodule.resize_size == 256
    model = build_model(cfg)
    assert isinstance(model, HashingModule) and model.hash_bit == 32 and model.method.class_num == class_num
    assert model.method.continuation and model.eval_codes == "sign"
    assert model.configure_optimizers()["optimizer"].param_groups[0]["lr"] == lr


@pytest.mark.parametrize("name", METHOD_RUNS)
def test_method_experiment_composes_and_instantiates(name, tmp_path):
    cfg = compose_config("train", [f"experiment={name}", "hash_bit=32", "net.pretrained=false",
                                   f"paths.data_dir={tmp_path}"], tmp_path)
    dataset, net, method, optimizer, lr, mult, batch, steps, (gamma, step_size) = METHOD_RUNS[name]
    assert (cfg.dataset.name, cfg.net.backbone, cfg.dataset.batch_size, cfg.max_steps) == (dataset, net, batch, steps)
    assert (cfg.lr_schedule.policy, cfg.lr_schedule.gamma, cfg.lr_schedule.step_size) == ("step", gamma, step_size)
    model = build_model(cfg)
    assert model.method.name == method and model.hash_bit == 32
    built = model.configure_optimizers()["optimizer"]
    assert type(built).__name__ == optimizer
    assert [group["lr"] for group in built.param_groups] == pytest.approx([lr, lr * mult])
    if name in METHOD_WEIGHTS:
        attribute, value = METHOD_WEIGHTS[name]
        assert getattr(model.method, attribute) == value


def test_experiment_pretrained_by_default(tmp_path):
    assert compose_config("train", ["experiment=hashnet_coco_alexnet"], tmp_path).net.pretrained is True


@pytest.mark.parametrize("ablation", ABLATIONS)
def test_each_ablation_is_one_switch(ablation, tmp_path):
    model = instantiate(compose_config("train", [f"ablation={ablation}"], tmp_path).model)  # digits: class_num 10
    assert (model.method.class_num, model.method.continuation, model.eval_codes) == ABLATIONS[ablation]


def test_ablation_switch_applies_over_a_paper_experiment(tmp_path):
    cfg = compose_config("train", ["experiment=hashnet_imagenet_alexnet", "ablation=hashnet_w", "net.pretrained=false"],
                         tmp_path)
    model = build_model(cfg)
    assert model.method.class_num == 1.0 and model.configure_optimizers()["optimizer"].param_groups[0]["lr"] == 2e-4


def test_an_ablation_that_changes_nothing_is_refused(tmp_path):
    # COCO's original setting is class_num 1: HashNet-W would train HashNet again.
    cfg = compose_config("train", ["experiment=hashnet_coco_alexnet", "ablation=hashnet_w", "net.pretrained=false"],
                         tmp_path)
    with pytest.raises(ValueError, match="method.weighted=false \\(HashNet-W\\) changes nothing here"):
        build_model(cfg)


def hydra_config(overrides: list[str]):
    with initialize_config_dir(str(CONFIGS), version_base="1.3"):
        return compose("train", overrides=overrides, return_hydra_config=True)


def test_sweeps_are_configured():
    ablations = hydra_config(["experiment=ablations"])
    assert ablations.hydra.sweeper.params == {"ablation": "hashnet,hashnet_w,hashnet_sgn,hashnet_c,pairwise"}
    assert (ablations.dataset.name, ablations.method.class_num, ablations.net.pretrained) == ("digits_multi", "auto", False)
    assert OmegaConf.to_container(ablations.hydra.sweep)["subdir"] == "${hydra.job.num}_${dataset.name}_${hydra:runtime.choices.ablation}_${hash_bit}bit_seed${seed}"
    for name, dataset in (("methods_digits", "digits"), ("methods_digits_multi", "digits_multi")):
        methods = hydra_config([f"experiment={name}", "method=dsh"])  # each method's own recipe is still picked
        assert (methods.hydra.runtime.choices.recipe, methods.dataset.name, methods.hash_bit) == (f"dsh_{dataset}",
                                                                                                  dataset, 48)
        assert methods.hydra.runtime.choices.dataset_recipe == dataset
        assert OmegaConf.to_container(methods.hydra.sweep)["subdir"] == (
            "${hydra.job.num}_${dataset.name}_${hydra:runtime.choices.method}_${hash_bit}bit_seed${seed}")
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
        *(["method.class_num=auto"] if dataset != "imagenet" else []),  # 8 one-hot rows of 100 classes share none
    ], tmp_path / "run")
    results = train(cfg)
    assert json.loads((tmp_path / "run" / "metrics.json").read_text()) == results
    assert (results["dataset"], results["net"], results["hash_bit"]) == (dataset, "alexnet", 16)
    assert (results["num_queries"], results["num_database"]) == (4, 12) and 0.0 <= results["mAP"] <= 1.0
    assert isinstance(cfg.method.class_num, float)  # auto was resolved before the model was built
