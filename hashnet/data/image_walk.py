"""A folder's image files streamed in find_images' order, one at a time: a listing of 1e9 files without 1e9 paths
in memory (the code store's manifest, hashnet.retrieval.store, is written from it).

find_images sorts every path by its components; a depth-first walk that sorts each folder's entries by name (files
and subfolders merged) and descends into a subfolder at its place yields that same order while walking. The rules
are find_images' (hashnet.data.image_files): hidden entries and non-image suffixes left out, links to folders
followed, a folder reached twice (a link back up the tree) walked the first time only.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from hashnet.data.image_files import is_image_file


def walk_images(folder: str | Path) -> Iterator[Path]:
    """Every image file below folder, at any depth, in find_images(folder)'s order, yielded as the walk finds it."""
    seen: set[str] = set()

    def walk(top: str) -> Iterator[Path]:
        real = os.path.realpath(top)
        if real in seen:
            return
        seen.add(real)
        try:
            entries = sorted((entry.name, entry.is_dir()) for entry in os.scandir(top) if not entry.name.startswith("."))
        except OSError:  # os.walk (find_images) leaves out a folder it cannot list
            return
        for name, is_dir in entries:
            if is_dir:
                yield from walk(os.path.join(top, name))
            elif is_image_file(name):
                yield Path(top, name)

    yield from walk(str(folder))
