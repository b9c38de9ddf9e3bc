"""faiss's binary indexes behind HammingIndex's backends: the flat scan ("faiss"), multi-index hashing ("mih",
exact) and inverted lists ("ivf", approximate).

mih: hashnet.retrieval.multi_index.MultiIndex, tables of nhash substrings probed at growing radii until a query's
k-th distance is certified (exact, tie group included); a row that is not certified within its candidate budget is
answered by the flat scan. Both read faiss's flat copy of the codes: one copy. ivf: faiss.IndexBinaryIVF, nlist
k-means lists of which nprobe are scanned: approximate, so its recall@k against the exact ranking is measured on a
sample when it is built and kept in the index's meta["ivf"]. Codes of more than 32 bits whose length has no Hamming
kernel of its own in faiss (48 bits) are zero-padded inside the indexes (padded_width; measured in docs/scale.md).
"""
from __future__ import annotations

import math
import mmap
from collections.abc import Callable
from typing import Any

import numpy as np

from hashnet.retrieval.codes import pad_bytes
from hashnet.retrieval.multi_index import BUDGET as MIH_BUDGET
from hashnet.retrieval.multi_index import MultiIndex

ADD_ROWS = 1 << 20  # rows handed to faiss at once: a memory-mapped store is read one block at a time
MIH_MAX_BITS = 24   # substring bits: a table holds 2^bits + 1 bucket offsets (128 MiB at 24)
FAST_SIZES = (4, 8, 16, 20, 32, 64)  # code bytes with a Hamming kernel of their own in faiss (hamming_computer.h)
IVF_NPROBE = 16     # lists scanned per query
IVF_TRAIN = 256     # training codes per list
RECALL_QUERIES = 100  # database codes used as queries to measure ivf's recall at build


def mih_tables(bits: int, n: int) -> int:
    """mih's substrings (tables) for n codes of bits: substrings of about log2(n) bits (Norouzi et al.), at most
    MIH_MAX_BITS, at least 2 tables."""
    return max(2, math.ceil(bits / min(MIH_MAX_BITS, max(8.0, math.log2(max(n, 2))))))


def ivf_lists(n: int) -> int:
    """nlist for n codes: the power of 2 nearest sqrt(n) / 3 (1,024 at 1e7, 4,096 at 1e8), at least 1."""
    return 2 ** max(0, round(math.log2(max(1.0, math.sqrt(n) / 3))))


def release_pages(codes: np.ndarray) -> None:
    """Drop a memory-mapped array's pages from this process once faiss holds its copy (the file stays cached by
    the kernel; a later read maps them again): one copy of the codes in memory."""
    base = codes if isinstance(codes, np.memmap) else None
    if base is not None and isinstance(getattr(base, "_mmap", None), mmap.mmap):
        base._mmap.madvise(mmap.MADV_DONTNEED)


def padded_width(code_size: int) -> int:
    """Bytes a code of code_size bytes takes inside faiss: the next multiple of 8 where a code of more than 4 bytes
    has no specialised Hamming kernel in faiss (FAST_SIZES; 48 bits: 64); zero bytes change no distance. Shorter
    codes stay as they are (padding would multiply their memory)."""
    slow = code_size > 4 and code_size % 8 and code_size not in FAST_SIZES
    return code_size + (-code_size % 8) if slow else code_size


def add_in_blocks(index: Any, codes: np.ndarray) -> None:
    for start in range(0, len(codes), ADD_ROWS):
        index.add(pad_bytes(codes[start:start + ADD_ROWS], index.code_size))


def build(backend: str, codes: np.ndarray, options: dict[str, Any]) -> tuple[Any, Any, int]:
    """(the flat faiss index over codes or None, the mih / ivf index or None, the bytes of a code inside them: the
    queries' width) for backend "faiss", "mih" or "ivf".

    options: pad (default True: padded_width; False: none); mih: nhash, budget (MultiIndex); ivf: nlist, nprobe,
    train (codes per list), seed."""
    import faiss  # optional dependency: imported only when used

    n, width = len(codes), padded_width(codes.shape[1]) if options.get("pad", True) else codes.shape[1]
    bits = width * 8
    if backend in ("faiss", "mih"):
        flat = faiss.IndexBinaryFlat(bits)
        add_in_blocks(flat, codes)
        if backend == "faiss":
            return flat, None, width
        storage = faiss.rev_swig_ptr(flat.xb.data(), n * width).reshape(n, width)
        return flat, MultiIndex(codes, options.get("nhash", mih_tables(codes.shape[1] * 8, n)), storage,
                                options.get("budget", MIH_BUDGET)), width  # the caller keeps flat (storage's owner)
    nlist = min(options.get("nlist", ivf_lists(n)), n)
    quantizer = faiss.IndexBinaryFlat(bits)
    ivf = faiss.IndexBinaryIVF(quantizer, bits, nlist)
    ivf.quantizer_kept = quantizer  # the Python object owns the quantizer: alive as long as ivf
    rng = np.random.default_rng(options.get("seed", 0))
    train = min(n, options.get("train", IVF_TRAIN) * nlist)
    ivf.train(pad_bytes(codes[np.sort(rng.choice(n, train, replace=False))], width))
    add_in_blocks(ivf, codes)
    ivf.nprobe = options.get("nprobe", IVF_NPROBE)
    return None, ivf, width


def search_mih(mih: MultiIndex, queries: np.ndarray, k: int, flat: Callable) -> tuple[np.ndarray, ...]:
    """Exact (distances (B, k), indices (B, k)) by (distance, index), and the share of rows certified: each query
    from mih's tables, those it cannot certify within its budget by flat(queries, k) at once."""
    top_d, top_i = np.empty((len(queries), k), np.int64), np.empty((len(queries), k), np.int64)
    rest = []
    for row, query in enumerate(queries):
        found = mih.search_one(query, k)
        if found is None:
            rest.append(row)
        else:
            top_d[row], top_i[row] = found
    if rest:
        top_d[rest], top_i[rest] = flat(queries[rest], k)
    return top_d, top_i, 1 - len(rest) / len(queries) if len(queries) else 1.0


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
