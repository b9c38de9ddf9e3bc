"""Merging a code store's chunks (hashnet.retrieval.store) into one memory-mappable codes.npy, after checking every
chunk's record, with the memory of one chunk.

verify_store refuses a store whose manifest changed, whose chunks are missing or damaged (sha256), miscounted
(rows + skipped != the chunk's length) or of mixed devices / precisions; merge_store streams the chunks into
merged/codes.npy (N', K/8) uint8 and merged/ids.npy (N',) int64 (the manifest positions of the rows, strictly
increasing: every image once) and the manifest into merged/paths_utf8.npy + offsets.npy, each written atomically.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from hashnet.retrieval.store import FORMAT, Layout, StoreError, chunk_span, read_json, read_manifest
from hashnet.utils.files import atomic_write, file_sha256

SHOWN = 5  # chunk numbers named in an error line


def _listed(chunks: list[int]) -> str:
    more = f" and {len(chunks) - SHOWN} more" if len(chunks) > SHOWN else ""
    return ", ".join(map(str, chunks[:SHOWN])) + more


def verify_store(root: str | Path, mixed_devices: bool = False) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(store.json, the record of every chunk) after checking them all; StoreError saying what is wrong and how
    to fix it. mixed_devices: accept chunks encoded on different device kinds (bits may differ near 0)."""
    layout = Layout(root)
    meta = read_json(layout.meta)
    if meta is None or meta.get("format") != FORMAT:
        raise StoreError(f"{layout.meta} is missing or not a hashnet store -- encode first: "
                         f"python scripts/encode.py images=<dir> ckpt_path=<ckpt> store={root}")
    digest = hashlib.sha256()
    for chunk in range(meta["n_chunks"]):
        digest.update(layout.manifest(chunk).read_bytes())
    if digest.hexdigest() != meta["manifest_sha256"]:
        raise StoreError(f"the manifest of {root} changed since encoding began (sha256) -- encode into a new store=")
    records, missing, bad = [], [], []
    for chunk in range(meta["n_chunks"]):
        record = read_json(layout.record(chunk))
        if record is None:
            missing.append(chunk)
            continue
        start, stop = chunk_span(meta, chunk)
        rows = np.load(layout.codes(chunk), mmap_mode="r").shape if layout.codes(chunk).is_file() else None
        if (rows is None or file_sha256(layout.codes(chunk)) != record["sha256"]
                or (record["start"], record["stop"]) != (start, stop)
                or record["rows"] + len(record["skipped"]) != stop - start
                or rows != (record["rows"], meta["hash_bit"] // 8) or record["precision"] != meta["precision"]):
            bad.append(chunk)
        records.append(record)
    if missing or bad:
        what = "; ".join(part for part in (missing and f"chunks {_listed(missing)} are not done",
                                           bad and f"chunks {_listed(bad)} do not match their records") if part)
        raise StoreError(f"{root} (of {meta['n_chunks']} chunks): {what} -- run scripts/encode.py with the same "
                         f"store={root} again (it encodes only unfinished chunks; delete a bad chunk's .json first)")
    devices = sorted({record["device"] for record in records})
    if len(devices) > 1 and not mixed_devices:
        raise StoreError(f"{root}: chunks were encoded on {devices}, whose bits may differ near 0 -- re-encode some "
                         "of them (delete their .json) or pass mixed_devices=true")
    return meta, records


def write_streamed(path: Path, dtype: np.dtype, shape: tuple[int, ...],
                   blocks: Callable[[], Iterable[np.ndarray]]) -> Path:
    """Write a .npy of dtype and shape from blocks (rows in order) atomically, one block in memory at a time."""
    dtype = np.dtype(dtype)

    def write(f) -> None:
        np.lib.format.write_array_header_1_0(f, {"descr": np.lib.format.dtype_to_descr(dtype),
                                                 "fortran_order": False, "shape": shape})
        written = 0
        for block in blocks():
            block = np.ascontiguousarray(block, dtype)
            f.write(block.tobytes())
            written += block.size
        if written != int(np.prod(shape)):
            raise StoreError(f"{path}: {written} values written, {int(np.prod(shape))} expected")
    return atomic_write(path, write)


def merge_store(root: str | Path, mixed_devices: bool = False) -> dict[str, Any]:
    """Verify the store at root (verify_store) and write merged/codes.npy, ids.npy, paths_utf8.npy and offsets.npy;
    -> a summary (n_items, rows, the skipped files [[position, path, why]], chunks' sha256, devices)."""
    layout = Layout(root)
    meta, records = verify_store(root, mixed_devices)
    rows = sum(record["rows"] for record in records)
    chunks = range(meta["n_chunks"])

    def codes() -> Iterable[np.ndarray]:
        for chunk in chunks:
            yield np.load(layout.codes(chunk), mmap_mode="r")

    def ids() -> Iterable[np.ndarray]:  # strictly increasing, within and across chunks: every image once
        for record in records:
            kept = np.ones(record["stop"] - record["start"], bool)
            kept[[position - record["start"] for position, _, _ in record["skipped"]]] = False
            yield record["start"] + np.flatnonzero(kept)

    sizes: list[int] = []

    def offsets() -> Iterable[np.ndarray]:
        end = 0
        yield np.zeros(1, np.int64)
        for chunk in chunks:
            lengths = np.array([len(line.encode()) for line in read_manifest(layout, chunk)], np.int64)
            yield end + np.cumsum(lengths)
            end += int(lengths.sum())
        sizes.append(end)

    def paths() -> Iterable[np.ndarray]:
        for chunk in chunks:
            yield np.frombuffer("".join(read_manifest(layout, chunk)).encode(), np.uint8)

    width = meta["hash_bit"] // 8
    write_streamed(layout.merged / "codes.npy", np.uint8, (rows, width), codes)
    write_streamed(layout.merged / "ids.npy", np.int64, (rows,), ids)
    write_streamed(layout.merged / "offsets.npy", np.int64, (meta["n_items"] + 1,), offsets)
    write_streamed(layout.merged / "paths_utf8.npy", np.uint8, (sizes[0],), paths)
    return {"n_items": meta["n_items"], "rows": rows,
            "skipped": [skip for record in records for skip in record["skipped"]],
            "chunks": [record["sha256"] for record in records],
            "devices": sorted({record["device"] for record in records})}
