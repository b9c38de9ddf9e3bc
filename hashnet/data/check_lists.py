"""Check a dataset's list files as users have them, before training: what `scripts/check_lists.py` prints.

For each split: line count, label width, rows with no label, duplicate paths, images missing after the
path map (with a suggested `dataset.path_map`) and, optionally, images that cannot be decoded; across
splits: images shared by query and database, train and database, train and query. Each finding has a
level: "error" (training would fail or be wrong; the script exits non-zero), "warning" (worth a look)
or "info" (a fact of the protocol), and says how to fix it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Sequence

import numpy as np

from hashnet.data.datamodule import SPLITS, HashDataModule
from hashnet.data.images import read_image
from hashnet.data.lists import ImageList, ListFileError, read_list, resolve_paths

LEVELS = ("error", "warning", "info")


@dataclass(frozen=True)
class Finding:
    """One line of the check: level ("error" / "warning" / "info"), where (a split, or "a+b"), what, fix."""
    level: str
    where: str
    message: str
    fix: str = ""

    def __str__(self) -> str:
        return f"[{self.level}] {self.where}: {self.message}" + (f"\n    fix: {self.fix}" if self.fix else "")


def _quote(paths: Sequence[str], shown: int) -> str:
    """The first `shown` paths, one per indented line."""
    return "".join(f"\n      {path}" for path in paths[:shown])


def suggest_path_map(raw_paths: Sequence[str], root: str | Path) -> dict[str, str] | None:
    """A {old prefix: new prefix} under which the first of raw_paths exists in root, or None.

    Strips leading components of the path as written (e.g. /home/author/dataset/coco/ or ./data/nus_wide/)
    until the rest names a file under root; the prefix stripped maps to root (absolute, with a slash).
    """
    if not raw_paths:
        return None
    raw = raw_paths[0]
    parts = PurePosixPath(raw).parts
    for start in range(1, len(parts)):
        rest = "/".join(parts[start:])
        if raw.endswith(rest) and os.path.isfile(os.path.join(root, rest)):
            return {raw[: len(raw) - len(rest)]: os.path.abspath(root).rstrip("/") + "/"}
    return None


def _missing_finding(split: str, image_list: ImageList, missing: list[int], root: str,
                     path_map: dict[str, str] | None, shown: int) -> Finding:
    """The error for images of split absent on disk, with a path map that finds them when there is one."""
    raw = [image_list.raw_paths[i] for i in missing]
    message = (f"{len(missing)} of {len(image_list)} images do not exist after the path map, e.g. "
               f"(line: as written -> looked for):" + _quote(
                   [f"{image_list.where(i)}: {image_list.raw_paths[i]} -> {image_list.paths[i]}" for i in missing],
                   shown))
    suggestion = suggest_path_map(raw, root)
    if suggestion is None:
        fix = (f"no suffix of '{raw[0]}' exists under dataset.root={root}: put the images there, or set "
               "dataset.root / dataset.path_map='{<prefix in the list>: <folder on this machine>}'")
    else:
        (old, new), = suggestion.items()
        found = sum(os.path.isfile(p) for p in resolve_paths(raw, root, {**(path_map or {}), **suggestion}))
        fix = (f"add dataset.path_map='{{{old}: {new}}}' on the command line (or `path_map: {{{old}: {new}}}` "
               f"in the dataset config): it finds {found} of these {len(missing)} images")
    return Finding("error", split, message, fix)


def _unreadable(image_list: ImageList, indices: Sequence[int]) -> dict[int, str]:
    """{entry: why} for the entries among indices whose image training could not decode (the same reader,
    hashnet.data.images.read_image: its formats, its pixel limit)."""
    bad = {}
    for i in indices:
        try:
            read_image(image_list.paths[i])
        except (OSError, SyntaxError, ValueError, RuntimeError) as err:
            bad[i] = str(err).splitlines()[0] if str(err) else type(err).__name__
    return bad


def check_split(split: str, image_list: ImageList, datamodule: HashDataModule, check_images: bool,
                shown: int) -> list[Finding]:
    """Findings about one parsed list: size, width, unlabeled rows, duplicates, missing/unreadable images."""
    findings = [Finding("info", split, f"{len(image_list)} lines, {image_list.labels.shape[1]} labels each "
                                       f"({image_list.source})")]
    unlabeled = np.flatnonzero(image_list.labels.sum(axis=1) == 0)
    if len(unlabeled):
        fix = ("dataset.drop_unlabeled=true leaves them out (the original keeps them)" if split != "database"
               else "none needed: such images are never relevant to any query")
        findings.append(Finding("warning", split, f"{len(unlabeled)} of {len(image_list)} rows have no label "
                                                  f"(first: {image_list.where(unlabeled[0])})", fix))
    duplicates = len(image_list) - len(set(image_list.paths))
    if duplicates:
        findings.append(Finding("warning", split, f"{duplicates} lines repeat an image listed earlier",
                                "remove the repeated lines unless the repetition is intended"))
    exists = [os.path.isfile(path) for path in image_list.paths]
    missing = [i for i, ok in enumerate(exists) if not ok]
    if missing:
        findings.append(_missing_finding(split, image_list, missing, datamodule.root, datamodule.path_map, shown))
    if check_images:
        bad = _unreadable(image_list, [i for i, ok in enumerate(exists) if ok])
        if bad:
            examples = _quote([f"{image_list.where(i)}: {image_list.paths[i]} ({why})" for i, why in bad.items()],
                              shown)
            findings.append(Finding("error", split, f"{len(bad)} images cannot be decoded, e.g.:{examples}",
                                    "replace those files, or set dataset.on_bad_image=skip to leave them out"))
    return findings


OVERLAPS = {  # (split a, split b): (level, what it means, fix)
    ("query", "database"): ("info", "the original protocol (COCO's queries are all in its database)",
                            "dataset.exclude_queries_from_database=true for the strict protocol"),
    ("train", "database"): ("info", "the original protocol (ImageNet's training images are in its database)", ""),
    ("train", "query"): ("warning", "queries seen in training inflate mAP", "remove them from one of the lists"),
}


def check_overlaps(lists: dict[str, ImageList], shown: int) -> list[Finding]:
    """Images (resolved paths) listed in two splits."""
    findings = []
    for (a, b), (level, meaning, fix) in OVERLAPS.items():
        if a in lists and b in lists:
            shared = sorted(set(lists[a].paths) & set(lists[b].paths))
            if shared:
                examples = f", e.g.:{_quote(shared, shown)}" if level != "info" else ""
                findings.append(Finding(level, f"{a}+{b}", f"{len(shared)} of the {len(set(lists[a].paths))} {a} "
                                        f"images are also in {b}: {meaning}{examples}", fix))
    return findings


def check_dataset(datamodule: HashDataModule, check_images: bool = False, shown: int = 5,
                  widths: dict[int, list[str]] | None = None) -> list[Finding]:
    """Every finding about the datamodule's three lists (as written, before the protocol options).

    widths: {label width: names of the dataset configs with that many classes}, named when a list's width is another
    dataset's."""
    findings, lists = [], {}
    for split in SPLITS:
        try:
            image_list = read_list(datamodule.list_path(split), None, datamodule.root, datamodule.path_map)
        except ListFileError as err:
            findings.append(Finding("error", split, str(err)))
            continue
        width = image_list.labels.shape[1]
        if width != datamodule.num_classes:
            known = (widths or {}).get(width, [])
            other = f" ({', '.join(f'dataset={name}' for name in known)} has {width})" if known else ""
            findings.append(Finding("error", split, f"{width} labels per line, but dataset.num_classes="
                                    f"{datamodule.num_classes}", f"use the lists made for this dataset, or set "
                                    f"dataset.num_classes={width}{other}"))
        lists[split] = image_list
        findings += check_split(split, image_list, datamodule, check_images, shown)
    return findings + check_overlaps(lists, shown)


def format_findings(name: str, findings: Sequence[Finding]) -> str:
    """The report: every finding, then a summary line counting errors and warnings."""
    counts = {level: sum(f.level == level for f in findings) for level in LEVELS}
    verdict = "OK" if not counts["error"] else "FAILED"
    return "\n".join([*(str(f) for f in findings),
                      f"{name}: {verdict} ({counts['error']} errors, {counts['warning']} warnings)"])
