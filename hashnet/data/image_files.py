"""Image files without a list: which files are images, and a folder walked for them (hashnet.data.dataset reads them).

What the Python API (hashnet.inference.hasher), `scripts/encode.py images=<dir>` and the folder dataset builder
(hashnet.data.builders.folder) share. A folder is walked recursively in sorted order (so the same tree gives the
same order on every machine), following symbolic links to folders once; hidden files and folders (a leading
dot: .git, .ipynb_checkpoints, a build's own temporary folders) are left out, and so are files whose suffix is not
one of IMAGE_SUFFIXES, the formats the decoders read (hashnet.data.images.read_image).
"""
from __future__ import annotations

import os
from pathlib import Path

from hashnet.utils.files import walk_once

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".ppm", ".pgm")


def is_image_file(path: str | Path) -> bool:
    """Whether path's suffix (any case) is one of IMAGE_SUFFIXES."""
    return os.path.splitext(str(path))[1].lower() in IMAGE_SUFFIXES


def find_images(folder: str | Path) -> list[Path]:
    """Every image file below folder, at any depth, sorted by path (component by component; see the module
    docstring for what is left out)."""
    found: list[Path] = []
    for top, folders, files in walk_once(folder):  # a link back up the tree is walked once
        folders[:] = sorted(name for name in folders if not name.startswith("."))
        found += [Path(top, name) for name in sorted(files) if not name.startswith(".") and is_image_file(name)]
    return sorted(found)  # by path components: a/deeper/two.png before a/one.png
