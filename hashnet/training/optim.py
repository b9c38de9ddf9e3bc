"""Parameter groups (the new layers learn faster than the pretrained backbone) and the per-step lr schedule."""
from __future__ import annotations

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


def param_groups(backbone: nn.Module, new_layers: list[nn.Module], lr: float, hash_lr_mult: float) -> list[dict]:
    """The backbone at lr; the new layers (the hash layer, a method's own parameters) at lr * hash_lr_mult.

    HashNet's 10x: the hash layer starts from scratch on top of pretrained features.
    """
    new = [p for layer in new_layers for p in layer.parameters()]
    return [{"params": list(backbone.parameters()), "lr": lr}, {"params": new, "lr": lr * hash_lr_mult}]
