"""A code store written by Lightning's Trainer.predict on several devices (`trainer=ddp trainer.devices=G`, or
ddp_spawn): the same chunks, records and bits as the independent workers of hashnet.inference.sharded.

Rank r of W encodes the unfinished chunks c with c % W == r, read in order by a plain sequential loader
(use_distributed_sampler=False: no DistributedSampler and none of its padding, so every image once). The
network's outputs are packed on the device (bit = output >= 0, i.e. sign(0) = +1, 8 bits a byte, the first the
most significant: pack_codes' bytes) and a batch-level BasePredictionWriter files each row under the manifest
position the dataset returns with it, never Lightning's batch indices; a chunk is written (atomically, with its
record) as soon as all its images are accounted for. Nothing is gathered across ranks and nothing is kept per epoch.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import BasePredictionWriter
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from hashnet.data.dataset import ImageDataset, Unreadable, split_readable
from hashnet.inference.hasher import Hasher
from hashnet.inference.sharded import PRECISION, device_kind
from hashnet.retrieval.store import Layout, chunk_span, pending_chunks, read_manifest, write_chunk
from hashnet.training.module import HashingModule


def pack_on_device(outputs: Tensor) -> Tensor:
    """outputs (B, K) real -> (B, K/8) uint8 on their device, equal to pack_codes(binarize(outputs))."""
    bits = (outputs >= 0).to(torch.uint8).view(len(outputs), -1, 8)
    weights = torch.tensor([128, 64, 32, 16, 8, 4, 2, 1], dtype=torch.uint8, device=outputs.device)
    return (bits * weights).sum(dim=2, dtype=torch.uint8)


class ChunkImages(Dataset):
    """The images of some chunks of a store, in order: samples (image, labels (0,), manifest position) or
    Unreadable(position, why) (hashnet.data.dataset.ImageDataset, on_bad_image="report"); one chunk's paths held."""

    def __init__(self, store: str, meta: dict[str, Any], chunks: list[int], transform: Any) -> None:
        self.layout, self.meta, self.transform = Layout(store), meta, transform
        self.spans = [chunk_span(meta, chunk) for chunk in chunks]
        self.ends = np.cumsum([stop - start for start, stop in self.spans])
        self._chunk, self._images = -1, None

    def __len__(self) -> int:
        return int(self.ends[-1]) if len(self.ends) else 0

    def __getitem__(self, index: int) -> Any:
        which = int(np.searchsorted(self.ends, index, side="right"))
        start = self.spans[which][0]
        if which != self._chunk:
            chunk = start // self.meta["chunk_size"]
            paths = [f"{self.meta['images']}/{path}" for path in read_manifest(self.layout, chunk)]
            self._chunk, self._images = which, ImageDataset(paths, self.transform, "report")
        offset = index - (int(self.ends[which - 1]) if which else 0)
        sample = self._images[offset]
        if not isinstance(sample, Unreadable):
            return sample[0], sample[1], start + offset
        return sample._replace(index=start + offset)


class PackedCodes(pl.LightningModule):
    """predict_step: a batch of (images, labels, positions) -> (packed codes (B, K/8) uint8, positions (B,))."""

    def __init__(self, model: HashingModule) -> None:
        super().__init__()
        self.model = model

    def predict_step(self, batch: Any, batch_idx: int) -> Any:
        readable, unreadable = batch
        failed = [(sample.index, sample.why) for sample in unreadable]
        if readable is None:
            return None, None, failed
        images, _, positions = readable
        return pack_on_device(self.model(images)).cpu(), positions.cpu(), failed


class ChunkWriter(BasePredictionWriter):
    """Files each predicted row under its manifest position; writes a chunk (codes + record) once complete."""

    def __init__(self, store: str, meta: dict[str, Any]) -> None:
        super().__init__(write_interval="batch")
        self.layout, self.meta = Layout(store), meta
        self.rows: dict[int, dict[int, np.ndarray]] = {}
        self.skipped: dict[int, list] = {}
        self.started: dict[int, float] = {}

    def write_on_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, prediction: Any,
                           batch_indices: Any, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        codes, positions, failed = prediction
        size = self.meta["chunk_size"]
        if codes is not None:
            for row, position in zip(codes, positions.tolist()):
                self._chunk(position // size)[position] = row.numpy()
        for position, why in failed:
            self._chunk(position // size)
            relative = read_manifest(self.layout, position // size)[position % size]
            self.skipped[position // size].append([position, relative, why])
        for chunk in [c for c in self.rows if len(self.rows[c]) + len(self.skipped[c]) == self._length(c)]:
            self._flush(chunk, trainer)

    def _chunk(self, chunk: int) -> dict[int, np.ndarray]:
        if chunk not in self.rows:
            self.rows[chunk], self.skipped[chunk], self.started[chunk] = {}, [], time.perf_counter()
        return self.rows[chunk]

    def _length(self, chunk: int) -> int:
        start, stop = chunk_span(self.meta, chunk)
        return stop - start

    def _flush(self, chunk: int, trainer: pl.Trainer) -> None:
        rows, width = self.rows.pop(chunk), self.meta["hash_bit"] // 8
        codes = np.stack([rows[p] for p in sorted(rows)]) if rows else np.zeros((0, width), np.uint8)
        start, stop = chunk_span(self.meta, chunk)
        write_chunk(self.layout, chunk, codes, {
            "start": start, "stop": stop, "skipped": sorted(self.skipped.pop(chunk)),
            "device": device_kind(trainer.strategy.root_device), "precision": PRECISION, "torch": torch.__version__,
            "seconds": round(time.perf_counter() - self.started.pop(chunk), 3)})


class PendingChunks(pl.LightningDataModule):
    """predict_dataloader: this rank's unfinished chunks (c % world_size == global_rank), a sequential loader."""

    def __init__(self, store: str, meta: dict[str, Any], transform: Any, batch_size: int, workers: int) -> None:
        super().__init__()
        self.store, self.meta, self.transform = store, meta, transform
        self.batch_size, self.workers = batch_size, workers

    def predict_dataloader(self) -> DataLoader:
        chunks = pending_chunks(Layout(self.store), self.meta, self.trainer.world_size, self.trainer.global_rank)
        return DataLoader(ChunkImages(self.store, self.meta, chunks, self.transform), batch_size=self.batch_size,
                          num_workers=self.workers, collate_fn=split_readable)


def predict_into_store(hasher: Hasher, store: str, meta: dict[str, Any], trainer: dict[str, Any], batch_size: int,
                       workers: int) -> None:
    """Encode every unfinished chunk of the store (prepared: manifest and store.json written) with Trainer.predict
    on trainer's accelerator / devices / strategy / num_nodes."""
    runner = pl.Trainer(**trainer, use_distributed_sampler=False, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, inference_mode=True,
                        callbacks=[ChunkWriter(store, meta)])
    runner.predict(PackedCodes(hasher.model), datamodule=PendingChunks(store, meta, hasher.transform, batch_size,
                                                                        workers), return_predictions=False)
