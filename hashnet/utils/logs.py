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


NOISE = (  # console lines of the libraries that say nothing about this run (the log file keeps them), lower case
    "💡 tip:",                            # Lightning's adverts for litlogger / litmodels
    "isinstance(treespec, leafspec)` is deprecated",  # torch's FutureWarning about Lightning's own code
    "total flops",                        # Lightning's model table (FLOPs 0: no example input); kept in train.log
    "was configured so validation will run after every batch",  # a Trainer(val_check_interval=1) note
)


class ConsoleNoiseFilter(logging.Filter):
    """Drops the records whose message holds one of NOISE (library notes that need no action) from the console."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage().lower()
        return not any(noise in message for noise in NOISE)
