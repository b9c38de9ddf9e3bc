"""Datasets that prepare_data builds on first use: a registry of their builders.

A module in this package registers each dataset it builds with `register(name, build)`; importing the
package imports every module in it, so adding a built dataset is its module, its config file
(`builder: <name>`) and its tests. build(root, **options) writes the dataset's images and list files into
root (atomically: hashnet.data.builders.atomic); options come from the dataset config's builder section.
classes(root, **options), when a builder has it, counts the label columns its lists have or will have, for
`num_classes: auto`. How to train on a dataset is its config's recipe (configs/recipe/), not the builder's.
"""
from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from hashnet.utils.errors import ConfigError, check_choice


@dataclass(frozen=True)
class Builder:
    """How to build one dataset: build(root, **options) and (optional) classes(root, **options), its number of
    classes."""
    build: Callable[..., None]
    classes: Callable[..., int] | None = None


BUILDERS: dict[str, Builder] = {}


def register(name: str, build: Callable[..., None], classes: Callable[..., int] | None = None) -> None:
    """Make `builder: <name>` in a dataset config build with build(root, **options)."""
    BUILDERS[name] = Builder(build, classes)


def builder_name(builder: str | Mapping | None) -> str | None:
    """The registered name of a dataset config's builder section (a name, or {name: ..., options...}: a dict or the
    DictConfig a composed config holds, which is a Mapping but not a dict)."""
    return builder.get("name") if isinstance(builder, Mapping) else builder


def check_builder(builder: str | Mapping | None) -> None:
    """ConfigError naming dataset.builder unless it is null or a registered builder whose build takes its options."""
    name = builder_name(builder)
    check_choice("dataset.builder" + (".name" if isinstance(builder, Mapping) else ""), name, (None, *sorted(BUILDERS)))
    if isinstance(builder, Mapping):
        build_fn = BUILDERS[name].build
        bound = set(getattr(build_fn, "keywords", {}))  # what register() fixed with functools.partial
        accepted = set(inspect.signature(build_fn).parameters) - {"root"} - bound
        for key in builder.keys() - {"name"} - accepted:
            raise ConfigError(f"dataset.builder.{key}={builder[key]!r} is not an option of the {name} builder (its "
                              f"options: {', '.join(sorted(accepted)) or 'none'}) -- drop dataset.builder.{key}")


def _options(builder: str | Mapping) -> dict[str, Any]:
    return {key: value for key, value in builder.items() if key != "name"} if isinstance(builder, Mapping) else {}


def build(builder: str | Mapping, root: str | Path) -> None:
    """Build the dataset of a config's builder section into root (nothing when it is already built there)."""
    BUILDERS[builder_name(builder)].build(Path(root), **_options(builder))


def num_classes(builder: str | Mapping | None, root: str | Path) -> int:
    """The number of classes of a built dataset (`num_classes: auto`); ConfigError if its builder cannot say."""
    name = builder_name(builder)
    if name not in BUILDERS or BUILDERS[name].classes is None:
        counting = sorted(key for key, value in BUILDERS.items() if value.classes is not None)
        raise ConfigError(f"dataset.num_classes=auto needs a builder that counts its classes ({', '.join(counting)}), "
                          f"not dataset.builder={name} -- set dataset.num_classes=<the number of label columns>")
    return BUILDERS[name].classes(Path(root), **_options(builder))


for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
