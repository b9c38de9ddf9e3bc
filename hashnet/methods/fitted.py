"""Methods fitted, not trained (LSH, PCAH, ITQ, SH): a closed-form fit on a feature matrix of one split.

The features (method.features): "pixels", the image as the evaluation transform gives it, in [0, 1], flattened
C*H*W (the net's backbone is then replaced by PixelFeatures); "backbone", the net's pooled features (meaningful with
pretrained weights); a checkpoint's path (<run>/checkpoints/last.ckpt): that run's backbone, the classic two-stage
baseline (features of a supervised run carry its labels); "auto": backbone with net.pretrained=true, else pixels.
The fit split (method.fit_on): "train" (the training list, labels unused) or "database". The fitted affine map
h = x A + c is written into the hash layer, so every tool that runs a trained model runs a fitted one; a method that
is not linear (SH) adds its own layer. hashnet.training.fitting extracts the features and calls load_fit.
"""
from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from hashnet.data.images import IMAGENET_MEAN, IMAGENET_STD
from hashnet.methods.base import HashMethod
from hashnet.utils.errors import ConfigError, check_choice

FEATURES = ("auto", "pixels", "backbone")  # or the path of a checkpoint (.ckpt)
FIT_ON = ("train", "database")


class PixelFeatures(nn.Module):
    """Normalised images (N, C, H, W) -> their pixels in [0, 1], flattened (N, C*H*W): the ImageNet normalisation
    undone."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: Tensor) -> Tensor:
        return (images * self.std.to(images.dtype) + self.mean.to(images.dtype)).flatten(1)


class FittedMethod(HashMethod):
    """A method fitted on features: fit(X, seed) gives the affine map (A (d, K), c (K,)) of the hash layer.

    Its codes are sign(h) of h = forward(hash layer(features)); it has no loss and trains no step.
    seed: of the method's random draws (None: the run's seed, so seed=0,1,2 sweeps measure their spread).
    """

    fitted: ClassVar[bool] = True
    unsupervised: ClassVar[bool] = True

    def __init__(self, hash_bit: int, num_classes: int, multi_label: bool, features: str, fit_on: str,
                 seed: int | None) -> None:
        super().__init__(hash_bit, num_classes, multi_label)
        if not (isinstance(features, str) and (features in FEATURES or features.endswith(".ckpt"))):
            raise ConfigError(f"method.features={features!r}: it must be one of {list(FEATURES)} or the path of a "
                              "checkpoint (.ckpt) whose backbone gives the features -- pass e.g. "
                              "method.features=pixels")
        check_choice("method.fit_on", fit_on, FIT_ON)
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise ConfigError(f"method.seed={seed!r}: it must be an integer or null (the run's seed) -- pass e.g. "
                              "method.seed=0")
        self.features, self.fit_on, self.seed = features, fit_on, seed

    def feature_source(self, pretrained: bool) -> str:
        """"pixels", "backbone" or a checkpoint's path: what features="auto" means with or without weights."""
        if self.features == "auto":
            return "backbone" if pretrained else "pixels"
        return self.features

    def attach(self, net: nn.Module, pretrained: bool, image_size: int) -> None:
        """On pixels, replace the net's backbone by PixelFeatures and its hash layer by one over 3 * image_size^2
        numbers (images of image_size x image_size); else leave the net as it is."""
        if self.feature_source(pretrained) == "pixels":
            net.backbone = PixelFeatures()
            net.hash_layer = nn.Linear(3 * image_size * image_size, self.hash_bit)

    def fit(self, X: Tensor, seed: int) -> tuple[Tensor, Tensor]:
        """Features X (n, d) float64 -> (A (d, K), c (K,)) float64, h = x A + c; the method's own state is set."""
        raise NotImplementedError

    @torch.no_grad()
    def load_fit(self, hash_layer: nn.Linear, X: Tensor, seed: int) -> None:
        """Fit on X (n, d) and write the affine map into hash_layer (Linear(d, K))."""
        A, c = self.fit(X, seed)
        hash_layer.weight.copy_(A.T)
        hash_layer.bias.copy_(c)

    def loss(self, h: Tensor, labels: Tensor) -> Tensor:
        raise ConfigError(f"method={self.name} is fitted in closed form, not trained: scripts/train.py fits it "
                          "without optimiser steps")
