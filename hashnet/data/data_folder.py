"""The folder a dataset lives in (dataset.root, under HASHNET_DATA_DIR or data/): refused when it is a file, and an
embedded dataset built into it with the errors of a folder that cannot be written or a full disk said plainly."""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from hashnet.data.builders import build
from hashnet.utils.errors import DISK_FULL, NOT_PERMITTED, UserError


class DatasetBuildError(UserError, OSError):
    """An embedded dataset cannot be built where its root points: the folder cannot be written, or the disk is full."""


def check_data_folder(root: Path) -> None:
    """DatasetBuildError when root, or the nearest existing folder above it, is a file: named as HASHNET_DATA_DIR
    when that variable put root there, else as dataset.root."""
    existing = root
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.exists() or existing.is_dir():
        return
    variable = os.environ.get("HASHNET_DATA_DIR")
    if variable and os.path.abspath(existing) == os.path.abspath(variable):
        raise DatasetBuildError(f"HASHNET_DATA_DIR={variable} is a file, not a folder (datasets go in "
                                "$HASHNET_DATA_DIR/<name>/) -- point it at a folder (export HASHNET_DATA_DIR=<folder>),"
                                " or unset HASHNET_DATA_DIR to use data/ here")
    raise DatasetBuildError(f"dataset.root={root}: {existing} is a file, not a folder -- pass dataset.root=<a folder>")


def build_into(builder: str | Mapping, root: str | Path, name: str) -> None:
    """Build the builder's dataset `name` into root (hashnet.data.builders.build); DatasetBuildError naming the fix
    when the folder cannot be written or the disk is full."""
    try:
        build(builder, root)
    except OSError as err:
        if err.errno not in (*DISK_FULL, *NOT_PERMITTED) or isinstance(err, UserError):
            raise
        raise DatasetBuildError(
            f"cannot build dataset {name} into {root}: {err.strerror} ({err.filename}) -- set HASHNET_DATA_DIR (or "
            "paths.data_dir=<folder>) to a folder you can write"
            + (" on a disk with free space" if err.errno in DISK_FULL else "")) from err
