"""Networks: torchvision backbones cut at their penultimate layer, and the hash layer on top."""
from hashnet.nets.backbones import BACKBONES, build_backbone, input_size_rule
from hashnet.nets.configs import register_net_configs
from hashnet.nets.encoder import HashEncoder

__all__ = ["BACKBONES", "HashEncoder", "build_backbone", "input_size_rule", "register_net_configs"]

register_net_configs()  # net=<any torchvision model> composes without a file (hashnet/nets/configs.py)
