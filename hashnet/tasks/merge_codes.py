"""merge_codes(cfg): check a code store's chunks, merge them into memory-mapped codes.npy / ids.npy
(hashnet.retrieval.merge), and confirm the bits by encoding a random sample of its images again."""
from __future__ import annotations

import logging
from typing import Any

import numpy as np
from omegaconf import DictConfig

from hashnet.inference.encoding import check_count
from hashnet.inference.hasher import Hasher
from hashnet.inference.sharded import device_kind
from hashnet.retrieval.merge import merge_store
from hashnet.retrieval.store import Layout, PathTable, StoreError, read_json
from hashnet.utils.files import atomic_write_json, file_sha256

log = logging.getLogger(__name__)


def confirm_sample(store: str, sample: int, device: str, seed: int) -> dict[str, Any]:
    """Encode `sample` random merged rows again with the store's checkpoint; StoreError when a bit differs on the
    device kind the chunks were encoded on (elsewhere the flip rate is reported)."""
    layout = Layout(store)
    meta = read_json(layout.meta)
    if file_sha256(meta["checkpoint"]) != meta["checkpoint_sha256"]:
        raise StoreError(f"checkpoint {meta['checkpoint']} changed since {store} was encoded (sha256) -- restore it, "
                         "or pass sample=0 to merge without confirming the bits")
    codes = np.load(layout.merged / "codes.npy", mmap_mode="r")
    rows = np.sort(np.random.default_rng(seed).choice(len(codes), min(sample, len(codes)), replace=False))
    paths = PathTable(layout.merged, np.load(layout.merged / "ids.npy", mmap_mode="r"), meta["images"])
    hasher = Hasher.from_checkpoint(meta["checkpoint"], device=device)
    again = hasher.encode(list(paths[rows]))
    differing = int(np.unpackbits(again ^ codes[rows]).sum())
    kind, encoded_on = device_kind(hasher.device), {chunk["device"] for chunk in merged_records(layout, meta)}
    result = {"rows": len(rows), "bits_differing": differing, "flip_rate": differing / max(1, again.size * 8),
              "device": kind}
    if differing and encoded_on == {kind}:
        raise StoreError(f"{store}: {differing} bits of {len(rows)} re-encoded rows differ from the chunks' on the "
                         f"same device kind {kind} -- re-encode into a new store= (a checkpoint or code changed)")
    return result


def merged_records(layout: Layout, meta: dict[str, Any]) -> list[dict[str, Any]]:
    return [read_json(layout.record(chunk)) for chunk in range(meta["n_chunks"])]


def merge_codes(cfg: DictConfig) -> dict[str, Any]:
    """Verify and merge the store cfg.store, confirm cfg.sample re-encoded rows, write merged/merged.json."""
    check_count("sample", cfg.sample, 0)
    summary = merge_store(cfg.store, cfg.mixed_devices)
    if cfg.sample:
        summary["sample"] = confirm_sample(cfg.store, cfg.sample, cfg.device, cfg.seed)
    atomic_write_json(Layout(cfg.store).merged / "merged.json", summary)
    log.info("%s: %d codes of %d images merged (%d skipped); %s", cfg.store, summary["rows"], summary["n_items"],
             len(summary["skipped"]), f"re-encoded sample: {summary['sample']}" if cfg.sample else "no sample")
    return summary
