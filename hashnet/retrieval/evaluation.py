"""One retrieval evaluation as a value: the outputs, codes and labels of the query and database splits,
and the mAP@R of the chosen ranking. Built by `evaluate_retrieval`; read by the outputs (metrics.json,
plots) and by anyone who wants the codes of a test run.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from hashnet.retrieval.codes import binarize
from hashnet.retrieval.metrics import mean_average_precision
from hashnet.retrieval.scores import mean_average_precision_by_score
from hashnet.utils.errors import check_choice

EVAL_CODES = ("sign", "continuous")


@dataclass(frozen=True)
class Retrieval:
    """query_* (Nq, ...) and db_* (N, ...) in dataset order, on the CPU: outputs (., K) float (the
    continuous codes), codes (., K) int8 in {-1, +1}, labels (., C) 0/1 float, index (.,) int64 each row's
    position in its split's list (all of them unless images were skipped as unreadable). topk: R (None: N) of mAP;
    mAP_at: the mAP at every R asked for, one scan ("all" for N, else str(R)), topk's first;
    eval_codes: how the database was ranked for mAP ("sign": Hamming distance of the codes, the
    paper's protocol; "continuous": inner product of the outputs, HashNet+C); ties, empty_queries: the
    mAP conventions (hashnet.data.protocol; score ranking breaks ties by index). topk is the R used: the
    requested one (topk_requested) clamped to the database size. scored_queries: how many queries the mAP (at
    the first R) averages; 0 means no query could be scored and the mAP of 0.0 is no score at all."""

    query_outputs: Tensor
    query_codes: Tensor
    query_labels: Tensor
    db_outputs: Tensor
    db_codes: Tensor
    db_labels: Tensor
    topk: int | None
    eval_codes: str
    ties: str
    empty_queries: str
    mAP: float
    query_index: Tensor
    db_index: Tensor
    mAP_at: dict[str, float]
    topk_requested: int | list[int] | None = None
    scored_queries: int | None = None


def used_topk(topk: int | list[int] | None, size: int) -> int | list[int] | None:
    """The R that mAP@R uses on a database of size items: topk clamped to size (None, the whole database, stays)."""
    if isinstance(topk, (list, tuple)):
        return [None if k is None else min(int(k), size) for k in topk]
    return None if topk is None else min(int(topk), size)


def evaluate_retrieval(query_outputs: Tensor, query_labels: Tensor, db_outputs: Tensor, db_labels: Tensor,
                       topk: int | None | list[int | None], eval_codes: str = "sign", ties: str = "index",
                       empty_queries: str = "drop", query_index: Tensor | None = None,
                       db_index: Tensor | None = None) -> Retrieval:
    """Binarise both splits (sign(0) = +1) and compute mAP@topk of the ranking eval_codes names.

    topk: R, or a list of R scored from one scan (the first is the run's mAP). query_index, db_index: each row's
    position in its split's list (None: 0, 1, ..., every row in order).
    """
    check_choice("eval_codes", eval_codes, EVAL_CODES)
    query_codes, db_codes = binarize(query_outputs), binarize(db_outputs)
    if eval_codes == "sign":
        mean_ap, scored = mean_average_precision(query_codes, query_labels, db_codes, db_labels, topk, ties,
                                                 empty_queries, with_counts=True)
    else:
        ties = "index"  # scores are real numbers: equal ones are rare and go by index
        mean_ap, scored = mean_average_precision_by_score(query_outputs, query_labels, db_outputs, db_labels, topk,
                                                          empty_queries, with_counts=True)
    query_index = torch.arange(len(query_outputs)) if query_index is None else query_index
    db_index = torch.arange(len(db_outputs)) if db_index is None else db_index
    used = used_topk(topk, len(db_outputs))
    depths, values, counts = (list(x) if isinstance(x, (list, tuple)) else [x] for x in (used, mean_ap, scored))
    mAP_at = {"all" if depth is None else str(depth): value for depth, value in zip(depths, values)}
    return Retrieval(query_outputs, query_codes, query_labels, db_outputs, db_codes, db_labels, depths[0], eval_codes,
                     ties, empty_queries, values[0], query_index, db_index, mAP_at, topk, counts[0])


def unscored_reason(retrieval: Retrieval) -> str:
    """Why no query could be scored: queries without labels, none sharing a label with the database, or none
    with a relevant item in its top R (empty_queries=drop)."""
    query_labels, db_labels = retrieval.query_labels > 0, retrieval.db_labels > 0
    unlabeled = int((~query_labels.any(dim=1)).sum())
    shares = (query_labels.float() @ db_labels.any(dim=0).float()) > 0
    total = len(query_labels)
    if not shares.any():
        why = f"none of the {total} queries shares a label with a database image"
        return why + (f" ({unlabeled} of them have no label)" if unlabeled else "")
    return (f"none of the {total} queries has a relevant image in its top R={retrieval.topk} "
            f"(dataset.empty_queries={retrieval.empty_queries} leaves such queries out)")
