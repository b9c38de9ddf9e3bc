"""A Hasher writing a huge folder's codes into a code store (hashnet.retrieval.store), chunk by chunk, as worker
`shard` of `shards` independent processes (a SLURM array, or processes started by hand): worker i encodes the
unfinished chunks c with c % shards == i, so a rerun with any number of workers encodes each missing chunk once.

Each chunk is encoded by the Hasher's one encoding path (hashnet.inference.encoding.readable_codes), so its rows
equal, bit for bit, those of `scripts/encode.py images=<dir>` for the same files; unreadable files are recorded
in the chunk's record with why, and left out of its codes.
"""
from __future__ import annotations

import logging
import platform
import time
from pathlib import Path
from typing import Any

import torch

from hashnet.data.dataset import ImageDataset
from hashnet.inference.encoding import check_count, readable_codes
from hashnet.inference.hasher import Hasher
from hashnet.retrieval.store import Layout, chunk_span, pending_chunks, prepare_store, read_manifest, write_chunk
from hashnet.utils.files import file_sha256

log = logging.getLogger(__name__)

PRECISION = "32-true"  # the Hasher's forward pass: float32 (bf16 would flip signs of outputs near 0)


def device_kind(device: torch.device) -> str:
    """What a chunk's bits depend on besides the checkpoint: the CPU's architecture or the GPU's name."""
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return f"cpu:{platform.machine()}"


def store_settings(hasher: Hasher) -> dict[str, Any]:
    """What identifies a store's codes: the Hasher's meta, the checkpoint's sha256 and the precision."""
    if hasher.checkpoint is None:
        raise ValueError("a store records its checkpoint: build the Hasher with Hasher.from_checkpoint(path)")
    return {**hasher.meta, "checkpoint_sha256": file_sha256(hasher.checkpoint), "precision": PRECISION}


def encode_into_store(hasher: Hasher, images: str | Path, store: str | Path, *, chunk_size: int, shards: int,
                      shard: int, batch_size: int, workers: int) -> list[int]:
    """Encode worker shard's unfinished chunks of the images below folder images into the store at store (its
    manifest written first when the store is new), batch_size images a forward pass, files decoded by workers
    DataLoader processes -> the chunks encoded. Defaults: configs/encode.yaml."""
    check_count("chunk_size", chunk_size, 1)
    check_count("shards", shards, 1)
    check_count("shard", shard, 0)
    if shard >= shards:
        raise ValueError(f"shard={shard} must be below shards={shards} (workers are numbered 0..{shards - 1})")
    layout = Layout(store)
    meta = prepare_store(store, images, chunk_size, store_settings(hasher))
    todo = pending_chunks(layout, meta, shards, shard)
    log.info("store %s: %d images in %d chunks; worker %d of %d encodes chunks %s", store, meta["n_items"],
             meta["n_chunks"], shard, shards, todo)
    for chunk in todo:
        started = time.perf_counter()
        start, stop = chunk_span(meta, chunk)
        relative = read_manifest(layout, chunk)
        paths = [f"{meta['images']}/{path}" for path in relative]
        codes, _, failed = readable_codes(hasher.model, ImageDataset(paths, hasher.transform, "report"),
                                          hasher.device, batch_size, workers)
        skipped = [[start + position, relative[position], why] for position, why in failed]
        for _, path, why in skipped:
            log.warning("skipped unreadable image %s: %s", path, why)
        record = write_chunk(layout, chunk, codes, {
            "start": start, "stop": stop, "skipped": skipped, "device": device_kind(hasher.device),
            "precision": PRECISION, "torch": torch.__version__, "seconds": round(time.perf_counter() - started, 3)})
        log.info("chunk %d: %d codes, %d skipped, %.1f s", chunk, record["rows"], len(skipped), record["seconds"])
    return todo
