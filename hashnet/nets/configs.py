"""`net=<name>` for every torchvision classification model, without a file per model.

Each model gets a config in Hydra's ConfigStore, group `net`: configs/base/net.yaml with `backbone: <name>`. A file
configs/net/<name>.yaml, where one exists, holds a net's values of its own and wins (Hydra reads the config folder
before the store). Importing hashnet.nets registers them, so every script and test that composes a config has them.
"""
from __future__ import annotations

from hydra.core.config_store import ConfigStore

from hashnet.nets.backbones import BACKBONES


def register_net_configs() -> None:
    """Store `net/<name>` = base/net.yaml + backbone for each of BACKBONES (idempotent)."""
    store = ConfigStore.instance()
    for backbone in BACKBONES:
        store.store(group="net", name=backbone, node={"defaults": ["/base/net@_here_", "_self_"], "backbone": backbone})
