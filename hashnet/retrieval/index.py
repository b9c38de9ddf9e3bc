"""A Hamming-distance index over packed binary codes: faiss's binary flat index, an exact numpy scan, or for large
indexes multi-index hashing (exact) or inverted lists (approximate), hashnet.retrieval.sublinear.

Both backends return, for each query, the k database items nearest in Hamming distance, ordered
by (distance, database index): the ranking hashnet.retrieval.metrics scores. faiss guarantees only
the k smallest distances, not which of the items tied at the k-th distance it keeps (faiss 1.15
happens to keep the lowest indices, undocumented), so the faiss backend checks, row by row, that
it holds the whole tie group at the k-th distance and fetches it with a range search where not
(HammingIndex._search_faiss).

An index may carry the items' image paths (N,), labels (N, C) and metadata (hash_bit, net, dataset,
checkpoint, ...), and is saved to and loaded from one ``.hnx`` file, the same with or without faiss
(hashnet.retrieval.index_file).
"""
from __future__ import annotations

import importlib.util
import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from hashnet.retrieval.codes import CodeFile, pad_bytes, packed_words
from hashnet.retrieval.index_file import read_index, write_index
from hashnet.retrieval.metrics import hamming_distances
from hashnet.retrieval.store import PathTable
from hashnet.retrieval.sublinear import build, measure_recall, ranked, release_pages, search_mih
from hashnet.utils.errors import UserError

BACKENDS = ("auto", "faiss", "exact", "mih", "ivf")
_CHUNK_PAIRS = 1 << 22  # query x database distances held at once by the exact scan (4 MiB of uint8)
_PILOT = 16  # queries answered first from faiss's nearest; their k-th distances choose how to answer the rest
_WIDEN, _SLACK = 3, 32  # nearest items asked of faiss per query, 3k + 32: enough for the k-th distance's whole
                        # tie group of random codes (up to ~2.9k items lie at distance <= the k-th)
_CALL_RESULTS = 1 << 22  # results held at once from one faiss call (~50 MB with their sort keys)


class SearchError(UserError, ValueError):
    """A search's queries or k that the index cannot answer; the message says what it takes."""


def faiss_available() -> bool:
    """Whether the optional faiss package (pip install -e '.[faiss]') can be imported."""
    return importlib.util.find_spec("faiss") is not None


class HammingIndex:
    """Exact k-nearest-neighbour search in Hamming distance over packed codes (N, K/8) uint8.

    backend: "faiss" (faiss.IndexBinaryFlat; an error if faiss is not installed), "exact" (numpy XOR + popcount,
    chunked over queries), or "auto" (faiss when installed, else exact), all the same results as "mih" (multi-index
    hashing; `certified`: the share of the last search's rows it answered, the others scanned flat); "ivf" is
    approximate (its recall in meta["ivf"]); options tune them (hashnet.retrieval.sublinear.build). codes may be
    memory-mapped (hashnet.retrieval.store): faiss holds the one copy in memory. Optional, kept with the codes and
    saved with them: paths (N,) of the items' images (a str array or a store's PathTable: ``index.paths[indices]``
    maps results to files), labels (N, C) 0/1 and meta, a JSON-able dict (hash_bit, net, dataset, checkpoint, ...;
    hash_bit is set from the codes).
    """

    def __init__(self, codes: np.ndarray, backend: str = "auto", *, paths: Any = None,
                 labels: np.ndarray | None = None, meta: dict[str, Any] | None = None,
                 options: dict[str, Any] | None = None) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {list(BACKENDS)}, got {backend!r}")
        if codes.ndim != 2 or codes.dtype != np.uint8 or len(codes) == 0:
            raise ValueError(f"codes must be a non-empty (N, K/8) uint8 array (hashnet.retrieval.codes.pack_codes), "
                             f"got {codes.dtype} {codes.shape}")
        if backend == "auto":
            backend = "faiss" if faiss_available() else "exact"
        if backend in ("faiss", "mih", "ivf") and not faiss_available():
            raise ImportError(f"backend={backend!r} needs faiss: pip install -e '.[faiss]' (or use backend='exact')")
        self.backend = backend
        self.codes = np.ascontiguousarray(codes)
        self.bits = codes.shape[1] * 8
        self.paths = paths if paths is None or isinstance(paths, PathTable) else np.asarray(paths, dtype=str)
        self.labels = None if labels is None else np.asarray(labels)
        if self.paths is not None and self.paths.shape != (len(codes),):
            raise ValueError(f"paths must hold one path per code, (N,) = ({len(codes)},), got shape {self.paths.shape}")
        if self.labels is not None and (self.labels.ndim != 2 or len(self.labels) != len(codes)):
            raise ValueError(f"labels must be (N, C) with N = {len(codes)} codes, got shape {self.labels.shape}")
        meta = dict(meta or {})
        if meta.get("hash_bit", self.bits) != self.bits:
            raise ValueError(f"meta hash_bit={meta['hash_bit']} but the codes have {self.bits} bits")
        self.meta = {**meta, "hash_bit": self.bits}
        self.certified, self.sublinear = 1.0, None  # sublinear: the mih tables / faiss's ivf (nprobe settable)
        if self.backend != "exact":
            logging.getLogger("faiss.loader").setLevel(logging.WARNING)  # not its CPU-feature probing
            self._faiss, self.sublinear, self._width = build(self.backend, self.codes, dict(options or {}))
        else:
            self._words = packed_words(self.codes)
        release_pages(codes)
        if self.backend == "ivf":  # approximate: its recall@100 against the exact ranking, on 100 of its codes
            self.meta["ivf"] = {**measure_recall(self.codes, self.search, HammingIndex(self.codes, "faiss").search),
                                "nlist": self.sublinear.nlist, "nprobe": self.sublinear.nprobe}

    def __len__(self) -> int:
        return len(self.codes)

    def search(self, queries: np.ndarray, k: int, return_paths: bool = False) -> tuple[np.ndarray, ...]:
        """queries (B, K/8) uint8 -> (distances (B, k) int64, indices (B, k) int64), by (distance, index),
        and with return_paths the items' paths (B, k) str as a third array (index.paths[indices]).

        k > N is clamped to N with a warning.
        """
        if not isinstance(queries, np.ndarray) or queries.ndim != 2 or queries.dtype != np.uint8 \
                or queries.shape[1] * 8 != self.bits:
            got = f"{queries.dtype} {queries.shape}" if isinstance(queries, np.ndarray) else type(queries).__name__
            raise SearchError(f"queries must be (B, {self.bits // 8}) uint8 packed {self.bits}-bit codes, got {got} "
                              "-- encode them with the index's checkpoint (hasher.encode(images), or pack_codes of "
                              "their {-1,+1} codes)")
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise SearchError(f"k must be >= 1, a whole number of neighbours, got {k!r} -- pass e.g. k=10")
        k = int(k)
        if return_paths and self.paths is None:
            raise ValueError("this index holds no paths: build it with HammingIndex(codes, paths=...)")
        if k > len(self):
            warnings.warn(f"k={k} is larger than the index ({len(self)} items); using {len(self)}")
            k = len(self)
        queries = np.ascontiguousarray(queries) if self.backend == "exact" else pad_bytes(queries, self._width)
        if len(queries) == 0:
            distances = indices = np.empty((0, k), dtype=np.int64)
        elif self.backend == "faiss":
            distances, indices = self._search_faiss(queries, k)
        elif self.backend == "mih":
            distances, indices, self.certified = search_mih(self.sublinear, queries, k, self._search_faiss)
        elif self.backend == "ivf":
            distances, indices = ranked(*self.sublinear.search(queries, k), len(self))
        else:
            distances, indices = self._search_exact(queries, k)
        return (distances, indices, self.paths[indices]) if return_paths else (distances, indices)

    def _search_exact(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Distances of a chunk of queries to all items; the k smallest keys distance * N + index."""
        n = len(self)
        step = max(1, _CHUNK_PAIRS // n)
        distances, indices = [], []
        for start in range(0, len(queries), step):
            dist = hamming_distances(packed_words(queries[start:start + step]), self._words, self.bits)
            key = dist.astype(np.int64) * n + np.arange(n)
            if k < n:
                key = np.take_along_axis(key, np.argpartition(key, k - 1, axis=1)[:, :k], axis=1)
            key.sort(axis=1)
            distances.append(key // n)
            indices.append(key % n)
        return np.concatenate(distances), np.concatenate(indices)

    def _search_faiss(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact (distance, index) ranking from faiss, which only guarantees the k smallest distances.

        Rows are answered two ways, both exact. (1) Nearest `width` (> k): if the width-th distance is
        beyond the k-th distance r, every item at distance <= r is among them and sorting them by
        (distance, index) gives the answer; otherwise the tie group at r is cut and a range search
        fetches all of it (_top_k). (2) Ball: a range search returns every item nearer than a radius R;
        where that holds >= k items, sorting them gives the answer (_ball). A pilot of up to _PILOT
        evenly spaced queries is answered by (1) and tells R = its largest k-th distance + 1; the other
        queries take (2) if, for every pilot row, the ball holds little more than the answer needs (its
        k-th distance is R - 1, or the ball fits in its width nearest), else (1). Queries with fewer than
        k items in the ball go through (1). A range search costs about 0.85 of a k-nearest one, which is
        what keeps the exact ranking within 1.2x of faiss's (scripts/bench_index.py).
        """
        b, n = len(queries), len(self)
        width = min(n, _WIDEN * k + _SLACK)
        if b <= _PILOT:  # the pilot is the whole batch (a server's single query)
            return self._top_k(queries, self._nearest(queries, width), k)
        distances, indices = np.empty((b, k), dtype=np.int64), np.empty((b, k), dtype=np.int64)
        pilot = np.unique(np.linspace(0, b - 1, _PILOT).round().astype(np.int64))
        nearest = self._nearest(queries[pilot], width)
        distances[pilot], indices[pilot] = self._top_k(queries[pilot], nearest, k)
        rest = np.setdiff1d(np.arange(b), pilot)
        kth, reach = distances[pilot, -1], nearest[:, -1] // n
        radius = int(kth.max()) + 1
        if ((kth == radius - 1) | (reach >= radius)).all():
            volume = max(k, int((nearest // n < radius).sum(axis=1).max()))
            short = []
            for block in _blocks(rest, self._rows_per_call(volume)):
                d, i, full = self._ball(queries[block], radius, k)
                distances[block[full]], indices[block[full]] = d, i
                short.append(block[~full])
            rest = np.concatenate(short)
        for block in _blocks(rest, self._rows_per_call(width)):
            distances[block], indices[block] = self._top_k(queries[block], self._nearest(queries[block], width), k)
        return distances, indices

    def _rows_per_call(self, results_per_row: int) -> int:
        """Queries per faiss call: about _CALL_RESULTS results held at once, and sort keys that fit in int64."""
        return max(1, min(_CALL_RESULTS // results_per_row, (2**62) // ((self.bits + 1) * len(self))))

    def _nearest(self, queries: np.ndarray, width: int) -> np.ndarray:
        """faiss's width nearest items of each query as sorted keys distance * N + index, (B, width) int64."""
        dist, found = self._faiss.search(queries, width)
        keys = dist.astype(np.int64) * len(self) + found
        keys.sort(axis=1)
        return keys

    def _top_k(self, queries: np.ndarray, nearest: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The exact top k from each query's sorted nearest keys (B, width), width >= k: kept where the k-th
        distance's tie group ends inside them, re-fetched by a range search where it is cut."""
        n = len(self)
        distances, indices = nearest[:, :k] // n, nearest[:, :k] % n
        cut = np.flatnonzero(nearest[:, -1] // n == distances[:, -1]) if nearest.shape[1] < n else np.empty(0, int)
        for radius in np.unique(distances[cut, -1]):
            rows = cut[distances[cut, -1] == radius]
            distances[rows], indices[rows], _ = self._ball(queries[rows], int(radius) + 1, k)
        return distances, indices

    def _ball(self, queries: np.ndarray, radius: int, k: int) -> tuple[np.ndarray, ...]:
        """Range search of the flat index: every item at distance < radius, by (distance, index).

        -> (distances (F, k), indices (F, k)) of the F queries whose ball holds >= k items, full (B,) bool.
        """
        n, span = len(self), (self.bits + 1) * len(self)
        limits, dist, found = self._faiss.range_search(queries, radius)
        limits = limits.astype(np.int64)
        counts = np.diff(limits)
        row = np.repeat(np.arange(len(queries), dtype=np.int64), counts)
        keys = row * span + dist.astype(np.int64) * n + found
        keys.sort()
        full = counts >= k
        keys = keys[limits[:-1][full, None] + np.arange(k)] % span
        return keys // n, keys % n, full

    # ---- a saved index ----
    @classmethod
    def from_code_file(cls, code_file: CodeFile, backend: str = "auto") -> HammingIndex:
        """An index over a code file's codes (retrieval.codes.load_codes), with its paths, labels and metadata."""
        meta = {key: value for key, value in code_file.meta.items() if key != "format"}
        return cls(code_file.codes, backend, paths=code_file.paths, labels=code_file.labels, meta=meta)

    def save(self, path: str | Path) -> Path:
        """Write the codes, paths, labels and metadata to one file (``.hnx`` by convention), atomically; the same
        file whichever the backend (hashnet.retrieval.index_file)."""
        return write_index(path, self.codes, self.paths, self.labels, self.meta)

    @classmethod
    def load(cls, path: str | Path, backend: str = "auto", **expected: Any) -> HammingIndex:
        """Read an index written by save; IndexFileError if the file is missing, damaged or not one, or if a
        metadata value given (e.g. hash_bit=48, net="resnet50", dataset="coco") differs; None is not checked."""
        codes, paths, labels, meta = read_index(path, **expected)
        return cls(codes, backend, paths=paths, labels=labels, meta=meta)


def _blocks(rows: np.ndarray, size: int) -> list[np.ndarray]:
    """rows (M,) in consecutive blocks of at most size."""
    return [rows[start:start + size] for start in range(0, len(rows), size)]
