"""Retrieval metrics for binary hash codes (HashNet, Cao et al., ICCV 2017, section 4.1).

Codes are (N, K) arrays in {-1, +1}, labels (N, C) 0/1 arrays, numpy or torch, any dtype. A database
item is relevant to a query when they share at least one label. Items are ranked by Hamming distance
(K - <q, d>) / 2, ties broken by database index (lower first) unless stated otherwise.

Every metric is one `_scan` over chunks of queries: Hamming distances by XOR + popcount of bit-packed
codes, a per-query distance cut (a radius, or where the top `depth` ends), relevance by AND of
bit-packed labels for the items inside the cut only, then per-distance histograms and/or the top
`depth` in ranking order (stable radix sort of each query's candidates). Memory is bounded by a chunk.
mAP at several cut-offs R comes from one scan to the largest R.
"""
from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from hashnet.data.protocol import check_conventions
from hashnet.retrieval.average_precision import (
    MeanAP,
    TopK,
    average_precision,
    clamp,
    cut_offs,
    expected_average_precision,
)
from hashnet.retrieval.codes import as_numpy, packed_words

Array = np.ndarray | torch.Tensor
CHUNK_PAIRS = 1 << 22  # query x database pairs per chunk: 4 MiB of uint8 distances
_TILE_PAIRS = 1 << 18  # pairs per XOR tile (whole rows): bounds the uint64 temporary
_SAMPLE = 2048  # database items sampled to guess a query's distance cut for a given depth


@dataclass
class _Data:
    """Bit-packed inputs: codes (W, N) uint64 with W = ceil(K / 64), labels (V, N) uint64; bits = K."""
    query_codes: np.ndarray
    query_labels: np.ndarray
    db_codes: np.ndarray
    db_labels: np.ndarray
    bits: int


def pack_rows(x: Array, name: str, values: tuple[int, int]) -> np.ndarray:
    """Check that x (N, D) only holds `values`; return (x == values[1]) packed into (W, N) uint64 words."""
    a = as_numpy(x)
    bits = a == values[1]
    if not (bits | (a == values[0])).all():
        raise ValueError(f"{name} must only hold {values[0]} and {values[1]}")
    return packed_words(np.packbits(bits, axis=1))


def prepare(query_codes: Array, query_labels: Array, db_codes: Array, db_labels: Array) -> _Data:
    """Validate the shapes and values of the four inputs and bit-pack them."""
    shapes = [tuple(x.shape) for x in (query_codes, query_labels, db_codes, db_labels)]
    (nq, k), (nq2, c), (n, k2), (n2, c2) = (s if len(s) == 2 else (-1, -1) for s in shapes)
    if min(nq, n) < 1 or (nq, n, k, c) != (nq2, n2, k2, c2):
        raise ValueError(f"expected shapes (Nq, K), (Nq, C), (N, K), (N, C) with Nq, N >= 1, got {shapes}")
    return _Data(pack_rows(query_codes, "query_codes", (-1, 1)), pack_rows(query_labels, "query_labels", (0, 1)),
                 pack_rows(db_codes, "db_codes", (-1, 1)), pack_rows(db_labels, "db_labels", (0, 1)), k)


def hamming_distances(query: np.ndarray, db: np.ndarray, bits: int) -> np.ndarray:
    """Hamming distances (B, N) uint8 (uint16 if K > 255) of packed codes query (W, B), db (W, N)."""
    b, n = query.shape[1], db.shape[1]
    dist = np.empty((b, n), dtype=np.uint8 if bits < 256 else np.uint16)
    step = max(1, _TILE_PAIRS // n)
    xor = np.empty((min(step, b), n), dtype=np.uint64)
    for s in range(0, b, step):
        e = min(b, s + step)
        np.bitwise_xor(query[0][s:e, None], db[0], out=xor[: e - s])
        np.bitwise_count(xor[: e - s], out=dist[s:e])
        for w in range(1, query.shape[0]):
            np.bitwise_xor(query[w][s:e, None], db[w], out=xor[: e - s])
            dist[s:e] += np.bitwise_count(xor[: e - s])
    return dist


def _candidates(dist: np.ndarray, depth: int, radius: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Flat indices (M,) of the pairs of dist (B, N) inside each row's cut (row-major); row bounds (B+1,).

    The cut is `radius`, or the smallest distance whose ball holds `depth` items: guessed from a
    strided sample of the database (4-sigma margin; exact if N <= _SAMPLE), raised where short.
    """
    (b, n), step = dist.shape, max(1, dist.shape[1] // _SAMPLE)
    if radius is None:
        sample, fraction = dist[:, ::step], depth / n
        margin = 4 * math.sqrt(fraction * (1 - fraction) / sample.shape[1]) + 1 / sample.shape[1]
        need = depth if step == 1 else math.ceil(sample.shape[1] * min(1.0, fraction + margin))
        bins = int(sample.max()) + 1
        histogram = np.bincount((sample + np.arange(b)[:, None] * bins).ravel(), minlength=b * bins)
        cut = np.argmax(np.cumsum(histogram.reshape(b, bins), axis=1) >= need, axis=1)
    else:
        cut, depth = np.full(b, radius), 0
    mask = dist <= cut.astype(dist.dtype)[:, None]  # same dtype: no upcast of (B, N)
    while True:
        flat = np.flatnonzero(mask)
        bounds = np.searchsorted(flat, np.arange(b + 1) * n)
        short = np.diff(bounds) < depth
        if not short.any():
            return flat, bounds
        cut[short] += 1
        mask[short] = dist[short] <= cut[short, None].astype(dist.dtype)


def related(query: np.ndarray, db: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Whether queries `rows` (of query (V, B)) and db items `cols` (of db (V, N)) share a label."""
    shared = np.take(db[0], cols)
    shared &= query[0][rows]
    for query_words, db_words in zip(query[1:], db[1:]):
        word = np.take(db_words, cols)
        word &= query_words[rows]
        shared |= word
    return shared != 0


def _scan(data: _Data, depth: int = 0, radius: int | None = None, histograms: bool = False,
          ranked: bool = False, query_chunk: int | None = None) -> Iterator[tuple[np.ndarray | None, ...]]:
    """Yield (count, relevant, ranked) per chunk of B = `query_chunk` queries (default ~CHUNK_PAIRS / N).

    count, relevant: (B, K+1) int64 items / relevant items at each distance, exact up to the cut
    (see `_candidates`; 1 <= depth <= N), zero beyond it; None unless `histograms`. ranked:
    (B, depth) bool relevance of each query's top `depth` in ranking order; None unless `ranked`.
    """
    n, k = data.db_codes.shape[1], data.bits
    chunk = query_chunk or max(1, CHUNK_PAIRS // n)
    for start in range(0, data.query_codes.shape[1], chunk):
        queries = slice(start, start + chunk)
        dist = hamming_distances(data.query_codes[:, queries], data.db_codes, k)
        b = len(dist)
        flat, bounds = _candidates(dist, depth, radius)
        values = np.take(dist.ravel(), flat)  # candidates' distances: by row, by index within a row
        count = relevant = ordered = None
        if histograms:
            rows = np.repeat(np.arange(b), np.diff(bounds))
            key = rows * (k + 1) + values
            rel = related(data.query_labels[:, queries], data.db_labels, rows, flat - rows * n)
            count = np.bincount(key, minlength=b * (k + 1)).reshape(b, k + 1)
            relevant = np.bincount(key[rel], minlength=b * (k + 1)).reshape(b, k + 1)
        if ranked:
            cols = np.empty((b, depth), dtype=np.int64)  # db indices of each query's top `depth`
            for row, (s, e) in enumerate(zip(bounds[:-1], bounds[1:])):
                first = np.argsort(values[s:e], kind="stable")[:depth]  # radix sort, in cache
                np.subtract(np.take(flat[s:e], first), row * n, out=cols[row])
            ordered = related(data.query_labels[:, queries], data.db_labels, np.arange(b)[:, None], cols)
        yield count, relevant, ordered


def mean_average_precision(query_codes: Array, query_labels: Array, db_codes: Array, db_labels: Array,
                           topk: TopK = None, ties: str = "index", empty_queries: str = "drop", *,
                           query_chunk: int | None = None, with_counts: bool = False):
    """HashNet's mAP@R: the mean over queries of AP over the top R = `topk` of the Hamming ranking.

    query_codes (Nq, K), db_codes (N, K) in {-1,+1}; query_labels (Nq, C), db_labels (N, C) 0/1.
    topk: R; None means N, more than N is clamped to N with a warning. A list of R gives a list of
    mAP in its order, from one scan to the largest R. AP = sum_{k<=R} precision@k * rel_k /
    (relevant items in the top R). query_chunk: queries per chunk (memory/speed only). with_counts: return
    (mAP, how many queries it averages) instead, the count shaped as the mAP (0: no query could be scored).

    empty_queries="drop": a query with no relevant item in the top R is left out of the mean (0.0
        if every query is): the paper's code. "zero": it counts as AP 0 (DeepHash-pytorch, FIRe).
    ties="index": equal distances are ranked by database index, lower first (a stable sort; HashNet's
        own code used an unstable argsort, i.e. an arbitrary order); depends on the database order.
    ties="average": for each query, the exact expectation of that same AP@R over uniformly random
        orders within each group of equal distance. With "drop" it is conditioned on the top R
        holding a relevant item (a query is left out only if no order gives it one); with "zero"
        it is not (orders without one count as AP 0). Independent of the database order; with no
        ties it equals "index". Computed in closed form, not sampled.
    """
    check_conventions(ties, empty_queries)
    data = prepare(query_codes, query_labels, db_codes, db_labels)
    size = data.db_codes.shape[1]
    depths, single = cut_offs(topk, size)
    mean, average = MeanAP(len(depths), empty_queries), ties == "average"
    harmonic = np.concatenate([[0.0], np.cumsum(1.0 / np.arange(1, size + 1))]) if average else None
    for count, relevant, ranked in _scan(data, max(depths), histograms=average, ranked=not average,
                                         query_chunk=query_chunk):
        if average:
            mean.add(*expected_average_precision(count, relevant, depths, harmonic))
        else:
            mean.add(*average_precision(ranked, depths))
    return (mean.result(single), mean.scored(single)) if with_counts else mean.result(single)


def _ball_counts(data: _Data, radius: int, query_chunk: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Items and relevant items (Nq, R+1) int64 within distance 0..R of each query, R = min(radius, K)."""
    radius = min(radius, data.bits)
    chunks = list(_scan(data, radius=radius, histograms=True, query_chunk=query_chunk))
    inside, relevant = (np.concatenate([c[i][:, : radius + 1] for c in chunks]) for i in (0, 1))
    return np.cumsum(inside, axis=1), np.cumsum(relevant, axis=1)


def precision_at_hamming_radius(query_codes: Array, query_labels: Array, db_codes: Array, db_labels: Array,
                                radius: int = 2, *, query_chunk: int | None = None) -> float:
    """Mean over all queries of the precision within Hamming distance <= radius (empty ball: 0).

    Inputs as in `mean_average_precision`; radius >= 0 (K or more: the whole database).
    """
    if radius < 0:
        raise ValueError(f"radius must be >= 0, got {radius}")
    data = prepare(query_codes, query_labels, db_codes, db_labels)
    inside, relevant = _ball_counts(data, radius, query_chunk)
    return float(np.mean(relevant[:, -1] / np.maximum(inside[:, -1], 1)))


def precision_recall_curve(query_codes: Array, query_labels: Array, db_codes: Array, db_labels: Array,
                           *, query_chunk: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall (K+1,) float64 of the Hamming ball of radius 0..K, mean over queries.

    Inputs as in `mean_average_precision`. Precision = relevant items in the ball / ball size (0 for an
    empty ball), averaged over all queries: precision[r] is precision_at_hamming_radius(r). Recall =
    relevant items in the ball / relevant items in the database, averaged over the queries that have
    one (recall is undefined for the others; all zeros if no query has one).
    """
    data = prepare(query_codes, query_labels, db_codes, db_labels)
    inside, relevant = _ball_counts(data, data.bits, query_chunk)
    precision = (relevant / np.maximum(inside, 1)).mean(axis=0)
    findable = relevant[relevant[:, -1] > 0]
    recall = (findable / findable[:, -1:]).mean(axis=0) if len(findable) else np.zeros(data.bits + 1)
    return precision, recall


def precision_at_k(query_codes: Array, query_labels: Array, db_codes: Array, db_labels: Array,
                   ks: Sequence[int], *, query_chunk: int | None = None) -> np.ndarray:
    """Mean over all queries of the precision (len(ks),) float64 of the top k, ties by index.

    Inputs as in `mean_average_precision`. A k above the database size N is clamped to N with a
    warning (the precision of the whole database).
    """
    if len(ks) == 0:
        raise ValueError("ks must not be empty")
    data = prepare(query_codes, query_labels, db_codes, db_labels)
    sizes = np.array([clamp(int(k), data.db_codes.shape[1], "k") for k in ks])
    total = np.zeros(len(sizes))
    for _, _, ranked in _scan(data, int(sizes.max()), ranked=True, query_chunk=query_chunk):
        total += np.cumsum(ranked, axis=1)[:, sizes - 1].sum(axis=0) / sizes
    return total / data.query_codes.shape[1]
