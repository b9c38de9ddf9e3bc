"""Datasets that prepare_data builds on first use: a registry of their builders.

A module in this package registers each dataset it builds with `register(name, build, embedded)`;
importing the package imports every module in it, so adding a built dataset is its module, its config
file (`builder: <name>`) and its tests. build(root, **options) writes the dataset's images and list files
into root (atomically: hashnet.data.builders.atomic); options come from the dataset config's builder
section. embedded: small enough to train from scratch on a CPU with train.yaml's own settings (the
others are trained with a named run: experiment=paper or a reference experiment).
"""
from __future__ import annotations

import importlib
import inspect
import pkgutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from hashnet.utils.errors import ConfigError, check_choice


@dataclass(frozen=True)
class Builder:
    """How to build one dataset: build(root, **options), and whether train.yaml's settings suit it."""
    build: Callable[..., None]
    embedded: bool


BUILDERS: dict[str, Builder] = {}


def register(name: str, build: Callable[..., None], embedded: bool) -> None:
    """Make `builder: <name>` in a dataset config build with build(root, **options)."""
    BUILDERS[name] = Builder(build, embedded)


def builder_name(builder: str | dict | None) -> str | None:
    """The registered name of a dataset config's builder section (a name, or {name: ..., options...})."""
    return builder.get("name") if isinstance(builder, dict) else builder


def check_builder(builder: str | dict | None) -> None:
    """ConfigError naming dataset.builder unless it is null or a registered builder whose build takes its options."""
    name = builder_name(builder)
    check_choice("dataset.builder" + (".name" if isinstance(builder, dict) else ""), name, (None, *sorted(BUILDERS)))
    if isinstance(builder, dict):
        build_fn = BUILDERS[name].build
        bound = set(getattr(build_fn, "keywords", {}))  # what register() fixed with functools.partial
        accepted = set(inspect.signature(build_fn).parameters) - {"root"} - bound
        for key in builder.keys() - {"name"} - accepted:
            raise ConfigError(f"dataset.builder.{key}={builder[key]!r} is not an option of the {name} builder (its "
                              f"options: {', '.join(sorted(accepted)) or 'none'}) -- drop dataset.builder.{key}")


def build(builder: str | dict, root: str | Path) -> None:
    """Build the dataset of a config's builder section into root (nothing when it is already built there)."""
    options: dict[str, Any] = {key: value for key, value in builder.items() if key != "name"} \
        if isinstance(builder, dict) else {}
    BUILDERS[builder_name(builder)].build(Path(root), **options)


for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
