"""List file parsing: good lists, path resolution, and every error's message."""
from pathlib import Path

import numpy as np
import pytest

from hashnet.data.lists import ListFileError, read_list, resolve_paths


def write(tmp_path: Path, text: str, name: str = "list.txt") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode())
    return path


def test_spaces_crlf_blank_lines_bom_and_tabs(tmp_path):
    text = ("\ufeffa photo/my  cat.jpg 0 1 0\r\n\r\n   \r\n"
            "/abs/b.jpg 1 1 0\r\n  rel/c 1.jpg\t0\t0\t1\r\n")
    parsed = read_list(write(tmp_path, text), num_classes=3, root="/r")
    assert parsed.raw_paths == ["a photo/my  cat.jpg", "/abs/b.jpg", "rel/c 1.jpg"]
    assert parsed.paths == ["/r/a photo/my  cat.jpg", "/abs/b.jpg", "/r/rel/c 1.jpg"]
    assert parsed.labels.dtype == np.uint8
    assert parsed.labels.tolist() == [[0, 1, 0], [1, 1, 0], [0, 0, 1]]
    assert parsed.lines.tolist() == [1, 4, 5]
    assert parsed.where(2) == f"{tmp_path / 'list.txt'}:5"
    assert len(parsed) == 3


def test_label_count_learnt_from_first_line_and_no_root_keeps_relative(tmp_path):
    parsed = read_list(write(tmp_path, "x/a.jpg 1 0 0 0 1\nx/b.jpg 0 0 0 0 0\n"))
    assert parsed.labels.shape == (2, 5)
    assert parsed.paths == ["x/a.jpg", "x/b.jpg"]


def test_path_map_longest_prefix_wins_then_root():
    path_map = {"/old/": "/x/", "/old/images/": "/y/", "data/": "/abs/"}  # shorter key listed first
    raw = ["/old/images/a.jpg", "/old/b.jpg", "data/c.jpg", "d.jpg", "/other/e.jpg"]
    assert resolve_paths(raw, "/r", path_map) == [
        "/y/a.jpg", "/x/b.jpg", "/abs/c.jpg", "/r/d.jpg", "/other/e.jpg"]


def test_read_list_applies_path_map_and_keeps_raw_path(tmp_path):
    parsed = read_list(write(tmp_path, "/old/a.jpg 1 0\nb.jpg 0 1\n"), 2, root="/r",
                       path_map={"/old/": "new/"})
    assert parsed.paths == ["/r/new/a.jpg", "/r/b.jpg"]
    assert parsed.raw_paths == ["/old/a.jpg", "b.jpg"]


FORM3 = "-- write each line as '<path> <3 labels, each 0 or 1>'"
BAD_LABEL = "-- labels must be the integers 0 or 1"


@pytest.mark.parametrize("text, num_classes, line, message", [
    ("a.jpg 0 1\nb.jpg\n", None, 2,
     "no labels after the path (b.jpg) -- write each line as '<path> <2 labels, each 0 or 1>'"),
    ("a.jpg 0 2 1\n", 3, 1, f"label is not 0 or 1 (2) {BAD_LABEL}"),
    ("a.jpg 0 1 0\nb.jpg 0 0.5 1\n", None, 2, f"label is not 0 or 1 (0.5) {BAD_LABEL}"),
    ("a.jpg 0 1 0\nb.jpg 1 2 0\n", None, 2, f"label is not 0 or 1 (2) {BAD_LABEL}"),
    ("a b.jpg 1 0 1\nc.jpg 0 1 -1\n", 3, 2, f"label is not 0 or 1 (-1) {BAD_LABEL}"),
    ("a.jpg 5\n", None, 1, f"label is not 0 or 1 (5) {BAD_LABEL}"),
    ("a.jpg 1 0 0\nb.jpg 0 1\n", None, 2, f"label count 2, expected 3 (as on line 1) (b.jpg 0 1) {FORM3}"),
    ("my photo.jpg 0 1\n", 3, 1, f"label count 2, expected 3 (num_classes=3) (photo.jpg 0 1) {FORM3}"),
    ("a.jpg 0 1 1 0\n", 3, 1, f"label count 4, expected 3 (num_classes=3) (a.jpg 0 1 1 0) {FORM3}"),
    ("0 1 1\n", 3, 1, f"no path before the labels (0 1 1) {FORM3}"),
    ("a.jpg yes\n", None, 1,
     "no 0/1 labels at the end of the line (yes) -- write each line as '<path> <C labels, each 0 or 1>'"),
    # the first problem in file order is reported, whichever check finds it
    ("a.jpg 0 1\nb.jpg 0 2\nc.jpg 0\n", 2, 2, f"label is not 0 or 1 (2) {BAD_LABEL}"),
    ("a.jpg 0 1\nb.jpg 0\nc.jpg 0 2\n", 2, 2, "label count 1, expected 2 (num_classes=2) (b.jpg 0) "
     "-- write each line as '<path> <2 labels, each 0 or 1>'"),
])
def test_error_names_file_line_value_and_fix(tmp_path, text, num_classes, line, message):
    path = write(tmp_path, text)
    with pytest.raises(ListFileError) as caught:
        read_list(path, num_classes)
    assert str(caught.value) == f"{path}:{line}: {message}"
    assert (caught.value.file, caught.value.line) == (str(path), line)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize("text, shown", [("", "0 blank lines"), ("\n \r\n\t\n", "3 blank lines")])
def test_empty_list_is_an_error(tmp_path, text, shown):
    path = write(tmp_path, text)
    with pytest.raises(ListFileError, match="no entries") as caught:
        read_list(path, 3)
    assert str(caught.value) == (f"{path}: no entries ({shown}) -- "
                                 "write one '<path> <labels 0/1>' line per image")


def test_missing_list_file_is_an_error(tmp_path):
    path = tmp_path / "absent.txt"
    with pytest.raises(ListFileError) as caught:
        read_list(path)
    assert str(caught.value).startswith(f"{path}: list file not found ({path}) -- check dataset.root")
    assert caught.value.line is None


def test_200k_lines_parse_exactly(tmp_path):
    labels = np.random.default_rng(0).integers(0, 2, (200_000, 21), dtype=np.uint8)
    chars = np.full((200_000, 42), ord(" "), np.uint8)  # "l1 l2 ... l21\n"
    chars[:, ::2], chars[:, -1] = labels + ord("0"), ord("\n")
    rows = chars.tobytes().decode().splitlines(keepends=True)
    path = write(tmp_path, "".join(f"imgs/{i} x.jpg {row}" for i, row in enumerate(rows)))
    parsed = read_list(path, 21, root="/data")
    assert np.array_equal(parsed.labels, labels)
    assert parsed.paths[7] == "/data/imgs/7 x.jpg"
