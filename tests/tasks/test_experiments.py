"""Named runs as experiment files: every run of the old layout composes to the same effective settings under its new
command line (tests/tasks/runs_before.json, composed at commit b1f9d6b), except the changes listed here; each file
builds; the sweeps are configured; a paper experiment trains two steps on generated images."""
import json
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from hashnet.methods import METHODS
from hashnet.tasks.checks import check_train_config
from hashnet.tasks.setup import build_model
from hashnet.tasks.train import train

from conftest import CONFIGS, compose_config
from original_lists import write_original

BEFORE = json.loads((Path(__file__).with_name("runs_before.json")).read_text())["runs"]
DIGITS_MULTI_RUNS = {"hashnet": ["experiment=hashnet_digits_multi"], "dsh": ["experiment=dsh_digits_multi"]}
ABLATIONS = {"hashnet": "hashnet_digits_multi", "hashnet_w": "ablation_hashnet_w", "hashnet_sgn": "ablation_hashnet_sgn",
             "hashnet_c": "ablation_hashnet_c", "pairwise": "ablation_pairwise"}


def new_command(old: str) -> list[str]:
    """The overrides that give the run the old command line named, in this layout."""
    words = dict(word.split("=", 1) for word in old.split() if "=" in word)
    if old == "(no overrides)" or words.get("experiment") == "methods_digits":
        return []
    if words.get("experiment") == "methods_digits_multi":
        return DIGITS_MULTI_RUNS["hashnet"]
    if "ablation" in words:
        return [f"experiment={ABLATIONS[words['ablation']]}"]
    if "experiment" in words:
        return [f"experiment={words['experiment']}"]
    if "method" in words and words["dataset"] == "digits":
        return [f"method={words['method']}"]
    if "method" in words:
        return DIGITS_MULTI_RUNS.get(words["method"], ["dataset=digits_multi", f"method={words['method']}"])
    return ["experiment=paper", *old.split()]  # dataset=coco net=resnet50 hash_bit=48: a paper dataset's settings


# Intended changes, (key, old value, new value): HashNet's class_num is now auto, the paper's |S|/|S1| of the training
# labels, on every run that did not set a number (10.09 on digits where the digits recipe said 10; COCO with the
# default settings said 1, the original's setting that experiment=hashnet_coco_* still pins).
CLASS_NUM_AUTO = [("method.class_num", 10.0, "auto")]
CHANGED = {"(no overrides)": CLASS_NUM_AUTO, "method=hashnet dataset=digits": CLASS_NUM_AUTO,
           "experiment=methods_digits": CLASS_NUM_AUTO,
           "dataset=coco net=resnet50 hash_bit=48": [("method.class_num", 1.0, "auto")]}


def effective(cfg) -> dict:
    """What a run trains with, as runs_before.json records it: the DataModule's, net's, method's and optimiser's
    arguments, the lr multipliers that take effect, the lengths, the code length, the seed and the ranking."""
    c = OmegaConf.to_container(cfg, resolve=True)
    net = {key: c["net"][key] for key in ("backbone", "hash_bit", "pretrained", "channels_last")}
    if net["backbone"].startswith("vit"):
        net["image_size"] = c["net"]["image_size"]
    schedule = dict(c["lr_schedule"])
    if schedule["gamma"] == 1.0:
        schedule.pop("step_size")  # a constant lr: no step size takes effect
    if schedule["policy"] == "step":
        schedule.pop("power")  # only the inv policy reads it
    return {"dataset": c["dataset"], "net": net, "method": c["method"], "optim": c["optim"], "lr_schedule": schedule,
            **{key: c[key] for key in ("max_steps", "val_every", "ckpt_every", "hash_lr_mult", "hash_bit", "seed")},
            "eval_codes": c["model"]["eval_codes"]}


@pytest.mark.parametrize("old", sorted(BEFORE))
def test_every_run_of_the_old_layout_composes_to_the_same_settings(old, tmp_path):
    expected = json.loads(json.dumps(BEFORE[old]))
    for key, was, now in CHANGED.get(old, []):
        section, name = key.split(".")
        assert expected[section][name] == was
        expected[section][name] = now
    got = effective(compose_config("train", [*new_command(old), "paths.data_dir=data"], tmp_path))
    got["dataset"]["root"] = expected["dataset"]["root"] = got["dataset"]["root"].replace("data/", "")
    assert got == expected


def test_every_experiment_file_is_a_run_above_or_a_base():
    tested = {command[0].split("=")[1] for command in map(new_command, BEFORE) if command and "experiment=" in command[0]}
    names = {p.stem for p in (CONFIGS / "experiment").glob("*.yaml")}
    assert names == tested | {"paper", "fashion_mnist"}  # paper: the shared base, checked through the runs that
    # include it; fashion_mnist: the leaderboard's settings, new (below)


def test_the_fashion_mnist_board_settings(tmp_path):
    for dataset in ("fashion_mnist", "fashion_mnist_unseen"):
        cfg = compose_config("train", ["experiment=fashion_mnist", f"dataset={dataset}", "method=dpsh"], tmp_path)
        assert (cfg.dataset.name, cfg.hash_bit, cfg.max_steps, cfg.lr_schedule.step_size) == (dataset, 32, 600, 300)
        assert list(cfg.dataset.topk) == [None, 1000] and cfg.val_every > cfg.max_steps and cfg.ckpt_every == 600
        assert (cfg.optim._target_, cfg.optim.lr, cfg.net.pretrained) == ("torch.optim.Adam", 1e-4, False)


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
    cfg = compose_config("train", ["experiment=hashnet_coco_alexnet", "method.weighted=false", "net.pretrained=false"],
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
    assert table1.params == {"experiment": "hashnet_imagenet_alexnet,hashnet_nus_wide_alexnet,hashnet_coco_alexnet",
                             "hash_bit": "16,32,48,64"}
    subdir = OmegaConf.to_container(hydra_config([]).hydra.sweep)["subdir"]
    assert subdir == "${hydra.job.num}_${dataset.name}_${hydra:runtime.choices.method}_${net.backbone}_${hash_bit}bit_seed${seed}"


@pytest.mark.slow
@pytest.mark.parametrize("dataset", ["imagenet", "coco"])  # single- and multi-label (NUS-WIDE is as COCO)
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
