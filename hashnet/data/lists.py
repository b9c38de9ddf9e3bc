"""List files: ``<path> <l1> ... <lC>`` per image, labels 0/1, as in the HashNet release
(``train.txt``, ``test.txt`` = queries, ``database.txt``).

The path may contain spaces: the labels are the trailing run of 0/1 tokens (exactly
num_classes of them when it is given). CRLF line endings are accepted and blank lines
skipped. Parsing uses plain str methods and one numpy decode, so that lists of hundreds of
thousands of lines read in well under a second; errors are ListFileError naming the file,
line, offending value and a fix.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from hashnet.utils.errors import UserError

_BITS = frozenset(("0", "1"))


class ListFileError(UserError, ValueError):
    """A missing or malformed list file: ``<file>:<line>: <problem> (<value>) -- <how to fix>``."""

    def __init__(self, file: str | Path, line: int | None, problem: str, value: str, fix: str):
        self.file, self.line = str(file), line
        where = self.file if line is None else f"{self.file}:{line}"
        super().__init__(f"{where}: {problem} ({value}) -- {fix}")


@dataclass(frozen=True)
class ImageList:
    """A parsed list file.

    paths: resolved image paths (path_map, then root applied); raw_paths: as written in
    the list; labels: (N, C) uint8 0/1; lines: (N,) 1-based line numbers in source.
    """

    source: str
    paths: list[str]
    raw_paths: list[str]
    labels: np.ndarray
    lines: np.ndarray

    def __len__(self) -> int:
        return len(self.paths)

    def where(self, index: int) -> str:
        """``<list file>:<line>`` of entry index, for messages."""
        return f"{self.source}:{self.lines[index]}"

    def take(self, keep: np.ndarray) -> ImageList:
        """The entries where keep (N,) bool is true, in list order; line numbers stay those of source."""
        chosen = np.flatnonzero(keep)
        return ImageList(self.source, [self.paths[i] for i in chosen], [self.raw_paths[i] for i in chosen],
                         self.labels[chosen], self.lines[chosen])


def _trailing_bits(tokens: list[str]) -> int:
    """Length of the trailing run of "0"/"1" tokens."""
    run = 0
    while run < len(tokens) and tokens[-1 - run] in _BITS:
        run += 1
    return run


def _is_number(token: str) -> bool:
    """Whether token reads as a number (so a mistyped label rather than part of the path)."""
    try:
        float(token)
    except ValueError:
        return False
    return True


def _line_problem(tokens: list[str], width: int | None, origin: str) -> tuple[str, str, str] | None:
    """Why tokens (a split line) are not ``<path> <width labels 0/1>``: (problem, value, fix), or None.

    width None accepts any positive label count (used to learn it from the first line).
    origin says where width comes from, e.g. "num_classes=10" or "as on line 1".
    """
    run = _trailing_bits(tokens)
    form = f"write each line as '<path> <{width or 'C'} labels, each 0 or 1>'"
    wrong_count = f"label count {run}, expected {width} ({origin})", " ".join(tokens[-run - 1:]), form
    if len(tokens) == 1:
        return "no labels after the path", tokens[0], form
    if width is not None and run > width:
        return wrong_count
    if run == len(tokens):
        return "no path before the labels", " ".join(tokens), form
    before = tokens[-run - 1]  # the last token that is not a label
    if run != width and run + 1 < len(tokens) and _is_number(before):
        return "label is not 0 or 1", before, "labels must be the integers 0 or 1"
    if width is None:
        return ("no 0/1 labels at the end of the line", before, form) if run == 0 else None
    return wrong_count if run < width else None


def _decode(bits: list[str], width: int) -> tuple[np.ndarray | None, int | None]:
    """Label strings (each the concatenated label tokens of a line) -> ((N, width) uint8, None),
    or (None, index of the first bad string)."""
    flat = "".join(bits)
    if len(flat) == len(bits) * width:
        codes = np.frombuffer(flat.encode("latin-1", "replace"), np.uint8) - ord("0")
        if not (codes > 1).any():
            return codes.reshape(len(bits), width), None
    return None, next(i for i, b in enumerate(bits) if len(b) != width or b.strip("01"))


def resolve_paths(raw_paths: Sequence[str], root: str | Path | None = None,
                  path_map: dict[str, str] | None = None) -> list[str]:
    """Apply path_map {old_prefix: new_prefix} (longest matching prefix wins), then resolve
    relative paths against root (left as they are when root is None)."""
    prefixes = sorted((path_map or {}).items(), key=lambda item: len(item[0]), reverse=True)
    base = "" if root is None else os.fspath(root)
    resolved = []
    for path in raw_paths:
        for old, new in prefixes:
            if path.startswith(old):
                path = new + path[len(old):]
                break
        resolved.append(os.path.join(base, path))
    return resolved


def read_list(path: str | Path, num_classes: int | None = None, root: str | Path | None = None,
              path_map: dict[str, str] | None = None) -> ImageList:
    """Parse a list file; errors are ListFileError naming file, line, value and a fix.

    Without num_classes the label count is learnt from the first entry and every other
    entry must match it. Image paths go through :func:`resolve_paths`.
    """
    if num_classes is not None and num_classes < 1:
        raise ValueError(f"num_classes must be positive, got {num_classes}")
    source = str(path)
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise ListFileError(source, None, "list file not found", source,
                            "check dataset.root and the dataset.*_list names") from None
    try:
        lines = data.decode("utf-8-sig").splitlines()
    except UnicodeDecodeError as err:  # e.g. a Latin-1 path: the line would name no file on this machine
        line = data.count(b"\n", 0, err.start) + 1
        shown = data.split(b"\n")[line - 1].rstrip(b"\r").decode("utf-8", "backslashreplace")
        raise ListFileError(source, line, f"not UTF-8 text: byte {data[err.start:err.start + 1]!r}", shown,
                            "write the list as UTF-8 (e.g. iconv -f latin1 -t utf-8), with the image renamed to "
                            "match") from None
    first = next((n for n, line in enumerate(lines) if line.strip()), None)
    if first is None:
        raise ListFileError(source, None, "no entries", f"{len(lines)} blank lines",
                            "write one '<path> <labels 0/1>' line per image")
    width, origin = num_classes, f"num_classes={num_classes}"
    if width is None:
        tokens = lines[first].split()
        problem = _line_problem(tokens, None, "")
        if problem:
            raise ListFileError(source, first + 1, *problem)
        width, origin = _trailing_bits(tokens), f"as on line {first + 1}"
    raw, bits, numbers, bad_line = [], [], [], None
    for number, line in enumerate(lines, 1):  # the hot loop: plain str methods only
        parts = line.rsplit(None, width)
        if not parts:
            continue
        if len(parts) != width + 1 or parts[0].rsplit(None, 1)[-1] in _BITS:
            bad_line = number
            break
        raw.append(parts[0].strip())
        bits.append("".join(parts[1:]))
        numbers.append(number)
    labels, bad_row = _decode(bits, width)
    if bad_row is not None:  # earlier than any structural problem, which stopped the loop
        bad_line = numbers[bad_row]
    if bad_line is not None:
        raise ListFileError(source, bad_line, *_line_problem(lines[bad_line - 1].split(), width, origin))
    return ImageList(source, resolve_paths(raw, root, path_map), raw, labels, np.asarray(numbers))
