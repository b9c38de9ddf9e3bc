"""mAP@R of real-valued outputs ranked by inner product: the paper's HashNet+C (no binarisation).

The upper bound that sign codes are compared with (Cao et al., ICCV 2017, Table 3). It reuses the
Hamming metrics' label packing, relevance test and AP core (hashnet.retrieval.metrics); only the ranking differs:
larger <q, d> first, ties by database index. For codes in {-1,+1}, <q, d> = K - 2 * Hamming(q, d),
so on sign codes it equals `mean_average_precision(..., ties="index")`.
"""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from hashnet.data.protocol import check_conventions
from hashnet.retrieval.average_precision import MeanAP, TopK, average_precision, cut_offs
from hashnet.retrieval.codes import as_numpy, binarize
from hashnet.retrieval.metrics import CHUNK_PAIRS, Array, prepare, related


def _float64(x: Array) -> np.ndarray:
    """x as a float64 numpy array."""
    return as_numpy(x).astype(np.float64)


def _ranked_by_score(query: np.ndarray, db: np.ndarray, query_labels: np.ndarray, db_labels: np.ndarray,
                     depth: int, query_chunk: int | None) -> Iterator[np.ndarray]:
    """Yield (B, depth) bool relevance of each query's top `depth` by inner product, per chunk of B queries.

    query (Nq, K), db (N, K) float64; labels bit-packed (V, Nq), (V, N) uint64 as hashnet.retrieval.metrics packs
    them. The items scoring at least each row's depth-th best are sorted by (-score, index).
    """
    n = len(db)
    chunk = query_chunk or max(1, CHUNK_PAIRS // n)
    for start in range(0, len(query), chunk):
        cost = -(query[start:start + chunk] @ db.T)  # (B, N): lower ranks first
        b = len(cost)
        kth = np.partition(cost, depth - 1, axis=1)[:, depth - 1:depth]
        rows, cols = np.nonzero(cost <= kth)  # at least depth per row; row-major
        order = np.lexsort((cols, cost[rows, cols], rows))  # by row, then cost, then index
        first = np.searchsorted(rows, np.arange(b))[:, None] + np.arange(depth)  # (B, depth) positions
        yield related(query_labels[:, start:start + b], db_labels, np.arange(b)[:, None], cols[order][first])


def mean_average_precision_by_score(query_outputs: Array, query_labels: Array, db_outputs: Array,
                                    db_labels: Array, topk: TopK = None, empty_queries: str = "drop", *,
                                    query_chunk: int | None = None, with_counts: bool = False):
    """mAP@R over the ranking of the database by inner product <q, d> of real-valued outputs.

    query_outputs (Nq, K), db_outputs (N, K) real (e.g. tanh outputs in [-1, 1]); query_labels (Nq, C),
    db_labels (N, C) 0/1. topk: R (None: N; more than N is clamped with a warning), or a list of R
    (a list of mAP in its order, from one ranking to the largest R). AP and empty_queries ("drop":
    queries with no relevant item in the top R are left out; "zero": they count as AP 0) as in
    hashnet.retrieval.metrics.mean_average_precision. For outputs of equal norm the ranking is that of
    Euclidean distance. with_counts: return (mAP, queries counted), as mean_average_precision does.
    """
    check_conventions("index", empty_queries)
    query, db = _float64(query_outputs), _float64(db_outputs)
    # prepare checks the shapes and packs the labels; the sign codes it also packs are not used.
    data = prepare(binarize(torch.from_numpy(query)), query_labels, binarize(torch.from_numpy(db)), db_labels)
    depths, single = cut_offs(topk, len(db))
    mean = MeanAP(len(depths), empty_queries)
    for ranked in _ranked_by_score(query, db, data.query_labels, data.db_labels, max(depths), query_chunk):
        mean.add(*average_precision(ranked, depths))
    return (mean.result(single), mean.scored(single)) if with_counts else mean.result(single)
