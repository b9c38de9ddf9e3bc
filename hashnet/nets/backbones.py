"""Every torchvision classification model as a feature extractor: the model with its classifier layer cut off.

The cut is generic: the last Linear (or 1x1 Conv2d, SqueezeNet) producing the ImageNet class scores is
replaced by Identity, so the model's own forward runs up to its penultimate layer (AlexNet/VGG keep fc7 with
its ReLU and dropout, ResNet its global pooling, ViT its class token, MaxViT its pre-logits tanh).
"""
from __future__ import annotations

import inspect
import typing
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from pathlib import Path

import torch
import torchvision
from torch import nn
from torchvision.models import get_model_builder, get_model_weights

from hashnet.utils.errors import ConfigError, UserError

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


def builds_for_size(backbone: str, pretrained: bool) -> bool:
    """Whether the model is built for the input size it is given (a ViT from scratch)."""
    return not pretrained and "image_size" in constructor_parameters(backbone)


def input_size_rule(backbone: str, pretrained: bool, image_size: int | None = None) -> tuple[int, int | None]:
    """(minimum, exact or None): the square input sizes the backbone accepts.

    minimum is torchvision's documented smallest input (meta["min_size"] of the DEFAULT weights: AlexNet 63,
    VGG and ConvNeXt 32, DenseNet 29, SqueezeNet 21/17, GoogLeNet 15, Inception v3 75, ResNet 1, ...).
    Models built for one size take exactly that size: a ViT from scratch the image_size it is given (None:
    its weights'), pretrained ViTs and MaxViT their DEFAULT weights' (224; vit_h_14 518); then minimum == exact.
    """
    check_backbone(backbone)
    weights_size = get_model_weights(backbone).DEFAULT.meta["min_size"][0]
    if builds_for_size(backbone, pretrained) and image_size:
        return image_size, image_size
    return (weights_size, weights_size) if takes_image_size(backbone) else (weights_size, None)


def check_input_size(backbone: str, pretrained: bool, image_size: int | None, crop_size: int, resize_size: int) -> None:
    """ConfigError, naming the overrides to pass, when crop_size x crop_size inputs do not fit the backbone."""
    minimum, exact = input_size_rule(backbone, pretrained, image_size)
    if crop_size == exact or (exact is None and crop_size >= minimum):
        return
    fix = f"dataset.crop_size={minimum}" + (f" dataset.resize_size={minimum}" if resize_size < minimum else "")
    scratch = (", or train it from scratch (net.pretrained=false), built for the crop"
               if "image_size" in constructor_parameters(backbone) and pretrained else "")
    need = f"exactly {exact}x{exact}" if exact else f"at least {minimum}x{minimum}"
    raise ConfigError(f"net.backbone={backbone} needs inputs of {need} pixels, got dataset.crop_size={crop_size}: "
                      f"use {fix}{scratch}")


class WeightsUnavailableError(UserError, RuntimeError):
    """A pretrained network's weights are neither in the torch hub cache nor downloadable (offline)."""


def load_pretrained(backbone: str, **kwargs) -> nn.Module:
    """torchvision's model with its DEFAULT ImageNet weights, from the torch hub cache (downloaded if possible).

    torchvision's builder adapts the model to its weights (Inception/GoogLeNet input transform and dropped
    auxiliary heads, ViT/MaxViT image size, DenseNet's old key names). Raises WeightsUnavailableError (a
    RuntimeError) naming the file to fetch, the cache folder and the way out when they are neither cached nor
    downloadable.
    """
    weights = get_model_weights(backbone).DEFAULT
    cache_dir = Path(torch.hub.get_dir()) / "checkpoints"
    cached = cache_dir / Path(weights.url).name
    try:
        return torchvision.models.get_model(backbone, weights=weights, **kwargs)
    except Exception as err:
        if cached.is_file():   # the file is there: the error is not about fetching it
            raise
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise WeightsUnavailableError(
            f"ImageNet weights for {backbone} are not cached and could not be downloaded ({reason}) -- download "
            f"{weights.url} to {cached} (the torch hub cache; TORCH_HOME moves it), or train from scratch with "
            "net.pretrained=false") from err


def scratch_arguments(backbone: str, image_size: int | None) -> dict:
    """Constructor arguments of a randomly initialised model: no auxiliary heads (Inception v3, GoogLeNet:
    forward returns a plain tensor in train mode too), their default init stated (no warning), and ViT
    built for image_size (None: its DEFAULT weights' size)."""
    accepts = constructor_parameters(backbone)
    arguments = {"aux_logits": False, "init_weights": True}
    if "image_size" in accepts:
        arguments["image_size"] = input_size_rule(backbone, False, image_size)[1]
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


_WEIGHTS_FOLLOW = ContextVar("weights_follow", default=False)


@contextmanager
def weights_follow() -> Iterator[None]:
    """Within it, a pretrained backbone is built with the architecture its ImageNet weights imply but without loading
    them: for rebuilding a checkpoint, whose own weights replace them (no download, so it works offline)."""
    token = _WEIGHTS_FOLLOW.set(True)
    try:
        yield
    finally:
        _WEIGHTS_FOLLOW.reset(token)


def weights_architecture(backbone: str) -> dict:
    """Constructor arguments torchvision's builder sets for the DEFAULT weights: GoogLeNet and Inception v3
    normalise their input as their weights expect (transform_input); ViT and MaxViT are built for the weights'
    size; no auxiliary heads (the builder drops them after loading)."""
    accepts = constructor_parameters(backbone)
    arguments = {"transform_input": True, "aux_logits": False, "init_weights": False}
    if "image_size" in accepts:
        arguments["image_size"] = input_size_rule(backbone, True)[1]
    return {key: value for key, value in arguments.items() if key in accepts}


def build_backbone(backbone: str, pretrained: bool = False, image_size: int | None = None) -> tuple[nn.Module, int]:
    """Torchvision model cut at its penultimate layer -> (module mapping (N,3,H,W) to (N,D), D).

    image_size: the square input it will see; a ViT from scratch is built for it (others ignore it). Inside
    weights_follow() a pretrained backbone gets its weights' architecture without the weights.
    """
    check_backbone(backbone)
    if pretrained and _WEIGHTS_FOLLOW.get():
        model = torchvision.models.get_model(backbone, weights=None, **weights_architecture(backbone))
    elif pretrained:
        model = load_pretrained(backbone)
    else:
        try:
            model = torchvision.models.get_model(backbone, weights=None, **scratch_arguments(backbone, image_size))
        except AssertionError as err:   # ViT: image size not a multiple of the patch size
            raise ConfigError(f"net.backbone={backbone} from scratch is built for the crop, dataset.crop_size="
                              f"{image_size}, which does not fit it ({err}): use a multiple of its patch size") from err
    num_classes = len(get_model_weights(backbone).DEFAULT.meta["categories"])
    return model, cut_classifier(model, num_classes)
