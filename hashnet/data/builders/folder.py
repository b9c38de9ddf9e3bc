"""``folder``: your own images, an ImageFolder-style tree, as list files in the paper's format.

    python scripts/check_lists.py dataset=folder dataset.root=flowers/     # writes the lists once, then checks them

dataset.root is the tree: one sub-folder per class (its name is the class), holding that class's images at any
depth below it (hashnet.data.image_files says which files count; hidden files and folders are left out). Images
directly in the root belong to no class and are left out, with a warning. Labels are one-hot, their columns the
class folders in sorted order (written to classes.txt), so dataset.num_classes is "auto": the number of classes.

The split is seeded and stratified by class. Each class's images (sorted by path) are permuted with one
generator (classes in sorted order); its first `query` images are queries (test.txt), then of the rest R the
first `train` are the training images and the last `database` the database. A size is a number of images per
class (an int >= 1) or a fraction of the class (query) or of R (train, database) as a float in (0, 1], rounded,
at least 1. Train and database overlap only when together they exceed R: the defaults (query 0.1, train 1.0,
database 1.0) train on every image that is not a query and search all of them, the paper's protocol for ImageNet,
NUS-WIDE and COCO (queries held out of the database, training images in it); train + database <= R gives
CIFAR-10's (database without training images). A class too small for its split is refused by name.

The lists (paths relative to the root, so the tree can move with them), classes.txt and the counts the split was
made from are written once, atomically (hashnet.data.builders.atomic), into root/<lists> (".hashnet": a hidden
folder the walk skips; an absolute folder elsewhere for a read-only tree). Asking for another split refuses, naming
the folder to delete; images added after the split are not in the lists, and the build warns that the tree changed.

A folder without labels (labels="none", or a flat folder: images directly in the root and no class folder) is
split without classes: its images at any depth are permuted with the seed, the first `query` of them are queries,
`train` of the others train, and every image is in the database, so the whole folder is searchable. Their lists
hold one label column of zeros (classes.txt is empty): the unsupervised and fitted methods train on it, the others
are refused, and there is nothing to evaluate (train and evaluate skip it, saying why).

Photos train with the original HashNet's recipe (configs/dataset/folder.yaml picks configs/recipe/paper.yaml:
ImageNet weights), not the digits' from-scratch settings of train.yaml.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Callable

import numpy as np

from hashnet.data.builders import register
from hashnet.data.builders.atomic import MARKER, build_atomically, write_list
from hashnet.data.builders.per_class import split_per_class
from hashnet.data.image_files import find_images, is_image_file
from hashnet.utils.errors import UserError

LISTS = ".hashnet"  # default lists folder, inside the root: hidden, so the walk never takes it for a class
CLASSES = "classes.txt"  # the class folders in label-column order, one a line
COUNTS = "counts.json"  # {class: images} of the tree the split was made from
SPLIT_KEYS = ("query", "train", "database")

log = logging.getLogger(__name__)


class FolderError(UserError, ValueError):
    """An image tree that cannot be split as asked; the message names the folder or classes and the fix."""


def class_folders(root: Path) -> list[str]:
    """The names of root's sub-folders that are classes (not hidden), sorted."""
    if not root.is_dir():
        raise FolderError(f"dataset.root={root} is not a folder -- pass the folder that holds one sub-folder of images "
                          "per class: dataset.root=<dir>")
    return sorted(entry.name for entry in root.iterdir() if entry.is_dir() and not entry.name.startswith("."))


def count_classes(root: str | Path, lists: str = LISTS, **_: Any) -> int:
    """dataset.num_classes=auto: the classes of the written lists (classes.txt), else root's class folders."""
    root = Path(root)
    written = root / lists / CLASSES
    if written.is_file():
        return max(1, len(written.read_text().splitlines()))  # an unlabelled folder: one column of zeros
    return max(1, len(class_folders(root)))


def size(value: Any, of: int) -> int:
    """A split size: an int is a count, a float in (0, 1] a fraction of `of`, rounded half up, at least 1."""
    if isinstance(value, float):
        return max(1, int(value * of + 0.5))
    return int(value)


def check_sizes(sizes: dict[str, Any]) -> None:
    for key, value in sizes.items():
        count = isinstance(value, int) and not isinstance(value, bool) and value >= 1
        fraction = isinstance(value, float) and 0.0 < value <= 1.0
        if not (count or fraction):
            raise FolderError(f"the folder dataset's {key} size is {value!r}: it must be a number of images per class "
                              f"(an int >= 1) or a fraction in (0, 1] (a float, e.g. 0.1) -- set dataset.builder.{key} "
                              "in configs/dataset/folder.yaml or on the command line")


def class_sizes(sizes: dict[str, Any]) -> Callable[[int], tuple[int, int, int]]:
    """A class's image count -> its (query, train, database) counts: query of the count, train and database of the
    R others (size)."""
    def counts(count: int) -> tuple[int, int, int]:
        queries = size(sizes["query"], count)
        return queries, size(sizes["train"], count - queries), size(sizes["database"], count - queries)
    return counts


def too_small(count: int, sizes: dict[str, Any]) -> str:
    """Why a class of count images is too small for the split."""
    queries, train, database = class_sizes(sizes)(count)
    return (f"{count} image{'s' if count != 1 else ''}, fewer than {queries} quer{'ies' if queries != 1 else 'y'}"
            f" + {max(train, database, 1)} to train on and find")


def split_tree(root: Path, seed: int, sizes: dict[str, Any]) -> tuple[list[str], dict[str, list[Path]],
                                                                          dict[str, list[tuple[Path, int]]]]:
    """(classes, {class: its images}, {split: [(image, label)]}) of the tree at root; FolderError naming the
    classes too small for the split, or a tree with fewer than 2 classes."""
    classes = class_folders(root)
    loose = [path for path in root.iterdir() if path.is_file() and is_image_file(path.name)
             and not path.name.startswith(".")]
    if loose:
        log.warning("%d images directly in %s belong to no class (no sub-folder) and are left out, e.g. %s",
                    len(loose), root, loose[0].name)
    if len(classes) < 2:
        found = f": {classes[0]!r}" if classes else ""
        raise FolderError(f"{root} holds {len(classes)} class folder{'s' if len(classes) != 1 else ''}{found}; a "
                          "folder dataset needs at least 2, one sub-folder of images per class -- pass "
                          "dataset.root=<the folder above the class folders>")
    members = {name: find_images(root / name) for name in classes}
    warn_shared_files(root, members)
    images = [path for name in classes for path in members[name]]
    labels = np.repeat(np.arange(len(classes)), [len(members[name]) for name in classes])
    split, too_few = split_per_class(labels, len(classes), seed, class_sizes(sizes))
    parts = {key: [(images[i], int(labels[i])) for i in positions] for key, positions in split.items()}
    small = [f"{classes[label]!r} ({too_small(len(members[classes[label]]), sizes)})" for label in too_few]
    if small:
        asked = ", ".join(f"{key} {sizes[key]}" for key in SPLIT_KEYS)
        raise FolderError(f"{len(small)} of the {len(classes)} classes in {root} have too few images for the split "
                          f"({asked}): {'; '.join(small)} -- add images to them, remove their folders, or ask for "
                          "smaller sizes (dataset.builder.query / train / database, see configs/dataset/folder.yaml)")
    return classes, members, parts


def warn_shared_files(root: Path, members: dict[str, list[Path]]) -> None:
    """A warning for each two class folders that hold the same image files (a link to a class folder, or to its
    images): each such image is listed in both classes."""
    owner: dict[str, str] = {}
    shared: dict[tuple[str, str], int] = {}
    for name, images in members.items():
        for path in images:
            first = owner.setdefault(os.path.realpath(path), name)
            if first != name:
                shared[first, name] = shared.get((first, name), 0) + 1
    for (first, second), count in shared.items():
        link = next((f" ({root / name} is a link to {os.path.realpath(root / name)})" for name in (second, first)
                     if (root / name).is_symlink()), "")
        log.warning("class folders %r and %r of %s hold the same %d image file%s%s: each is listed in both classes -- "
                    "remove the link (or the copy) unless those images belong to both", first, second, root, count,
                    "s" if count != 1 else "", link)


def list_name(path: Path, root: Path) -> str:
    """path as a list file names it, relative to root; FolderError naming a file whose name a list line cannot
    hold (a line break, bytes that are not UTF-8). A name that starts with a space is written as ./<name> (the list
    reader strips the space off a line's start)."""
    name = path.relative_to(root).as_posix()
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise FolderError(f"{os.fsencode(path)!r}: its name is not UTF-8 text, which a list file holds -- rename it "
                          "in UTF-8, or move it out of dataset.root") from None
    if name.splitlines() != [name]:
        breaks = sorted({f"U+{ord(char):04X}" for char in name if (char + "x").splitlines() != [char + "x"]})
        raise FolderError(f"{str(path)!r}: its name holds a line break ({', '.join(breaks)}), which a list file cannot "
                          "hold -- rename it without one, or move it out of dataset.root")
    return f"./{name}" if name[:1].isspace() else name


LABELS = ("folders", "none")


def is_flat(root: Path) -> bool:
    """Whether root holds images directly and no class folder: a folder without labels."""
    return not class_folders(root) and any(path.is_file() and is_image_file(path.name) and not path.name.startswith(".")
                                           for path in root.iterdir())


def split_unlabelled(root: Path, seed: int, sizes: dict[str, Any]) -> dict[str, list[Path]]:
    """{split: images} of a folder without labels (module docstring); FolderError if it holds fewer than 2 images."""
    images = find_images(root)
    if len(images) < 2:
        raise FolderError(f"{root} holds {len(images)} image{'s' if len(images) != 1 else ''}: a folder needs at least "
                          "2 -- pass dataset.root=<a folder of images>")
    order = [images[i] for i in np.random.default_rng(seed).permutation(len(images))]
    queries = min(size(sizes["query"], len(images)), len(images) - 1)
    return {"query": order[:queries], "train": order[queries:queries + size(sizes["train"], len(images) - queries)],
            "database": images}


def build_folder(root: str | Path, lists: str = LISTS, seed: int = 0, query: float = 0.1,
                 train: float = 1.0, database: float = 1.0, labels: str = "folders") -> None:
    """Write root/lists/{train,test,database}.txt, classes.txt and counts.json for the tree at root (module
    docstring), unless they are there; refuse (FolderError) other sizes or seed than those they were written with.
    labels: "folders" (one sub-folder per class; a flat folder is taken as "none") or "none"."""
    root = Path(root)
    sizes = {"query": query, "train": train, "database": database}
    check_sizes(sizes)
    if labels not in LABELS:
        raise FolderError(f"dataset.builder.labels={labels!r}: it must be one of {list(LABELS)} -- pass e.g. "
                          "dataset.builder.labels=none")
    if labels == "folders" and root.is_dir() and is_flat(root):
        labels = "none"
    out = root / lists
    recipe = {"builder": "folder", "seed": seed, **sizes, **({"labels": "none"} if labels == "none" else {})}
    marker = out / MARKER
    if marker.is_file():
        written = json.loads(marker.read_text())
        if written != recipe:
            changed = ", ".join(f"{key} {written.get(key)} -> {value}" for key, value in recipe.items()
                                if written.get(key) != value)
            raise FolderError(f"the lists in {out} were written with another split ({changed}) -- delete {out} to "
                              "split the folder again (queries and training images change), or keep the settings "
                              "they were written with")
        _warn_if_changed(root, out)
        return

    def write_unlabelled(folder: Path) -> None:
        parts = split_unlabelled(root, seed, sizes)
        for name, key in (("train.txt", "train"), ("test.txt", "query"), ("database.txt", "database")):
            rows = sorted(parts[key])
            write_list(folder / name, [list_name(path, root) for path in rows],
                       np.zeros((len(rows), 1), dtype=np.uint8))
        (folder / CLASSES).write_text("")
        (folder / COUNTS).write_text(json.dumps({"": len(parts["database"])}))
        log.info("folder %s: %d images without labels -> %d queries, %d training images, all of them in the "
                 "database; lists in %s", root, len(parts["database"]), len(parts["query"]), len(parts["train"]), out)

    def write(folder: Path) -> None:
        classes, members, parts = split_tree(root, seed, sizes)
        onehot = np.eye(len(classes), dtype=np.uint8)
        for name, key in (("train.txt", "train"), ("test.txt", "query"), ("database.txt", "database")):
            rows = sorted(parts[key])
            write_list(folder / name, [list_name(path, root) for path, _ in rows],
                       onehot[[label for _, label in rows]])
        (folder / CLASSES).write_text("".join(f"{name}\n" for name in classes))
        (folder / COUNTS).write_text(json.dumps({name: len(members[name]) for name in classes}, indent=1))
        log.info("folder %s: %d images in %d classes -> %d queries, %d training and %d database images, lists in %s",
                 root, sum(map(len, members.values())), len(classes), len(parts["query"]), len(parts["train"]),
                 len(parts["database"]), out)

    try:
        build_atomically(out, recipe, write_unlabelled if labels == "none" else write)
    except PermissionError as err:
        raise FolderError(f"cannot write the lists into {out} ({err}) -- make {root} writable, or write them elsewhere: "
                          "the builder's lists folder may be absolute (dataset.builder.lists, see "
                          "configs/dataset/folder.yaml)") from err


def _warn_if_changed(root: Path, out: Path) -> None:
    """A warning when the tree's classes or their image counts differ from those the lists were written for."""
    try:
        written = json.loads((out / COUNTS).read_text())
        now = {"": len(find_images(root))} if "" in written else \
            {name: len(find_images(root / name)) for name in class_folders(root)}  # "": a folder without labels
    except (OSError, ValueError, FolderError):
        return
    if now != written:
        changes = [f"{name}: {written.get(name, 0)} -> {now.get(name, 0)} images"
                   for name in sorted(set(now) | set(written)) if now.get(name, 0) != written.get(name, 0)]
        log.warning("the images of %s changed since its lists were written (%s); the lists stay as written -- delete "
                    "%s to split the folder again", root, "; ".join(changes[:5]) + (" ..." if len(changes) > 5 else ""),
                    out)


register("folder", build_folder, classes=count_classes)
