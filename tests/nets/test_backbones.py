"""Every torchvision classification model as a HashNet backbone: the generic cut, input sizes, short trainings."""
import re
import warnings
from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn
from torchvision.models import get_model_weights

from hashnet.nets import HashEncoder
from hashnet.nets.backbones import BACKBONES, check_input_size, cut_classifier, input_size_rule, weights_follow
from hashnet.tasks.checks import check_train_config
from hashnet.tasks.train import train
from hashnet.utils.errors import ConfigError

from conftest import compose_config
from small_data import small_lists


def HashNet(backbone: str, hash_bit: int, pretrained: bool = False, image_size: int | None = None) -> HashEncoder:
    return HashEncoder(backbone, hash_bit, pretrained, channels_last=False, image_size=image_size)


def weights_on_meta(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every parameter and buffer a module registers goes to the meta device: shapes, no memory, no initialisation.

    Not torch.device("meta"), which puts every new tensor there: RegNet's builder computes its widths with torch
    and reads them back (.tolist()), which a meta tensor cannot do."""
    register_parameter, register_buffer = nn.Module.register_parameter, nn.Module.register_buffer

    def parameter_on_meta(module, name, param):
        register_parameter(module, name, None if param is None else nn.Parameter(param.to("meta"), param.requires_grad))

    def buffer_on_meta(module, name, tensor, persistent=True):
        register_buffer(module, name, None if tensor is None else tensor.to("meta"), persistent)
    monkeypatch.setattr(nn.Module, "register_parameter", parameter_on_meta)
    monkeypatch.setattr(nn.Module, "register_buffer", buffer_on_meta)


@pytest.mark.parametrize("backbone", BACKBONES)
def test_every_model_is_cut_at_its_penultimate_layer_and_gives_the_hash_layer_its_width(backbone, monkeypatch):
    weights_on_meta(monkeypatch)  # seconds to initialise the big ones (VGG, ViT-H, RegNet-Y-128GF) on the CPU: shapes only
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. GoogLeNet / Inception v3 warn unless init_weights is given
        net = HashNet(backbone, 16).eval()
    assert all(tensor.is_meta for tensor in net.state_dict().values())
    classes = len(get_model_weights(backbone).DEFAULT.meta["categories"])
    assert not [name for name, module in net.backbone.named_modules()  # the class layer is gone
                if getattr(module, "out_features", getattr(module, "out_channels", None)) == classes]
    size = input_size_rule(backbone, False)[0]
    images = torch.empty(2, 3, size, size, device="meta")
    features = net.backbone(images)  # meta: shapes only, each op checks its input's
    assert features.shape == (2, net.hash_layer.in_features) and net.hash_layer(features).shape == (2, 16)


# A real forward of the smallest input of a few families (ViT-B/16 from scratch built for one 16 px patch).
FORWARDS = {"resnet18": (None, 1, 512), "alexnet": (None, 63, 4096), "mobilenet_v3_small": (None, 1, 1024),
            "vit_b_16": (16, 16, 768)}


@pytest.mark.parametrize("backbone", FORWARDS)
def test_a_few_models_map_their_smallest_input_to_codes_on_the_cpu(backbone, one_thread):
    image_size, size, width = FORWARDS[backbone]
    assert input_size_rule(backbone, False, image_size)[0] == size
    torch.manual_seed(0)
    net = HashNet(backbone, 16, image_size=image_size).eval()
    images = torch.randn(2, 3, size, size)
    with torch.no_grad():
        features, codes = net.backbone(images), net(images)
    assert features.shape == (2, width) and net.hash_layer.in_features == width
    assert codes.shape == (2, 16) and torch.isfinite(codes).all() and not torch.equal(codes[0], codes[1])


# Where torchvision keeps each family's class layer, and the width of its input (the paper's fc7 for AlexNet/VGG).
HEADS = {"alexnet": ("classifier.6", 4096), "vgg16": ("classifier.6", 4096), "resnet50": ("fc", 2048),
         "vit_b_16": ("heads.head", 768), "convnext_tiny": ("classifier.2", 768),
         "efficientnet_b0": ("classifier.1", 1280), "squeezenet1_0": ("classifier.1", 512)}


@pytest.mark.parametrize("backbone", [pytest.param(name, marks=pytest.mark.slow) if name == "vgg16" else name
                                      for name in HEADS])
def test_cut_replaces_the_class_layer_and_keeps_what_feeds_it(backbone, one_thread):
    torch.manual_seed(0)
    head_name, width = HEADS[backbone]
    model = torchvision.models.get_model(backbone).eval()
    inputs = []
    model.get_submodule(head_name).register_forward_pre_hook(lambda module, args: inputs.append(args[0]))
    size = input_size_rule(backbone, False)[0]
    images = torch.randn(1, 3, size, size)
    with torch.no_grad():
        model(images)
        assert cut_classifier(model, 1000) == width
        features = model(images)
    assert isinstance(model.get_submodule(head_name), nn.Identity)
    # SqueezeNet's class layer is a 1x1 conv followed by ReLU and global pooling; the others' input is the feature.
    expected = inputs[0].relu().mean((2, 3)) if backbone.startswith("squeezenet") else inputs[0]
    assert features.shape == (1, width)
    torch.testing.assert_close(features, expected)
    if backbone in ("alexnet", "vgg16"):   # fc7 output after its ReLU
        assert features.min() >= 0 and isinstance(model.classifier[5 if backbone == "alexnet" else 4], nn.ReLU)


@pytest.mark.parametrize("backbone", ["alexnet", "densenet121", "squeezenet1_0", "squeezenet1_1", "googlenet",
                                      "inception_v3", "convnext_tiny"])
def test_minimum_input_size_is_the_real_one(backbone, one_thread):
    net = HashNet(backbone, 8).eval()
    minimum = input_size_rule(backbone, False)[0]
    with torch.no_grad():
        assert net.backbone(torch.randn(1, 3, minimum, minimum)).shape[0] == 1
        with pytest.raises(RuntimeError):   # one pixel less and a kernel no longer fits
            net.backbone(torch.randn(1, 3, minimum - 1, minimum - 1))


def test_input_size_rules():
    # (minimum, exact): torchvision's documented minimum; ViT/MaxViT are built for one size: a ViT from scratch
    # for the size it is given (the crop), pretrained ones and MaxViT for their weights'.
    assert input_size_rule("alexnet", True) == input_size_rule("alexnet", False, 32) == (63, None)
    assert input_size_rule("inception_v3", False) == (75, None)
    assert input_size_rule("resnet50", False, 32) == (1, None)
    assert input_size_rule("squeezenet1_1", False) == (17, None)
    assert input_size_rule("swin_t", False) == (224, None)
    assert input_size_rule("vit_b_16", True, 32) == input_size_rule("vit_b_16", False) == (224, 224)
    assert input_size_rule("vit_h_14", True) == (518, 518)   # its DEFAULT (SWAG) weights are for 518x518
    assert input_size_rule("vit_b_16", False, 32) == (32, 32)
    assert input_size_rule("maxvit_t", False, 32) == (224, 224)


def test_vit_from_scratch_at_its_image_size_refuses_any_other():
    net = HashNet("vit_b_32", 8, image_size=64).eval()
    assert net.backbone.image_size == 64
    with torch.no_grad():
        assert net(torch.randn(2, 3, 64, 64)).shape == (2, 8)
    with pytest.raises(ValueError, match=r"vit_b_32 needs inputs of exactly 64x64 pixels, got \(96, 96\)"):
        net(torch.randn(2, 3, 96, 96))


def test_a_crop_that_does_not_fit_a_vit_is_a_clear_error():
    with pytest.raises(ConfigError, match=r"vit_b_16 from scratch is built for the crop, dataset.crop_size=40, which "
                                          r"does not fit it .*multiple of its patch size"):
        HashNet("vit_b_16", 8, image_size=40)
    with pytest.raises(ConfigError, match=r"vit_b_16 needs inputs of exactly 224x224 pixels, got dataset.crop_size=32"):
        check_input_size("vit_b_16", True, 32, 32, 36)
    check_input_size("resnet18", False, 32, 32, 36)  # models built for any size take the crop as it is


def fixes(message: str) -> list[list[str]]:
    """The override sets an error message proposes: 'use a b'."""
    return [found.split() for found in re.findall(r"use ((?:[\w.]+=\w+ ?)+)", message)]


def test_too_small_crop_is_refused_before_training_with_overrides_that_work(tmp_path):
    overrides = ["net.backbone=inception_v3"]   # any torchvision model, with the default net config
    with pytest.raises(ValueError) as err:
        check_train_config(compose_config("train", overrides, tmp_path))
    assert str(err.value) == ("net.backbone=inception_v3 needs inputs of at least 75x75 pixels, got dataset.crop_size=32: "
                              "use dataset.crop_size=75 dataset.resize_size=75")
    [fix] = fixes(str(err.value))
    cfg = compose_config("train", overrides + fix, tmp_path)
    check_train_config(cfg)
    assert (cfg.dataset.crop_size, cfg.dataset.resize_size) == (75, 75)


def test_a_pretrained_vit_refuses_another_crop_offering_its_size_or_training_from_scratch(tmp_path):
    overrides = ["net=vit_b_16", "net.pretrained=true"]   # digits: 32x32 crops
    with pytest.raises(ValueError, match=r"vit_b_16 needs inputs of exactly 224x224 pixels, got dataset.crop_size=32") as err:
        check_train_config(compose_config("train", overrides, tmp_path))
    assert str(err.value).endswith("use dataset.crop_size=224 dataset.resize_size=224, or train it from scratch "
                                   "(net.pretrained=false), built for the crop")
    for fix in (["dataset.crop_size=224", "dataset.resize_size=224"], ["net.pretrained=false"]):
        check_train_config(compose_config("train", overrides + fix, tmp_path))
    assert HashNet("vit_b_16", 8, image_size=32).backbone.image_size == 32  # from scratch: built for the 32 px crop


def test_googlenet_and_inception_have_no_aux_heads_and_return_a_tensor_in_train_mode(one_thread):
    for backbone, size in (("googlenet", 15), ("inception_v3", 75)):
        net = HashNet(backbone, 8).train()
        assert net.backbone.aux_logits is False and not net.backbone.transform_input
        codes = net(torch.randn(2, 3, size, size))
        assert isinstance(codes, torch.Tensor) and codes.shape == (2, 8)


def test_pretrained_googlenet_takes_torchvisions_adaptations(tmp_path, monkeypatch):
    """Weights with auxiliary heads load, the heads are dropped, and the input transform of the weights is on."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    torch.manual_seed(1)
    reference = torchvision.models.GoogLeNet(aux_logits=True, init_weights=False)
    cache = tmp_path / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.save(reference.state_dict(), cache / Path(get_model_weights("googlenet").DEFAULT.url).name)
    net = HashNet("googlenet", 8, pretrained=True)
    assert net.backbone.aux1 is None and net.backbone.aux2 is None and net.backbone.transform_input
    assert torch.equal(net.backbone.conv1.conv.weight, reference.conv1.conv.weight)
    assert net.hash_layer.in_features == 1024


@pytest.mark.slow
@pytest.mark.parametrize("net", ["vit_b_16", "convnext_tiny"])
def test_short_training_on_digits(net, digits_root, tmp_path):
    # 2 steps of 8 images, no validation, no checkpoint files (ViT-B's would be 1 GB with its momentum), then test mAP
    # on the small lists (10 queries, 50 database images).
    small = small_lists(tmp_path / "small", digits_root)
    cfg = compose_config("train", [f"net={net}", "hash_bit=16", "max_steps=2", "val_every=1000", "dataset.batch_size=8",
                                   "dataset.eval_batch_size=64", "trainer.accelerator=cpu", "~callbacks.checkpoint",
                                   f"dataset.root={small}", f"paths.data_dir={digits_root.parent}"], tmp_path / "run")
    results = train(cfg)
    assert (results["net"], results["hash_bit"], results["dataset"]) == (net, 16, "digits")
    assert 0.0 < results["mAP"] <= 1.0


def test_a_pretrained_net_is_rebuilt_from_its_checkpoint_without_its_imagenet_weights(tmp_path, monkeypatch, one_thread):
    """Loading a checkpoint needs no download: the architecture the weights imply (GoogLeNet's input transform,
    no auxiliary heads), the checkpoint's weights, the same codes."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "with"))
    torch.manual_seed(1)
    cache = tmp_path / "with" / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    weights = torchvision.models.GoogLeNet(aux_logits=True, init_weights=False).state_dict()
    torch.save(weights, cache / Path(get_model_weights("googlenet").DEFAULT.url).name)
    trained = HashNet("googlenet", 8, pretrained=True).eval()
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "offline"))  # no weights there, and no network
    with weights_follow():
        rebuilt = HashNet("googlenet", 8, pretrained=True).eval()
    rebuilt.load_state_dict(trained.state_dict())
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(rebuilt(images), trained(images))
    assert not (tmp_path / "offline").exists()
