"""Average precision of one ranking per query, the pure math behind mAP@R (hashnet.retrieval.metrics, hashnet.retrieval.scores).

From the relevance of a query's top R in ranking order (ties already broken), or from per-distance
histograms of items / relevant items with ties in uniformly random order (the expectation, exact).
Several cut-offs R come from one ranking to the largest. `MeanAP` averages over queries under an
empty-query rule ("drop" or "zero", hashnet.data.protocol).
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

TopK = int | None | Sequence[int | None]  # R of mAP@R (None: the whole database), or several of them


def clamp(k: int, size: int, name: str) -> int:
    """k clamped to the database size (with a warning when larger); k < 1 is an error."""
    if k < 1:
        raise ValueError(f"{name} must be >= 1, got {k}")
    if k > size:
        warnings.warn(f"{name}={k} is larger than the database ({size} items); using {size}")
    return min(k, size)


def average_precision(ranked: np.ndarray, depths: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """AP@R (D, B) float64 for each R of depths (D,) from ranked relevance (B, max R) bool, and whether
    each row has a hit in its top R (D, B) bool (its AP is 0.0 when it has none)."""
    b, width = ranked.shape
    where = np.flatnonzero(ranked)  # positions of the hits, row-major
    rows = where // width
    rank = where - rows * width  # 0-based
    hits_so_far = np.arange(1, len(where) + 1) - np.searchsorted(rows, np.arange(b))[rows]
    precision = hits_so_far / (rank + 1)
    ap, found = np.empty((len(depths), b)), np.empty((len(depths), b), dtype=bool)
    for i, depth in enumerate(depths):
        inside = slice(None) if depth == width else rank < depth
        hits = np.bincount(rows[inside], minlength=b)
        ap[i] = np.bincount(rows[inside], weights=precision[inside], minlength=b) / np.maximum(hits, 1)
        found[i] = hits > 0
    return ap, found


def group_precision_sum(before: np.ndarray, rel_before: np.ndarray, size: np.ndarray, rel: np.ndarray,
                        harmonic: np.ndarray) -> np.ndarray:
    """Expected sum of precision@rank over the relevant items of a tie group in random order.

    The group has `size` items, `rel` relevant, ranked after `before` items of which `rel_before`
    are relevant (broadcastable int arrays). Its position p is relevant w.p. rel/size, and then
    1 + (p-1)(rel-1)/(size-1) of its first p items are, so the sum is (rel/size) [(rel_before+1) h
    + (rel-1)/(size-1) (size - (before+1) h)], h = sum_{p<=size} 1/(before+p) from `harmonic`.
    """
    h = harmonic[before + size] - harmonic[before]
    pairs = np.divide(rel - 1, size - 1, out=np.zeros(np.broadcast(rel, size).shape), where=size > 1)
    share = np.divide(rel, size, out=np.zeros(pairs.shape), where=size > 0)
    return share * ((rel_before + 1) * h + pairs * (size - (before + 1) * h))


def expected_average_precision(count: np.ndarray, relevant: np.ndarray, depths: Sequence[int],
                               harmonic: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """E[AP@R | a relevant item in the top R] (D, B) for each R of depths (D,), with tie groups in
    uniformly random order, and the probability (D, B) of that condition.

    count, relevant: (B, K+1) items / relevant items per distance (exact up to the cut of the largest
    R). Groups before the boundary group (the one holding rank R, n items, r relevant, after n0 items
    of which r0 relevant) are fully ranked. Its first m = R - n0 items hold X relevant, X ~
    Hypergeometric(n, r, m), uniformly placed, so given X = x: AP = (E[sum over earlier groups] +
    E[boundary sum | x]) / (r0 + x). Orders with r0 + x = 0 have no hit: P(hit) = P(r0 + X > 0),
    which is 1 when r0 > 0. Unconditioned, with AP 0 for those orders, E[AP] = P(hit) E[AP | hit].
    """
    before = np.cumsum(count, axis=1) - count
    rel_before = np.cumsum(relevant, axis=1) - relevant
    groups = group_precision_sum(before, rel_before, count, relevant, harmonic)
    ap, hit = np.empty((len(depths), len(count))), np.empty((len(depths), len(count)))
    for i, depth in enumerate(depths):
        cut = np.argmax(before + count >= depth, axis=1)[:, None]
        inner = np.where(np.arange(count.shape[1]) < cut, groups, 0.0).sum(axis=1, keepdims=True)
        n0, r0, n, r = (np.take_along_axis(a, cut, axis=1) for a in (before, rel_before, count, relevant))
        m = depth - n0
        lo, hi = np.maximum(0, m - (n - r)), np.minimum(r, m)
        x = lo + np.arange((hi - lo).max() + 1)  # (B, X) values of X, valid up to hi
        # log P(X = x) up to a constant, from P(x + 1) / P(x) = (r - x)(m - x) / ((x + 1)(n - r - m + x + 1))
        step = np.log(np.where(x < hi, (r - x) * (m - x), 1.0)) - np.log((x + 1) * (n - r - m + x + 1))
        log_p = np.concatenate([np.zeros_like(lo, dtype=float), np.cumsum(step, axis=1)[:, :-1]], axis=1)
        log_p = np.where(x <= hi, log_p, -np.inf)
        probability = np.exp(log_p - log_p.max(axis=1, keepdims=True))  # P(X = x), unnormalised
        weight = np.where(r0 + x > 0, probability, 0.0)
        value = (inner + group_precision_sum(n0, r0, m, x, harmonic)) / np.maximum(r0 + x, 1)
        mass = weight.sum(axis=1)
        ap[i], hit[i] = (weight * value).sum(axis=1) / np.where(mass > 0, mass, 1.0), mass / probability.sum(axis=1)
    return ap, hit


def cut_offs(topk: TopK, size: int) -> tuple[list[int], bool]:
    """The R of topk (None: size; above size: size, with a warning), and whether topk was a single R."""
    single = topk is None or isinstance(topk, (int, np.integer))
    values = [topk] if single else list(topk)
    if not values:
        raise ValueError("topk must not be an empty list: pass an int, None (the whole database) or a list of them")
    return [clamp(size if k is None else int(k), size, "topk") for k in values], single


class MeanAP:
    """Running mean over queries of AP, one per cut-off R, under an empty-query rule ("drop": queries
    without a hit are left out; "zero": they count as AP 0; see hashnet.retrieval.metrics.mean_average_precision)."""

    def __init__(self, depths: int, empty_queries: str) -> None:
        self.total, self.counted = [0.0] * depths, [0] * depths
        self.zero = empty_queries == "zero"

    def add(self, ap: np.ndarray, hit: np.ndarray) -> None:
        """ap (D, B): AP@R given a hit in the top R; hit (D, B): probability (or bool) of such a hit."""
        for i, (values, p) in enumerate(zip(ap, hit)):
            if self.zero:  # orders without a hit count as AP 0
                self.total[i] += float((values * p).sum())
                self.counted[i] += len(values)
            else:
                self.total[i] += float(values[p > 0].sum())
                self.counted[i] += int((p > 0).sum())

    def result(self, single: bool) -> float | list[float]:
        """The means (0.0 where no query counted): a float if single, else a list in the order of R."""
        means = [total / counted if counted else 0.0 for total, counted in zip(self.total, self.counted)]
        return means[0] if single else means

    def scored(self, single: bool) -> int | list[int]:
        """How many queries each mean counts ("drop": those with a hit in the top R; "zero": all), as result."""
        return self.counted[0] if single else list(self.counted)
