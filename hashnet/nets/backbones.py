"""Backbones from torchvision, cut at their penultimate layer, with their input-size rules and ImageNet weights."""
from __future__ import annotations

from pathlib import Path

import torch
import torchvision
from torch import nn

ALEXNET_VGG = ("alexnet", "vgg11", "vgg13", "vgg16", "vgg19", "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn")
RESNETS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")
BACKBONES = ALEXNET_VGG + RESNETS


def min_input_size(backbone: str) -> int:
    """Smallest square input the backbone's feature extractor accepts.

    AlexNet's three stride-2 max pools after a stride-4 conv leave nothing below 63 px; VGG's five
    2x2 pools need 32 px; ResNet reaches 1x1 at 32 px and is held to the same floor.
    """
    return 63 if backbone == "alexnet" else 32


def load_pretrained(model: nn.Module, backbone: str) -> None:
    """Load torchvision's ImageNet weights from the torch hub cache, downloading them if possible.

    Raises a RuntimeError naming the expected file, the cache folder and the way out when the
    weights are neither cached nor downloadable (an offline machine).
    """
    weights = torchvision.models.get_model_weights(backbone).DEFAULT
    cache_dir = Path(torch.hub.get_dir()) / "checkpoints"
    cached = cache_dir / Path(weights.url).name
    try:
        state = torch.hub.load_state_dict_from_url(weights.url, model_dir=str(cache_dir), progress=True, check_hash=True)
    except Exception as err:
        raise RuntimeError(
            f"ImageNet weights for {backbone} are not cached and could not be downloaded ({err}).\n"
            f"  expected file: {cached}\n"
            f"  download it from {weights.url} into {cache_dir} (the torch hub cache; set TORCH_HOME to move it),\n"
            f"  or train from scratch with net.pretrained=false"
        ) from err
    model.load_state_dict(state)


def build_backbone(backbone: str, pretrained: bool = False) -> tuple[nn.Module, int]:
    """Torchvision model cut at its penultimate layer -> (module mapping (N,3,H,W) to (N,D), D).

    AlexNet/VGG: features, pooling and the classifier up to fc7 with its ReLU and dropout (D=4096);
    ResNet: everything up to global average pooling (D=512 or 2048).
    """
    if backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}; choose one of {', '.join(BACKBONES)}")
    model = torchvision.models.get_model(backbone, weights=None)
    if pretrained:
        load_pretrained(model, backbone)
    if backbone in RESNETS:
        feat_dim = model.fc.in_features
        layers = [module for name, module in model.named_children() if name != "fc"]
        return nn.Sequential(*layers, nn.Flatten(1)), feat_dim
    return nn.Sequential(model.features, model.avgpool, nn.Flatten(1), *model.classifier[:6]), 4096

