"""A dataset carries its recipe (configs/recipe/): naming the data names how to train on it. The values below are the
sources' (each file's YAML comments cite them): the original HashNet's per dataset and net (its Caffe solvers for
AlexNet, its PyTorch README for ResNet-50), the Fashion-MNIST board's, train.yaml's own for the digits. An experiment
file and the command line still win; the entry points that only read a dataset take no recipe."""
import pytest

from hashnet.tasks.checks import check_train_config
from hashnet.tasks.setup import build_model

from conftest import compose_config

# (dataset, net): (lr, class_num) of the original HashNet: Caffe solver base_lr and pairwise_param class_num for
# AlexNet, --lr 0.0003 of the PyTorch README for ResNet-50 with the same class_num
TABLE_1 = {("imagenet", "alexnet"): (2e-4, 100.0), ("imagenet", "resnet50"): (3e-4, 100.0),
           ("nus_wide", "alexnet"): (5e-5, 5.0), ("nus_wide", "resnet50"): (3e-4, 5.0),
           ("coco", "alexnet"): (5e-5, 1.0), ("coco", "resnet50"): (3e-4, 1.0)}


@pytest.mark.parametrize("dataset, net", sorted(TABLE_1))
def test_a_paper_dataset_and_net_compose_the_originals_settings(dataset, net, tmp_path):
    cfg = compose_config("train", [f"dataset={dataset}", f"net={net}", "hash_bit=48"], tmp_path)
    lr, class_num = TABLE_1[dataset, net]
    assert (cfg.optim._target_, cfg.optim.lr, cfg.optim.momentum, cfg.optim.weight_decay, cfg.optim.nesterov) == (
        "torch.optim.SGD", lr, 0.9, 5e-4, True)
    assert (cfg.method.name, cfg.method.class_num, cfg.net.backbone, cfg.net.pretrained) == ("hashnet", class_num, net, True)
    assert (cfg.max_steps, cfg.val_every, cfg.lr_schedule.step_size, cfg.lr_schedule.gamma, cfg.hash_bit) == (
        10000, 1000, 2000, 0.5, 48)
    assert (cfg.dataset.batch_size, cfg.hash_lr_mult, cfg.dataset.resize_size, cfg.dataset.crop_size) == (72, 10.0, 256, 224)


@pytest.mark.parametrize("dataset", ["nus_wide_81", "cifar10", "cifar10_1", "cifar10_2", "folder"])
def test_the_other_photo_datasets_take_the_originals_shared_settings(dataset, tmp_path):
    cfg = compose_config("train", [f"dataset={dataset}", "net=vgg16"], tmp_path)
    assert (cfg.net.pretrained, cfg.max_steps, cfg.val_every, cfg.lr_schedule.step_size, cfg.optim.lr) == (
        True, 10000, 1000, 2000, 3e-4)
    assert cfg.method.class_num == "auto"  # the original set no class_num here: the paper's |S|/|S1| of the labels


def test_another_method_on_a_paper_dataset_keeps_its_own_settings(tmp_path):
    cfg = compose_config("train", ["dataset=coco", "net=alexnet", "method=dsh", "net.pretrained=false"], tmp_path)
    assert "class_num" not in cfg.method and cfg.optim.lr == 5e-5 and cfg.max_steps == 10000
    check_train_config(cfg)
    assert build_model(cfg).method.name == "dsh"


@pytest.mark.parametrize("dataset", ["fashion_mnist", "fashion_mnist_unseen"])
def test_fashion_mnist_takes_the_boards_recipe(dataset, tmp_path):
    cfg = compose_config("train", [f"dataset={dataset}", "method=dpsh"], tmp_path)
    assert (cfg.dataset.name, cfg.hash_bit, cfg.max_steps, cfg.lr_schedule.step_size, cfg.ckpt_every) == (
        dataset, 32, 600, 300, 600)
    assert list(cfg.dataset.topk) == [None, 1000] and cfg.val_every > cfg.max_steps
    assert (cfg.optim._target_, cfg.optim.lr, cfg.net.pretrained, cfg.net.backbone) == (
        "torch.optim.Adam", 1e-4, False, "resnet18")  # DPSH's own optimiser (its method file), from scratch


@pytest.mark.parametrize("dataset", ["digits", "digits_multi"])
def test_the_digits_take_train_yamls_own_settings(dataset, tmp_path):
    cfg = compose_config("train", [f"dataset={dataset}"], tmp_path)
    assert (cfg.hash_bit, cfg.max_steps, cfg.val_every, cfg.lr_schedule.step_size, cfg.optim.lr, cfg.net.pretrained) == (
        48, 250, 125, 125, 2e-3, False)


def test_the_command_line_and_an_experiment_win_over_the_recipe(tmp_path):
    cfg = compose_config("train", ["dataset=coco", "net=alexnet", "max_steps=7", "optim.lr=1e-3", "method.class_num=2",
                                   "net.pretrained=false"], tmp_path)
    assert (cfg.max_steps, cfg.optim.lr, cfg.method.class_num, cfg.net.pretrained) == (7, 1e-3, 2.0, False)
    cfg = compose_config("train", ["experiment=dhn_nus_wide_alexnet"], tmp_path)  # DeepHash-pytorch's DHN.py
    assert (cfg.dataset.name, cfg.optim._target_, cfg.optim.lr, cfg.lr_schedule.gamma, cfg.max_steps) == (
        "nus_wide", "torch.optim.RMSprop", 1e-5, 1.0, 7110)  # not AlexNet's 5e-5 on NUS-WIDE (by_net/)
    assert (cfg.net.pretrained, cfg.val_every) == (True, 1000)  # from the dataset's recipe
    cfg = compose_config("train", ["experiment=csq_cifar10_1_alexnet", "dataset=cifar10"], tmp_path)
    assert (cfg.dataset.name, cfg.optim._target_, cfg.optim.lr, cfg.max_steps, cfg.dataset.batch_size) == (
        "cifar10", "torch.optim.Adam", 1e-3, 6000, 128)


@pytest.mark.parametrize("config", ["evaluate", "encode", "export", "check_lists"])
def test_the_entry_points_that_read_a_dataset_take_no_recipe(config, tmp_path):
    cfg = compose_config(config, ["dataset=fashion_mnist", *(["ckpt_path=x.ckpt"] if config != "check_lists" else [])],
                         tmp_path)
    assert cfg.get("hash_bit") is None and cfg.get("max_steps") in (None, 0) and "optim" not in cfg or not cfg.optim
    assert cfg.dataset.name == "fashion_mnist" and "lr_schedule" not in cfg
