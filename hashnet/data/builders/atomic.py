"""Seeded, idempotent and atomic builds of dataset folders (the embedded digits, CIFAR-10).

A build writes everything into a temporary sibling folder, writes a marker file holding its
recipe (a JSON dict: builder name and settings) last, and renames the folder into place. So
an interrupted build leaves nothing behind and is redone (a killed one leaves its temporary folder, which the
next build on that host removes), two processes racing on the same
folder both end with one complete copy, and a folder built with other settings is refused.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import uuid
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from PIL import Image

from hashnet.utils.errors import UserError
from hashnet.utils.files import glob_escape, process_alive

MARKER = ".complete"  # written last; its presence means the folder is a finished build


def built_recipe(root: Path) -> dict | None:
    """The recipe a finished build in root was made with, or None when root holds none."""
    marker = root / MARKER
    return json.loads(marker.read_text()) if marker.is_file() else None


class BuildFolderError(UserError, FileExistsError):
    """A dataset folder holds something else than a finished build."""


class OtherBuildError(UserError, ValueError):
    """A dataset folder holds a finished build of other settings."""


def is_complete(root: Path, recipe: dict) -> bool:
    """Whether root holds a finished build of recipe; a finished build of another recipe is an error."""
    marker = root / MARKER
    if not marker.is_file():
        return False
    found = json.loads(marker.read_text())
    if found != recipe:
        raise OtherBuildError(f"{root} already holds a {found} build, not {recipe} -- delete {root} "
                              "to rebuild it with these settings, or point dataset.root at another folder")
    return True


def build_atomically(root: str | Path, recipe: dict, write: Callable[[Path], None], keep: Sequence[str] = ()) -> None:
    """Unless root already holds recipe's build, call write(folder) on a fresh temporary folder,
    mark it with recipe and rename it to root.

    root must be absent, an empty folder, or a finished build of the same recipe (then nothing
    happens); recipe["builder"] names the build in messages. keep: names of entries root may already
    hold (the source archive a user put there): they stay, and the build's files are moved in beside them,
    the marker last.
    """
    root = Path(root)
    if is_complete(root, recipe):
        return
    present = sorted(entry.name for entry in root.iterdir()) if root.is_dir() else []
    if [name for name in present if name not in keep]:
        raise BuildFolderError(f"{root} is not empty and holds no finished {recipe['builder']} build (it holds "
                               f"{', '.join(present[:5])}{', ...' if len(present) > 5 else ''}) -- point dataset.root "
                               "at a new folder or delete this one")
    root.parent.mkdir(parents=True, exist_ok=True)
    remove_dead_builds(root)
    building = root.parent / f".{root.name}.building-{os.getpid()}@{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
    building.mkdir()
    try:
        write(building)
        (building / MARKER).write_text(json.dumps(recipe))
        if present:  # beside what the user put there
            for entry in sorted(building.iterdir(), key=lambda path: path.name == MARKER):
                os.replace(entry, root / entry.name)
            return
        try:
            os.rename(building, root)  # atomic; replaces an empty root, fails on a full one
        except OSError:
            if not is_complete(root, recipe):  # not a racing process that finished first
                raise
    finally:
        shutil.rmtree(building, ignore_errors=True)


def remove_dead_builds(root: Path) -> list[Path]:
    """Delete the temporary folders beside root of builds whose process, on this host, is gone (a killed build);
    those of live processes and of other hosts stay. Returns what was deleted."""
    pattern = re.compile(rf"^\.{re.escape(root.name)}\.building-(\d+)@(.+)-[0-9a-f]+$")
    removed = []
    for stray in root.parent.glob(f".{glob_escape(root.name)}.building-*"):
        match = pattern.match(stray.name)
        if match and match.group(2) == socket.gethostname() and not process_alive(int(match.group(1))):
            shutil.rmtree(stray, ignore_errors=True)
            removed.append(stray)
    return removed


def save_pngs(folder: Path, names: list[str], images: np.ndarray) -> None:
    """Save images (N, H, W) grey or (N, H, W, 3) RGB uint8 as PNGs at folder/name for each name."""
    for name, image in zip(names, images):
        Image.fromarray(image).save(folder / name)


def write_list(path: Path, names: list[str], labels: np.ndarray) -> None:
    """Write ``<name> <l1> ... <lC>`` lines (the format :func:`hashnet.data.lists.read_list` reads); labels (N, C) 0/1."""
    path.write_text("".join(f"{name} {' '.join(map(str, row))}\n" for name, row in zip(names, labels)))
