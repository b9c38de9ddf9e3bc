"""Several augmented views of each training image (a method's `views`, e.g. CIBHash's two), with the contrastive
augmentation of specs/methods-unsupervised.md section 8, each view drawn independently:

    RandomResizedCrop(crop, scale=(0.5, 1.0)), RandomHorizontalFlip(),
    RandomApply([ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.7), RandomGrayscale(p=0.2),
    at 224 px and above also GaussianBlur(3, sigma in (0.1, 2.0)) with p = 0.5 (the authors' CIBHash, utils/data.py);
    below, no blur (SimCLR's CIFAR recipe: a 3 x 3 blur at 32 px removes most detail).

On grey images read as three equal channels, saturation, hue and grayscale change nothing; brightness and contrast do.
"""
from __future__ import annotations

import torch
from torch import Tensor
from torchvision.transforms import v2

from hashnet.data.images import IMAGENET_MEAN, IMAGENET_STD, resize_steps

BLUR_FROM = 224  # crops at least this large are blurred, as the authors' 224 px inputs


def contrastive_transform(resize_size: int, crop_size: int, normalize: bool) -> v2.Compose:
    """One view: an RGB image (PIL or uint8 (3, H, W)) -> (3, crop_size, crop_size), uint8 unless normalize."""
    steps = [*resize_steps(resize_size), v2.RandomResizedCrop(crop_size, scale=(0.5, 1.0), antialias=True),
             v2.RandomHorizontalFlip(), v2.RandomApply([v2.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.7),
             v2.RandomGrayscale(p=0.2)]
    if crop_size >= BLUR_FROM:
        steps.append(v2.RandomApply([v2.GaussianBlur(3, sigma=(0.1, 2.0))], p=0.5))
    if normalize:
        steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    return v2.Compose([*steps, v2.ToPureTensor()])


class Views:
    """transform applied `count` times to one image: (count, 3, H, W)."""

    def __init__(self, transform: v2.Compose, count: int) -> None:
        self.transform, self.count = transform, count

    def __call__(self, image) -> Tensor:
        return torch.stack([self.transform(image) for _ in range(self.count)])
