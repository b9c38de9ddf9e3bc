"""Networks: torchvision backbones cut at their penultimate layer, and the hash layer on top."""
from hashnet.nets.backbones import BACKBONES, build_backbone, input_size_rule
from hashnet.nets.encoder import HashEncoder

__all__ = ["BACKBONES", "HashEncoder", "build_backbone", "input_size_rule"]
