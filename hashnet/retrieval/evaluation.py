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
    mAP conventions (hashnet.data.protocol; score ranking breaks ties by index)."""

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


def evaluate_retrieval(query_outputs: Tensor, query_labels: Tensor, db_outputs: Tensor, db_labels: Tensor,
                       topk: int | None | list[int | None], eval_codes: str = "sign", ties: str = "index",
                       empty_queries: str = "drop", query_index: Tensor | None = None,
                       db_index: Tensor | None = None) -> Retrieval:
    """Binarise both splits (sign(0) = +1) and compute mAP@topk of the ranking eval_codes names.

    topk: R, or a list of R scored from one scan (the first is the run's mAP). query_index, db_index: each row's position in its split's list (None: 0, 1, ..., every row in order).
    """
    check_choice("eval_codes", eval_codes, EVAL_CODES)
    query_codes, db_codes = binarize(query_outputs), binarize(db_outputs)
    if eval_codes == "sign":
        mean_ap = mean_average_precision(query_codes, query_labels, db_codes, db_labels, topk, ties, empty_queries)
    else:
        ties = "index"  # scores are real numbers: equal ones are rare and go by index
        mean_ap = mean_average_precision_by_score(query_outputs, query_labels, db_outputs, db_labels, topk,
                                                  empty_queries)
    query_index = torch.arange(len(query_outputs)) if query_index is None else query_index
    db_index = torch.arange(len(db_outputs)) if db_index is None else db_index
    depths = list(topk) if isinstance(topk, (list, tuple)) else [topk]
    values = mean_ap if isinstance(mean_ap, list) else [mean_ap]
    mAP_at = {"all" if depth is None else str(depth): value for depth, value in zip(depths, values)}
    return Retrieval(query_outputs, query_codes, query_labels, db_outputs, db_codes, db_labels, depths[0], eval_codes,
                     ties, empty_queries, values[0], query_index, db_index, mAP_at)
