"""The file of a saved HammingIndex (``.hnx``, format hashnet-index-1): a numpy ``.npz`` archive of the packed codes
(N, K/8) uint8, paths (N,) str and labels (N, C) uint8 when the index has them, and a JSON record (format, size and
the metadata). It is the same whichever the backend: faiss's own file of an IndexBinaryFlat is a 33-byte header on
these very codes, and building the faiss index from them costs one copy, so a file holds no faiss bytes and a file
written with faiss loads without it, and the other way round.
"""
from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from hashnet.retrieval.codes import FORMAT as CODES_FORMAT
from hashnet.retrieval.codes import INDEX_FORMAT, archive_format, not_an_archive
from hashnet.utils.errors import UserError
from hashnet.utils.files import atomic_write, check_writable

FORMAT = INDEX_FORMAT  # the layout of a saved index (hashnet-index-1); bumped when it changes


class IndexFileError(UserError, ValueError):
    """A saved index that cannot be read, or whose metadata differ from what the caller expects."""


def write_index(path: str | Path, codes: np.ndarray, paths: Any, labels: np.ndarray | None,
                meta: dict[str, Any]) -> Path:
    """Write codes (N, K/8) uint8, paths (N,) or None, labels (N, C) or None and the JSON-able meta to path,
    atomically; ValueError for metadata that is not JSON."""
    path = check_writable(path, "path", "index.save('photos.hnx')",
                          ("an index file", lambda existing: archive_format(existing) == FORMAT))
    record = {"format": FORMAT, "size": len(codes), **meta}
    try:
        text = json.dumps(record)
    except TypeError as err:
        raise ValueError(f"index metadata must be JSON values (str, numbers, lists, dicts): {err}") from err
    arrays = {"codes": codes, "meta": np.array(text)}
    if paths is not None:
        arrays["paths"] = paths
    if labels is not None:
        arrays["labels"] = labels.astype(np.uint8)
    return atomic_write(path, lambda f: np.savez(f, **arrays))


def read_index(path: str | Path, **expected: Any) -> tuple[np.ndarray, Any, np.ndarray | None, dict[str, Any]]:
    """codes, paths, labels and meta of the index file written by write_index; IndexFileError if the file is missing,
    damaged or not one, or if a metadata value given (e.g. hash_bit=48) differs; None is not checked."""
    path = Path(path)
    fix = "build the index again and save it (HammingIndex(codes, ...).save(path))"
    if path.is_dir():
        raise IndexFileError(f"index file {path} is a folder -- pass the .hnx file that index.save(path) wrote")
    if not path.is_file():
        raise IndexFileError(f"index file {path} does not exist -- {fix}")
    if problem := not_an_archive(path):
        raise IndexFileError(f"index file {path}: {problem} -- pass the .hnx file that index.save(path) wrote, or "
                             f"{fix}")
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            codes = data["codes"]
            paths = data["paths"] if "paths" in data.files else None
            labels = data["labels"] if "labels" in data.files else None
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:  # not .npz, truncated, pickles
        raise IndexFileError(f"index file {path} is damaged or not a hashnet index ({type(err).__name__}: {err}) "
                             f"-- {fix}") from err
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else None
        if found == CODES_FORMAT:
            fix = "it is a code file: HammingIndex.from_code_file(load_codes(path)) indexes it"
        raise IndexFileError(f"{path} has format {found!r}, this version reads {FORMAT!r} -- {fix}")
    size, bits = meta.pop("size", None), meta.get("hash_bit")
    if (not size or codes.ndim != 2 or codes.dtype != np.uint8 or len(codes) != size or codes.shape[1] * 8 != bits
            or (paths is not None and paths.shape != (size,))
            or (labels is not None and (labels.ndim != 2 or len(labels) != size))):
        raise IndexFileError(f"index file {path} is damaged: its record says {size} codes of {bits} bits, it holds "
                             f"codes {codes.dtype} {codes.shape}, paths {None if paths is None else paths.shape}, "
                             f"labels {None if labels is None else labels.shape} -- {fix}")
    for key, value in expected.items():
        if value is not None and meta.get(key) != value:
            raise IndexFileError(f"{path} holds codes with {key}={meta.get(key)!r}, expected {key}={value!r}: "
                                 "index and queries must come from the same checkpoint -- build the index with "
                                 "the checkpoint that encodes the queries, or load the index that matches it")
    del meta["format"]
    return codes, paths, labels, meta
