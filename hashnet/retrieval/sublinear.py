"""faiss's binary indexes behind HammingIndex's backends: the flat scan ("faiss"), multi-index hashing ("mih",
exact) and inverted lists ("ivf", approximate).

mih: faiss.IndexBinaryMultiHash splits a code into nhash substrings of b bits and looks up the buckets within nflip
bits of the query's substrings. By the pigeonhole principle (Norouzi et al., "Fast search in Hamming space with
multi-index hashing", CVPR 2012) every item at distance <= C = nhash * (nflip + 1) - 1 is among its candidates.
So a row whose k-th distance r is <= C is certified exact, and a range search below r + 1 on the same index returns
the whole tie group at r; a row that is not certified is answered by the flat scan over the same codes (the
multi-hash index's own storage, no second copy). ivf: faiss.IndexBinaryIVF, nlist k-means lists of which nprobe
are scanned: approximate, so its recall@k against the exact ranking is measured on a sample when it is built and
kept in the index's meta["ivf"].
"""
from __future__ import annotations

import math
import mmap
from collections.abc import Callable
from typing import Any

import numpy as np

ADD_ROWS = 1 << 20  # rows handed to faiss at once: a memory-mapped store is read one block at a time
MIH_MAX_BITS = 24   # substring bits: faiss keeps a hash map per table, ~1 entry per item beyond 2^24 buckets
MIH_NFLIP = 2       # bits flipped per substring: C = 3 * nhash - 1
IVF_NPROBE = 16     # lists scanned per query
IVF_TRAIN = 256     # training codes per list
RECALL_QUERIES = 100  # database codes used as queries to measure ivf's recall at build


def mih_shape(bits: int, n: int) -> tuple[int, int]:
    """(nhash, b) for n codes of bits: substrings of about log2(n) bits (Norouzi et al.), at most MIH_MAX_BITS,
    at least 2 tables."""
    nhash = max(2, math.ceil(bits / min(MIH_MAX_BITS, max(8.0, math.log2(max(n, 2))))))
    return nhash, bits // nhash


def ivf_lists(n: int) -> int:
    """nlist for n codes: the power of 2 nearest sqrt(n) / 3 (1,024 at 1e7, 4,096 at 1e8), at least 1."""
    return 2 ** max(0, round(math.log2(max(1.0, math.sqrt(n) / 3))))


def release_pages(codes: np.ndarray) -> None:
    """Drop a memory-mapped array's pages from this process once faiss holds its copy (the file stays cached by
    the kernel; a later read maps them again): one copy of the codes in memory."""
    base = codes if isinstance(codes, np.memmap) else None
    if base is not None and isinstance(getattr(base, "_mmap", None), mmap.mmap):
        base._mmap.madvise(mmap.MADV_DONTNEED)


def add_in_blocks(index: Any, codes: np.ndarray) -> None:
    for start in range(0, len(codes), ADD_ROWS):
        index.add(np.ascontiguousarray(codes[start:start + ADD_ROWS]))


def build(backend: str, codes: np.ndarray, options: dict[str, Any]) -> tuple[Any, Any]:
    """(the flat faiss index over codes or None, the mih / ivf index or None) for backend "faiss", "mih" or "ivf".

    options: mih: nhash, b, nflip; ivf: nlist, nprobe, train (codes per list), seed."""
    import faiss  # optional dependency: imported only when used

    bits, n = codes.shape[1] * 8, len(codes)
    if backend == "faiss":
        flat = faiss.IndexBinaryFlat(bits)
        add_in_blocks(flat, codes)
        return flat, None
    if backend == "mih":
        nhash, b = mih_shape(bits, n)
        nhash, b = options.get("nhash", nhash), options.get("b", b)
        mih = faiss.IndexBinaryMultiHash(bits, nhash, b)
        mih.nflip = options.get("nflip", MIH_NFLIP)
        add_in_blocks(mih, codes)
        return mih.storage, mih  # the flat scan over the multi-hash index's own copy
    nlist = min(options.get("nlist", ivf_lists(n)), n)
    quantizer = faiss.IndexBinaryFlat(bits)
    ivf = faiss.IndexBinaryIVF(quantizer, bits, nlist)
    ivf.quantizer_kept = quantizer  # the Python object owns the quantizer: alive as long as ivf
    rng = np.random.default_rng(options.get("seed", 0))
    train = min(n, options.get("train", IVF_TRAIN) * nlist)
    ivf.train(np.ascontiguousarray(codes[np.sort(rng.choice(n, train, replace=False))]))
    add_in_blocks(ivf, codes)
    ivf.nprobe = options.get("nprobe", IVF_NPROBE)
    return None, ivf


def search_mih(mih: Any, queries: np.ndarray, k: int, ball: Callable, flat: Callable) -> tuple[np.ndarray, ...]:
    """Exact (distances (B, k), indices (B, k)) by (distance, index), and the share of rows certified.

    One pass over mih's candidates: its `width` (3k + 32) nearest by (distance, index). A row is certified when its
    k-th distance r is <= C (module docstring): every item within r is a candidate. Its top k are the first k of
    the width when these end beyond r (or run out of candidates); else its tie group at r is cut and ball(queries,
    r + 1, k, mih), a range search on mih (complete below C + 1), ranks it. Other rows: flat(queries, k)."""
    n = mih.ntotal
    width = min(n, 3 * k + 32)
    distances, found = mih.search(queries, width)
    keys = np.where(found < 0, np.iinfo(np.int64).max, distances.astype(np.int64) * n + np.maximum(found, 0))
    keys.sort(axis=1)
    kth, last = keys[:, k - 1] // n, keys[:, -1] // n
    certified = (found >= 0).sum(axis=1) >= k
    certified &= kth <= mih.nhash * (mih.nflip + 1) - 1
    whole = certified & (last > kth)
    top_d, top_i = np.empty((len(queries), k), np.int64), np.empty((len(queries), k), np.int64)
    top_d[whole], top_i[whole] = keys[whole, :k] // n, keys[whole, :k] % n
    cut = np.flatnonzero(certified & ~whole)
    for radius in np.unique(kth[cut]):
        block = cut[kth[cut] == radius]
        top_d[block], top_i[block], _ = ball(queries[block], int(radius) + 1, k, mih)
    rest = np.flatnonzero(~certified)
    if len(rest):
        top_d[rest], top_i[rest] = flat(queries[rest], k)
    return top_d, top_i, float(certified.mean()) if len(queries) else 1.0


def ranked(distances: np.ndarray, found: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """faiss's (B, k) results sorted by (distance, index), rows missing results (-1) last."""
    missing = found < 0
    keys = np.where(missing, np.iinfo(np.int64).max, distances.astype(np.int64) * n + np.maximum(found, 0))
    keys.sort(axis=1)
    gone = keys == np.iinfo(np.int64).max
    return np.where(gone, -1, keys // n), np.where(gone, -1, keys % n)


def measure_recall(codes: np.ndarray, search: Callable, exact: Callable, k: int = 100,
                   queries: int = RECALL_QUERIES, seed: int = 0) -> dict[str, Any]:
    """recall@k of search against exact (both (queries, k) -> (distances, indices)) on `queries` rows of codes
    drawn with seed as queries: {"k", "queries", "recall@<k>"}."""
    k, rng = min(k, len(codes)), np.random.default_rng(seed)
    sample = np.ascontiguousarray(codes[np.sort(rng.choice(len(codes), min(queries, len(codes)), replace=False))])
    return {"k": k, "queries": len(sample), f"recall@{k}": recall_at(search(sample, k)[1], exact(sample, k)[1])}


def recall_at(found: np.ndarray, exact: np.ndarray) -> float:
    """Mean share of each row of exact (B, k) item indices that found (B, k) holds: recall@k."""
    return float(np.mean([len(np.intersect1d(f, e)) / len(e) for f, e in zip(found, exact)]))
