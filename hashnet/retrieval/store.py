"""A code store: the codes of a huge image folder, written in chunks by any number of workers, merged, and opened
memory-mapped.

    store/
      store.json          format, what encodes (checkpoint + sha256, hash_bit, transform, precision), the images
                          folder, chunk_size, n_items, n_chunks, manifest sha256
      manifest/000000.txt the image paths (relative to the folder), chunk_size a file, in find_images' order
      chunks/000000.npy   packed codes (rows, K/8) uint8 of the chunk's readable images, in manifest order
      chunks/000000.json  its record: chunk, start, stop, rows, skipped [[position, path, why]], sha256 of the .npy,
                          device, precision, seconds
      merged/             codes.npy (N', K/8) uint8, ids.npy (N',) int64 manifest positions (strictly increasing),
                          paths_utf8.npy + offsets.npy (the manifest's paths as UTF-8 bytes, by position), merged.json

The manifest is written while the folder is walked (hashnet.data.image_walk), one chunk of paths in memory; every
file is written atomically (hashnet.utils.files). A chunk is done when its record exists and the sha256 of its codes
matches the record: a rerun, with any number of workers, encodes only the others. Codes are packed as code files'
(hashnet.retrieval.codes: bit j of a code is bit 7 - j % 8 of byte j // 8). Merging: hashnet.retrieval.merge.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from hashnet.data.image_walk import walk_images
from hashnet.retrieval.codes import CodeFile, load_codes
from hashnet.utils.errors import UserError
from hashnet.utils.files import atomic_write, atomic_write_json, file_sha256

FORMAT = "hashnet-store-1"
CHECKED = ("checkpoint_sha256", "hash_bit", "resize_size", "crop_size", "precision", "chunk_size", "images")


class StoreError(UserError, ValueError):
    """A code store that cannot be used as asked: another checkpoint's, unfinished, or damaged."""


class Layout:
    """The files of the store at root."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.meta = self.root / "store.json"
        self.merged = self.root / "merged"

    def manifest(self, chunk: int) -> Path:
        return self.root / "manifest" / f"{chunk:06d}.txt"

    def codes(self, chunk: int) -> Path:
        return self.root / "chunks" / f"{chunk:06d}.npy"

    def record(self, chunk: int) -> Path:
        return self.root / "chunks" / f"{chunk:06d}.json"


def read_json(path: Path) -> dict[str, Any] | None:
    """The JSON object in path; None when the file is missing or not one."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_manifest(layout: Layout, folder: Path, chunk_size: int) -> tuple[int, str]:
    """Walk folder, writing its image paths (relative to it) chunk_size a file -> (n_items, sha256 of all lines)."""
    digest, lines, count, chunk = hashlib.sha256(), [], 0, 0

    def flush() -> None:
        text = "".join(lines).encode()
        digest.update(text)
        atomic_write(layout.manifest(chunk), lambda f: f.write(text))
    for path in walk_images(folder):
        relative = path.relative_to(folder).as_posix()
        if "\n" in relative or "\r" in relative:
            raise StoreError(f"image {path} has a line break in its name, which a manifest line cannot hold -- "
                             "rename it, or move it out of the folder")
        lines.append(relative + "\n")
        count += 1
        if len(lines) == chunk_size:
            flush()
            lines, chunk = [], chunk + 1
    if lines:
        flush()
    return count, digest.hexdigest()


def prepare_store(root: str | Path, folder: str | Path, chunk_size: int, settings: dict[str, Any]) -> dict[str, Any]:
    """store.json of the store at root, written with its manifest when new; StoreError when the store holds codes
    of other settings (CHECKED: another checkpoint, transform, precision, chunk size or folder)."""
    layout, folder = Layout(root), Path(folder).resolve()
    wanted = {**settings, "chunk_size": chunk_size, "images": str(folder)}
    meta = read_json(layout.meta)
    if meta is None:
        if not folder.is_dir():
            raise StoreError(f"images={folder} is not a folder -- pass the folder that holds the images")
        n_items, sha = write_manifest(layout, folder, chunk_size)
        if not n_items:
            raise StoreError(f"images={folder} holds no image files at any depth -- pass the folder of your images")
        meta = {"format": FORMAT, **wanted, "n_items": n_items, "n_chunks": -(-n_items // chunk_size),
                "manifest_sha256": sha}
        atomic_write_json(layout.meta, meta)
        return meta
    if meta.get("format") != FORMAT:
        raise StoreError(f"{layout.meta} has format {meta.get('format')!r}, not {FORMAT!r} -- pass another store=")
    for key in CHECKED:
        if meta.get(key) != wanted.get(key):
            raise StoreError(f"store {root} holds codes with {key}={meta.get(key)!r}, not {wanted.get(key)!r}: its "
                             f"chunks cannot be mixed with these -- pass another store=<folder>, or {key}'s value "
                             "the store was started with")
    return meta


def read_manifest(layout: Layout, chunk: int) -> list[str]:
    """The relative image paths of one chunk of the manifest."""
    return layout.manifest(chunk).read_text().splitlines()


def chunk_span(meta: dict[str, Any], chunk: int) -> tuple[int, int]:
    """(start, stop) manifest positions of chunk."""
    start = chunk * meta["chunk_size"]
    return start, min(start + meta["chunk_size"], meta["n_items"])


def done_record(layout: Layout, chunk: int) -> dict[str, Any] | None:
    """The record of a finished chunk (its codes' sha256 matching), else None."""
    record = read_json(layout.record(chunk))
    if record is None or not layout.codes(chunk).is_file() or file_sha256(layout.codes(chunk)) != record.get("sha256"):
        return None
    return record


def pending_chunks(layout: Layout, meta: dict[str, Any], shards: int, shard: int) -> list[int]:
    """Worker shard's chunks (chunk % shards == shard) that are not done."""
    return [c for c in range(shard, meta["n_chunks"], shards) if done_record(layout, c) is None]


def write_chunk(layout: Layout, chunk: int, codes: np.ndarray, record: dict[str, Any]) -> dict[str, Any]:
    """Write a chunk's codes, then its record (with their sha256), each atomically: the record marks it done."""
    atomic_write(layout.codes(chunk), lambda f: np.save(f, codes, allow_pickle=False))
    record = {**record, "chunk": chunk, "rows": len(codes), "sha256": file_sha256(layout.codes(chunk))}
    atomic_write_json(layout.record(chunk), record)
    return record


class PathTable:
    """Image paths by row, read from the merged store's paths_utf8.npy / offsets.npy (memory-mapped) through ids:
    table[i] is a str, table[array] an array of str; no path is held in memory until asked for."""

    def __init__(self, merged: Path, ids: np.ndarray, folder: str) -> None:
        self.blob = np.load(merged / "paths_utf8.npy", mmap_mode="r")
        self.offsets = np.load(merged / "offsets.npy", mmap_mode="r")
        self.ids, self.folder = ids, folder

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def shape(self) -> tuple[int]:
        return (len(self.ids),)

    def _path(self, row: int) -> str:
        position = int(self.ids[row])
        start, stop = int(self.offsets[position]), int(self.offsets[position + 1])
        return f"{self.folder}/{bytes(self.blob[start:stop]).decode()}"

    def __getitem__(self, rows: Any) -> Any:
        if isinstance(rows, (int, np.integer)):
            return self._path(int(rows))
        rows = np.asarray(rows)
        return np.array([self._path(int(r)) for r in rows.ravel()], dtype=str).reshape(rows.shape)


def open_store(root: str | Path, **expected: Any) -> CodeFile:
    """A merged store as a CodeFile: codes (N', K/8) memory-mapped, no labels (N', 0), paths a PathTable, meta
    store.json's (with split "images"); StoreError when it is not merged or a value of expected differs."""
    layout = Layout(root)
    meta, merged = read_json(layout.meta), read_json(layout.merged / "merged.json")
    if meta is None or merged is None:
        raise StoreError(f"{root} is not a merged code store (no store.json or merged/merged.json) -- encode with "
                         f"scripts/encode.py images=<dir> store={root}, then scripts/merge_codes.py store={root}")
    for key, value in expected.items():
        if value is not None and meta.get(key) != value:
            raise StoreError(f"store {root} holds codes with {key}={meta.get(key)!r}, expected {key}={value!r}: "
                             "encode the images with the same checkpoint")
    codes = np.load(layout.merged / "codes.npy", mmap_mode="r")
    ids = np.load(layout.merged / "ids.npy", mmap_mode="r")
    return CodeFile(codes, np.zeros((len(codes), 0), np.uint8), PathTable(layout.merged, ids, meta["images"]),
                    {**meta, "split": "images", "merged": merged})


def load_database(path: str | Path, **expected: Any) -> CodeFile:
    """What search and serve read: a merged store (a folder, open_store) or a code file (load_codes), its metadata
    checked against expected."""
    return open_store(path, **expected) if Path(path).is_dir() else load_codes(path, **expected)
