"""The network every method shares: a torchvision backbone, then the hash layer Linear(D, K)."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from hashnet.data.images import normalize_pixels
from hashnet.nets.backbones import build_backbone, input_size_rule
from hashnet.utils.errors import ConfigError


class HashEncoder(nn.Module):
    """backbone -> hash layer: images (N, 3, H, W) -> z (N, K), before any method's code layer.

    images are normalised floats, or uint8 pixels that forward normalises (ImageNet mean/std) on their
    device. The hash layer starts from N(0, 0.01) weights and zero bias, as HashNet's. channels_last:
    weights and inputs in NHWC memory format (faster convolutions with tensor cores and oneDNN, above
    all under bf16/fp16); the state dict is the same either way. image_size: the square input it will see
    (the dataset's crop; None: its weights' size), which a ViT from scratch is built for
    (hashnet.nets.backbones.input_size_rule). hash_bit K is checked by the training config (hashnet.tasks.checks).
    """

    def __init__(self, backbone: str, hash_bit: int, pretrained: bool, channels_last: bool,
                 image_size: int | None) -> None:
        super().__init__()
        self.backbone_name, self.hash_bit = backbone, hash_bit
        self.backbone, feat_dim = build_backbone(backbone, pretrained, image_size)
        self.input_size = input_size_rule(backbone, pretrained, image_size)
        self.hash_layer = nn.Linear(feat_dim, hash_bit)
        nn.init.normal_(self.hash_layer.weight, 0.0, 0.01)
        nn.init.zeros_(self.hash_layer.bias)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.to(memory_format=self.memory_format)

    def forward(self, images: Tensor) -> Tensor:
        minimum, exact = self.input_size
        size = tuple(images.shape[-2:])
        if (exact and size != (exact, exact)) or min(size) < minimum:
            need = f"exactly {exact}x{exact}" if exact else f"at least {minimum}x{minimum}"
            raise ConfigError(f"{self.backbone_name} needs inputs of {need} pixels, got {size}: "
                             f"set dataset.crop_size={exact or minimum} or pick another net")
        if images.dtype == torch.uint8:
            images = normalize_pixels(images, self.hash_layer.weight.dtype)
        return self.hash_layer(self.backbone(images.contiguous(memory_format=self.memory_format)))
