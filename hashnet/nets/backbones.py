"""Every torchvision classification model as a feature extractor: the model with its classifier layer cut off.

The cut is generic: the last Linear (or 1x1 Conv2d, SqueezeNet) producing the ImageNet class scores is
replaced by Identity, so the model's own forward runs up to its penultimate layer (AlexNet/VGG keep fc7 with
its ReLU and dropout, ResNet its global pooling, ViT its class token, MaxViT its pre-logits tanh).
"""
from __future__ import annotations

import inspect
import typing
from functools import cache
from pathlib import Path

import torch
import torchvision
from torch import nn
from torchvision.models import get_model_builder, get_model_weights

from hashnet.utils.errors import ConfigError

BACKBONES = tuple(torchvision.models.list_models(module=torchvision.models))   # classification models only


@cache
def constructor_parameters(backbone: str) -> frozenset[str]:
    """Names of the arguments of the backbone's model class (read off its builder's return annotation)."""
    model_class = typing.get_type_hints(get_model_builder(backbone))["return"]
    return frozenset(inspect.signature(model_class.__init__).parameters)


def takes_image_size(backbone: str) -> bool:
    """True for models built for one input size (ViT: image_size, MaxViT: input_size)."""
    return bool({"image_size", "input_size"} & constructor_parameters(backbone))


def check_backbone(backbone: str) -> None:
    if backbone not in BACKBONES:
        raise ConfigError(f"unknown backbone {backbone!r}; choose one of {', '.join(BACKBONES)}")


def check_image_size(backbone: str, pretrained: bool, image_size: int | None) -> None:
    """Raise ValueError when net.image_size cannot apply: only from scratch, only to ViT."""
    if image_size is None:
        return
    if "image_size" not in constructor_parameters(backbone):
        raise ConfigError(f"net.image_size={image_size!r}: {backbone} takes no image size (only ViT models do); "
                         "drop it with net.image_size=null")
    if not isinstance(image_size, int) or isinstance(image_size, bool) or image_size <= 0:
        raise ConfigError(f"net.image_size must be a positive number of pixels or null, got {image_size!r}")
    weights_size = get_model_weights(backbone).DEFAULT.meta["min_size"][0]
    if pretrained and image_size != weights_size:
        raise ConfigError(f"net.image_size={image_size}: the pretrained {backbone} weights are for {weights_size}x"
                         f"{weights_size} inputs; use net.image_size=null, or train from scratch with net.pretrained=false")


def input_size_rule(backbone: str, image_size: int | None = None) -> tuple[int, int | None]:
    """(minimum, exact or None): the square input sizes the backbone accepts.

    minimum is torchvision's documented smallest input (meta["min_size"] of the DEFAULT weights: AlexNet 63,
    VGG and ConvNeXt 32, DenseNet 29, SqueezeNet 21/17, GoogLeNet 15, Inception v3 75, ResNet 1, ...).
    Models built for one size (ViT, MaxViT) take exactly that size: image_size (ViT from scratch) or the
    DEFAULT weights' (224; vit_h_14 518), and then minimum == exact.
    """
    check_backbone(backbone)
    size = image_size or get_model_weights(backbone).DEFAULT.meta["min_size"][0]
    return (size, size) if takes_image_size(backbone) else (size, None)


def min_input_size(backbone: str, image_size: int | None = None) -> int:
    """Smallest square input the backbone accepts (see input_size_rule)."""
    return input_size_rule(backbone, image_size)[0]


def check_input_size(backbone: str, pretrained: bool, image_size: int | None, crop_size: int, resize_size: int) -> None:
    """Raise ValueError, naming the overrides to pass, when crop_size x crop_size inputs do not fit the backbone."""
    check_backbone(backbone)
    check_image_size(backbone, pretrained, image_size)
    minimum, exact = input_size_rule(backbone, image_size)
    if crop_size == exact or (exact is None and crop_size >= minimum):
        return
    fix = f"dataset.crop_size={minimum}" + (f" dataset.resize_size={minimum}" if resize_size < minimum else "")
    scratch = (f", or from scratch net.pretrained=false net.image_size={crop_size} (a multiple of the patch size)"
               if "image_size" in constructor_parameters(backbone) else "")
    need = f"exactly {exact}x{exact}" if exact else f"at least {minimum}x{minimum}"
    raise ConfigError(f"net.backbone={backbone} needs inputs of {need} pixels, got dataset.crop_size={crop_size}: "
                     f"use {fix} (dataset.resize_size must be >= dataset.crop_size){scratch}")


def load_pretrained(backbone: str, **kwargs) -> nn.Module:
    """torchvision's model with its DEFAULT ImageNet weights, from the torch hub cache (downloaded if possible).

    torchvision's builder adapts the model to its weights (Inception/GoogLeNet input transform and dropped
    auxiliary heads, ViT/MaxViT image size, DenseNet's old key names). Raises a RuntimeError naming the
    expected file, the cache folder and the way out when the weights are neither cached nor downloadable.
    """
    weights = get_model_weights(backbone).DEFAULT
    cache_dir = Path(torch.hub.get_dir()) / "checkpoints"
    cached = cache_dir / Path(weights.url).name
    try:
        return torchvision.models.get_model(backbone, weights=weights, **kwargs)
    except Exception as err:
        if cached.is_file():   # the file is there: the error is not about fetching it
            raise
        raise RuntimeError(
            f"ImageNet weights for {backbone} are not cached and could not be downloaded ({err}).\n"
            f"  expected file: {cached}\n"
            f"  download it from {weights.url} into {cache_dir} (the torch hub cache; set TORCH_HOME to move it),\n"
            f"  or train from scratch with net.pretrained=false"
        ) from err


def scratch_arguments(backbone: str, image_size: int | None) -> dict:
    """Constructor arguments of a randomly initialised model: no auxiliary heads (Inception v3, GoogLeNet:
    forward returns a plain tensor in train mode too), their default init stated (no warning), and ViT
    built for image_size or its DEFAULT weights' size."""
    accepts = constructor_parameters(backbone)
    arguments = {"aux_logits": False, "init_weights": True}
    if "image_size" in accepts:
        arguments["image_size"] = input_size_rule(backbone, image_size)[1]
    return {key: value for key, value in arguments.items() if key in accepts}


def cut_classifier(model: nn.Module, num_classes: int) -> int:
    """Replace, in place, the last layer producing num_classes outputs by Identity; returns its input width D."""
    heads = [(name, module) for name, module in model.named_modules()
             if (isinstance(module, nn.Linear) and module.out_features == num_classes)
             or (isinstance(module, nn.Conv2d) and module.out_channels == num_classes)]
    if not heads:
        raise ConfigError(f"{type(model).__name__} has no layer with {num_classes} outputs to cut")
    name, head = heads[-1]
    parent_name, _, attribute = name.rpartition(".")
    setattr(model.get_submodule(parent_name), attribute, nn.Identity())
    return head.in_features if isinstance(head, nn.Linear) else head.in_channels


def build_backbone(backbone: str, pretrained: bool = False, image_size: int | None = None) -> tuple[nn.Module, int]:
    """Torchvision model cut at its penultimate layer -> (module mapping (N,3,H,W) to (N,D), D).

    image_size: ViT only, from scratch only: build it for image_size x image_size inputs.
    """
    check_backbone(backbone)
    check_image_size(backbone, pretrained, image_size)
    if pretrained:
        model = load_pretrained(backbone)
    else:
        try:
            model = torchvision.models.get_model(backbone, weights=None, **scratch_arguments(backbone, image_size))
        except AssertionError as err:   # ViT: image size not a multiple of the patch size
            raise ConfigError(f"net.image_size={image_size} does not fit {backbone} ({err}): "
                             "use a multiple of its patch size") from err
    num_classes = len(get_model_weights(backbone).DEFAULT.meta["categories"])
    return model, cut_classifier(model, num_classes)
