"""A Hamming-distance index over packed binary codes: faiss's binary flat index, or an exact numpy scan.

Both backends return, for each query, the k database items nearest in Hamming distance, ordered
by (distance, database index): the ranking hashnet.retrieval.metrics scores. faiss 1.15 happens to return
ties in index order (its heap breaks ties by id and scans the database in order), but faiss does
not document it and other versions or code paths need not, so the faiss backend takes only each
query's k-th distance r from faiss's top k, fetches every item at distance <= r with a range
search, and sorts those by (distance, index) itself.
"""
from __future__ import annotations

import importlib.util
import logging
import warnings

import numpy as np

from hashnet.retrieval.codes import packed_words
from hashnet.retrieval.metrics import hamming_distances

BACKENDS = ("auto", "faiss", "exact")
_CHUNK_PAIRS = 1 << 22  # query x database distances held at once by the exact scan (4 MiB of uint8)


def faiss_available() -> bool:
    """Whether the optional faiss package (pip install -e '.[faiss]') can be imported."""
    return importlib.util.find_spec("faiss") is not None


class HammingIndex:
    """Exact k-nearest-neighbour search in Hamming distance over packed codes (N, K/8) uint8.

    backend: "faiss" (faiss.IndexBinaryFlat; an error if faiss is not installed), "exact" (numpy
    XOR + popcount, chunked over queries), or "auto" (faiss when installed, else exact).
    """

    def __init__(self, codes: np.ndarray, backend: str = "auto") -> None:
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {list(BACKENDS)}, got {backend!r}")
        if codes.ndim != 2 or codes.dtype != np.uint8 or len(codes) == 0:
            raise ValueError(f"codes must be a non-empty (N, K/8) uint8 array (hashnet.retrieval.codes.pack_codes), "
                             f"got {codes.dtype} {codes.shape}")
        if backend == "auto":
            backend = "faiss" if faiss_available() else "exact"
        if backend == "faiss" and not faiss_available():
            raise ImportError("backend='faiss' needs faiss: pip install -e '.[faiss]' (or use backend='exact')")
        self.backend = backend
        self.codes = np.ascontiguousarray(codes)
        self.bits = codes.shape[1] * 8
        if self.backend == "faiss":
            logging.getLogger("faiss.loader").setLevel(logging.WARNING)  # not its CPU-feature probing
            import faiss  # optional dependency: imported only when used
            self._faiss = faiss.IndexBinaryFlat(self.bits)
            self._faiss.add(self.codes)
        else:
            self._words = packed_words(self.codes)

    def __len__(self) -> int:
        return len(self.codes)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """queries (B, K/8) uint8 -> (distances (B, k) int64, indices (B, k) int64), by (distance, index).

        k > N is clamped to N with a warning.
        """
        if queries.ndim != 2 or queries.dtype != np.uint8 or queries.shape[1] * 8 != self.bits:
            raise ValueError(f"queries must be (B, {self.bits // 8}) uint8 packed {self.bits}-bit codes, "
                             f"got {queries.dtype} {queries.shape}")
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        if k > len(self):
            warnings.warn(f"k={k} is larger than the index ({len(self)} items); using {len(self)}")
            k = len(self)
        queries = np.ascontiguousarray(queries)
        return self._search_faiss(queries, k) if self.backend == "faiss" else self._search_exact(queries, k)

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
        """faiss's top k gives each query's k-th distance r; a range search (distance < r + 1) then
        returns all items tied at r, among which the lowest indices are kept."""
        kth = self._faiss.search(queries, k)[0][:, -1].astype(np.int64)
        distances = np.empty((len(queries), k), dtype=np.int64)
        indices = np.empty((len(queries), k), dtype=np.int64)
        for radius in np.unique(kth):
            rows = np.flatnonzero(kth == radius)
            limits, dist, found = self._faiss.range_search(queries[rows], int(radius) + 1)
            for row, start, end in zip(rows, limits[:-1], limits[1:]):
                d, i = dist[start:end].astype(np.int64), found[start:end].astype(np.int64)
                order = np.lexsort((i, d))[:k]
                distances[row], indices[row] = d[order], i[order]
        return distances, indices
