"""Exact multi-index hashing (Norouzi et al., "Fast search in Hamming space with multi-index hashing", CVPR 2012)
over packed codes, in numpy: HammingIndex's "mih" backend.

A code of K bits is cut into nhash substrings covering every bit (lengths differing by at most one). Each substring
has a table: the items sorted by that substring's value, and where each value's bucket starts. A query probes, radius
r = 0, 1, 2, ..., the buckets whose substring differs from its own in exactly r bits, in every table. By the
pigeonhole principle, once radius r is done every item within C(r) = nhash * (r + 1) - 1 bits of the query has been
found; the query is answered (certified) as soon as its k-th nearest candidate is within C(r): the candidates then
hold every item at distance <= its k-th distance, and their first k by (distance, index) are the exact answer, tie
group included. A query whose next radius would bring the candidates past `budget` (a share of N) is not certified:
the caller scans it flat.

Each item is counted once, at the radius and table where it is first found (its smallest substring distance, the
first table of that distance), so no set of seen items is kept: a search holds no state and may run in threads.
It replaces faiss's IndexBinaryMultiHash, which probes a fixed radius (nflip) whatever the query needs and gathers
candidates in a hash set: on 1e7 clustered 64-bit codes (scripts/bench_scale.py, docs/scale.md) its exact single
queries were 4.6x faster than the flat scan at 69 bytes a code, these 11x at 29 bytes (the flat copy included).
"""
from __future__ import annotations

import math
from functools import cache
from itertools import combinations

import numpy as np

from hashnet.retrieval.codes import code_words

BUDGET = 1 / 16  # candidates verified before a query goes to the flat scan, as a share of N: on 1e7 uniform codes
                 # 1/64 certified no query and 1/16 all, both at 0.6x the flat scan's speed batched (docs/scale.md)
ROWS = 1 << 20   # rows read at once when building
WARM_RADII = 4   # radii whose probes are listed when building


@cache
def flips(bits: int, radius: int) -> np.ndarray:
    """Every value of `bits` bits with exactly `radius` bits set, (C(bits, radius),) int64."""
    chosen = list(combinations(range(bits), radius))
    return (np.int64(1) << np.array(chosen, np.int64).reshape(len(chosen), radius)).sum(axis=1)


class MultiIndex:
    """The tables of codes (N, K/8) uint8 cut into nhash substrings; searched against `storage`, the same codes (a
    view of faiss's flat copy: no second copy is made)."""

    def __init__(self, codes: np.ndarray, nhash: int, storage: np.ndarray, budget: float = BUDGET) -> None:
        self.n, bits = codes.shape[0], codes.shape[1] * 8
        if not 1 <= nhash <= bits or math.ceil(bits / nhash) > 24:
            raise ValueError(f"mih needs 1 <= nhash <= {bits} and substrings of at most 24 bits, got nhash={nhash}")
        self.nhash, self.budget = nhash, budget
        self.storage = storage.view(np.uint64) if storage.shape[1] % 8 == 0 else storage
        self.lengths = [bits // nhash + (h < bits % nhash) for h in range(nhash)]
        self.starts = np.cumsum([0, *self.lengths[:-1]]).tolist()
        position = np.arange(bits)
        self.masks = [code_words(np.packbits((position >= start) & (position < start + length))[None])[0]
                      for start, length in zip(self.starts, self.lengths)]  # substring h's bits in the words
        ids = np.int32 if self.n < 2**31 else np.int64
        self.ids = np.empty(nhash * self.n, ids)    # table h's items by substring value: ids[h * N:(h + 1) * N]
        self.offsets = []                         # table h's bucket v: ids[offsets[h][v]:offsets[h][v + 1]]
        for h in range(nhash):
            keys = np.concatenate([self.substring(codes[s:s + ROWS], h) for s in range(0, self.n, ROWS)])
            self.ids[h * self.n:(h + 1) * self.n] = np.argsort(keys, kind="stable")
            counts = np.bincount(keys, minlength=1 << self.lengths[h])
            self.offsets.append(np.concatenate([[0], np.cumsum(counts)]) + h * self.n)
            del keys
        for radius in range(WARM_RADII):  # the probes of the usual radii made before the first query
            for length in set(self.lengths):
                flips(length, radius)

    def substring(self, codes: np.ndarray, h: int) -> np.ndarray:
        """Substring h of codes (B, K/8) uint8 as integers (B,) int64, its first bit the most significant."""
        start, length = self.starts[h], self.lengths[h]
        first, last = start // 8, (start + length - 1) // 8
        value = np.zeros(len(codes), np.int64)
        for byte in range(first, last + 1):
            value = (value << 8) | codes[:, byte]
        return (value >> (8 * (last + 1) - start - length)) & ((1 << length) - 1)

    def rows(self, items: np.ndarray) -> np.ndarray:
        """The codes of items (M,) as 64-bit words (M, W)."""
        return self.storage[items] if self.storage.dtype == np.uint64 else code_words(self.storage[items])

    def search_one(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Exact (distances (k,), indices (k,)) of query (K/8,) uint8 by (distance, index), or None if its
        candidates would exceed the budget before it is certified."""
        own = [int(self.substring(query[None], h)[0]) for h in range(self.nhash)]
        word = code_words(query[None])
        found_d, found_i, total = [], [], 0
        for radius in range(max(self.lengths) + 1):
            probed = [h for h in range(self.nhash) if radius <= self.lengths[h]]
            buckets = [own[h] ^ flips(self.lengths[h], radius) for h in probed]
            starts = np.concatenate([self.offsets[h][b] for h, b in zip(probed, buckets)])
            sizes = np.concatenate([self.offsets[h][b + 1] for h, b in zip(probed, buckets)]) - starts
            total += int(sizes.sum())
            if total > self.budget * self.n + k:
                return None
            ends = np.cumsum(sizes)
            items = self.ids[np.repeat(starts - ends + sizes, sizes) + np.arange(ends[-1])]
            table = np.repeat(np.repeat(probed, [len(b) for b in buckets]), sizes)
            differ = self.rows(items) ^ word
            near = np.stack([np.bitwise_count(differ & mask).sum(axis=1) for mask in self.masks])
            keep = near.argmin(axis=0) == table  # found here first: its smallest substring distance, first table
            found_i.append(items[keep])
            found_d.append(np.bitwise_count(differ[keep]).sum(axis=1, dtype=np.int64))
            distances = np.concatenate(found_d)
            if len(distances) >= k and np.partition(distances, k - 1)[k - 1] <= self.nhash * (radius + 1) - 1:
                keys = np.sort(distances * self.n + np.concatenate(found_i))[:k]
                return keys // self.n, keys % self.n
        return None
