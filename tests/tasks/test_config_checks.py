"""The training config's own checks (hashnet.tasks.checks): top-level numbers, with a fix that works as printed; every
dataset with its recipe, a named run and explicit settings pass."""
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


@pytest.mark.parametrize("overrides", [["dataset=digits_multi"], ["dataset=coco", "net=resnet50", "hash_bit=48"],
                                       ["dataset=coco", "net.pretrained=false", "max_steps=99"],
                                       ["dataset=fashion_mnist"], ["experiment=dhn_cifar10_1_alexnet"]])
def test_datasets_with_their_recipes_named_runs_and_explicit_settings_pass(overrides, tmp_path):
    check_train_config(compose_config("train", overrides, tmp_path))
