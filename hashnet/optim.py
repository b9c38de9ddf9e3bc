"""HashNet's optimiser: SGD with a 10x learning rate on the new hash layer, decayed per step."""
from __future__ import annotations

import torch
from torch import nn


def lr_multiplier(
    step: int,
    policy: str = "step",
    gamma: float = 0.5,
    step_size: int = 2000,
    power: float = 0.75,
) -> float:
    """Factor applied to the base learning rate at a global step.

    step: gamma ** floor(step / step_size)         (original default: x0.5 every 2000 steps)
    inv:  (1 + gamma * step) ** -power             (Caffe's "inv"; original used gamma 5e-4, power 0.75)
    """
    if policy == "step":
        return gamma ** (step // step_size)
    if policy == "inv":
        return (1.0 + gamma * step) ** -power
    raise ValueError(f"unknown lr policy {policy!r}: use 'step' or 'inv'")


def sgd(
    backbone: nn.Module,
    hash_layer: nn.Module,
    lr: float,
    hash_lr_mult: float = 10.0,
    momentum: float = 0.9,
    weight_decay: float = 5e-4,
    nesterov: bool = True,
) -> torch.optim.SGD:
    """SGD over two parameter groups: the (pretrained) backbone at lr, the hash layer at lr * hash_lr_mult."""
    groups = [
        {"params": list(backbone.parameters()), "lr": lr},
        {"params": list(hash_layer.parameters()), "lr": lr * hash_lr_mult},
    ]
    return torch.optim.SGD(groups, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov)
