"""The HashNet network: backbone -> Linear(feat, K) -> tanh(beta * z)."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from hashnet.backbones import BACKBONES, build_backbone, input_size_rule, min_input_size  # noqa: F401 (BACKBONES, min_input_size: re-exported)
from hashnet.images import normalize_pixels


class HashNet(nn.Module):
    """backbone -> hash layer (K outputs) -> tanh(beta * z).

    forward(images: (N, 3, H, W)) -> codes: (N, K) in (-1, 1). images are normalised floats, or
    uint8 pixels that forward normalises (ImageNet mean/std) on their device. beta is a buffer, so
    it is saved with the weights; the Continuation callback raises it during training.
    channels_last: weights and inputs in NHWC memory format (faster convolutions with tensor cores
    and oneDNN, above all under bf16/fp16); the state dict is the same either way.
    image_size: ViT from scratch only, the square input size it is built for (hashnet.backbones.input_size_rule).
    """

    def __init__(self, backbone: str, hash_bit: int, pretrained: bool = False, channels_last: bool = False,
                 image_size: int | None = None) -> None:
        super().__init__()
        if not isinstance(hash_bit, int) or isinstance(hash_bit, bool) or hash_bit <= 0:
            raise ValueError(f"hash_bit must be a positive integer, got {hash_bit!r}")
        self.backbone_name = backbone
        self.backbone, feat_dim = build_backbone(backbone, pretrained, image_size)
        self.input_size = input_size_rule(backbone, image_size)
        self.hash_layer = nn.Linear(feat_dim, hash_bit)
        nn.init.normal_(self.hash_layer.weight, 0.0, 0.01)
        nn.init.zeros_(self.hash_layer.bias)
        self.register_buffer("beta", torch.tensor(1.0))
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.to(memory_format=self.memory_format)

    def set_beta(self, beta: float) -> None:
        self.beta.fill_(beta)

    def forward(self, images: Tensor) -> Tensor:
        minimum, exact = self.input_size
        size = tuple(images.shape[-2:])
        if (exact and size != (exact, exact)) or min(size) < minimum:
            need = f"exactly {exact}x{exact}" if exact else f"at least {minimum}x{minimum}"
            raise ValueError(f"{self.backbone_name} needs inputs of {need} pixels, got {size}: "
                             f"set dataset.crop_size={minimum} or pick another net")
        if images.dtype == torch.uint8:
            images = normalize_pixels(images, self.hash_layer.weight.dtype)
        images = images.contiguous(memory_format=self.memory_format)
        return torch.tanh(self.beta * self.hash_layer(self.backbone(images)))
