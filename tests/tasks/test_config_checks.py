"""The training config's own checks (hashnet.tasks.checks): top-level numbers, and train.yaml's settings refused on a
dataset they do not suit, with a fix that works as printed."""
import shlex

import pytest

from hashnet.tasks.checks import check_train_config
from hashnet.utils.errors import ConfigError

from conftest import compose_config


@pytest.mark.parametrize("value, fix", [(0, "hash_bit=48"), (-8, "hash_bit=48"), (4.5, "hash_bit=48"),
                                        ("48", "hash_bit=48"), (True, "hash_bit=48"), (44, "hash_bit=40 or hash_bit=48"),
                                        (12, "hash_bit=8 or hash_bit=16"), (100000, "hash_bit=48")])
def test_hash_bit_is_a_multiple_of_8_within_the_bound(value, fix, tmp_path):
    cfg = compose_config("train", [], tmp_path)
    cfg.hash_bit = value
    with pytest.raises(ConfigError, match=r"hash_bit=.*: it must be a multiple of 8 from 8 to 1024 \(codes are stored 8 bits "
                                          rf"a byte\) -- pass e.g. {fix}$"):
        check_train_config(cfg)


@pytest.mark.parametrize("key, value", [("max_steps", 0), ("val_every", -1), ("optim.lr", 0), ("hash_lr_mult", "x"),
                                        ("seed", "abc")])
def test_top_level_numbers_are_refused_by_key(key, value, tmp_path):
    with pytest.raises(ConfigError, match=rf"^{key}={value!r}: it must be"):
        check_train_config(compose_config("train", [f"{key}={value}"], tmp_path))


def test_a_paper_dataset_with_the_default_runs_settings_is_refused_with_the_paper_command(tmp_path):
    overrides = ["dataset=coco", "net=resnet50", "hash_bit=48"]
    with pytest.raises(ConfigError) as err:
        check_train_config(compose_config("train", overrides, tmp_path))
    message = str(err.value)
    assert message.startswith("dataset=coco with train.yaml's own settings would train a net from scratch for 250 steps")
    command = message.split("10,000 steps): ")[1].split(" (add")[0]
    assert command == "python scripts/train.py experiment=paper dataset=coco net=resnet50 hash_bit=48"
    fixed = compose_config("train", shlex.split(command)[2:], tmp_path)
    check_train_config(fixed)
    assert (fixed.max_steps, fixed.net.pretrained, fixed.optim.lr, fixed.lr_schedule.step_size) == (10000, True, 3e-4, 2000)
    check_train_config(compose_config("train", [*shlex.split(command)[2:], "net.pretrained=false"], tmp_path))


@pytest.mark.parametrize("overrides", [["dataset=digits_multi"], ["dataset=coco", "net.pretrained=true", "max_steps=99"],
                                       ["experiment=hashnet_coco_alexnet"], ["experiment=dhn_cifar10_1_alexnet"]])
def test_embedded_datasets_named_runs_and_explicit_settings_pass(overrides, tmp_path):
    check_train_config(compose_config("train", overrides, tmp_path))
