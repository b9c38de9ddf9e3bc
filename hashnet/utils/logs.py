"""Logging on rank 0 only: the filter configs/hydra/default.yaml puts on the console and train.log handlers.

Library code logs with `logging.getLogger(__name__)`; under DDP every rank runs the same code, and
only rank 0's lines reach the console and the run folder's log file.
"""
from __future__ import annotations

import logging

from pytorch_lightning.utilities import rank_zero_only


class RankZeroFilter(logging.Filter):
    """Passes records logged on the process of global rank 0 (or outside distributed training)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return getattr(rank_zero_only, "rank", 0) == 0
