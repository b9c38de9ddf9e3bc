"""Backbones from torchvision and the HashNet network: backbone -> Linear(feat, K) -> tanh(beta * z)."""
from __future__ import annotations

from pathlib import Path

import torch
import torchvision
from torch import Tensor, nn

from hashnet.images import normalize_pixels

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


class HashNet(nn.Module):
    """backbone -> hash layer (K outputs) -> tanh(beta * z).

    forward(images: (N, 3, H, W)) -> codes: (N, K) in (-1, 1). images are normalised floats, or
    uint8 pixels that forward normalises (ImageNet mean/std) on their device. beta is a buffer, so
    it is saved with the weights; the Continuation callback raises it during training.
    channels_last: weights and inputs in NHWC memory format (faster convolutions with tensor cores
    and oneDNN, above all under bf16/fp16); the state dict is the same either way.
    """

    def __init__(self, backbone: str, hash_bit: int, pretrained: bool = False, channels_last: bool = False) -> None:
        super().__init__()
        if not isinstance(hash_bit, int) or isinstance(hash_bit, bool) or hash_bit <= 0:
            raise ValueError(f"hash_bit must be a positive integer, got {hash_bit!r}")
        self.backbone_name = backbone
        self.min_input_size = min_input_size(backbone)
        self.backbone, feat_dim = build_backbone(backbone, pretrained)
        self.hash_layer = nn.Linear(feat_dim, hash_bit)
        nn.init.normal_(self.hash_layer.weight, 0.0, 0.01)
        nn.init.zeros_(self.hash_layer.bias)
        self.register_buffer("beta", torch.tensor(1.0))
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.to(memory_format=self.memory_format)

    def set_beta(self, beta: float) -> None:
        self.beta.fill_(beta)

    def forward(self, images: Tensor) -> Tensor:
        if min(images.shape[-2:]) < self.min_input_size:
            raise ValueError(
                f"{self.backbone_name} needs inputs of at least {self.min_input_size}x{self.min_input_size} pixels, "
                f"got {tuple(images.shape[-2:])}: raise dataset.crop_size or pick another net"
            )
        if images.dtype == torch.uint8:
            images = normalize_pixels(images, self.hash_layer.weight.dtype)
        images = images.contiguous(memory_format=self.memory_format)
        return torch.tanh(self.beta * self.hash_layer(self.backbone(images)))
