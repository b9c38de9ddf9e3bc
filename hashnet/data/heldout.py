"""A held-out validation split carved from the training list, so that checkpoint selection never sees
the test queries (dataset.val=heldout)."""
from __future__ import annotations

import numpy as np

from hashnet.utils.errors import ConfigError


def heldout_rows(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """(N,) bool: the training rows held out as validation queries, class-stratified and seeded.

    labels (N, C) 0/1. A row's class is its first label (unlabeled rows form a class of their own); of each
    class's n rows round(fraction * n) are held out, at least 1, and always fewer than n, so every class
    keeps training rows. The same (labels, fraction, seed) always give the same rows.
    """
    if not 0 < fraction < 1:
        raise ConfigError(f"dataset.val_fraction must be between 0 and 1, got {fraction!r}: pass dataset.val_fraction=0.05")
    labels = np.asarray(labels)
    classes = np.where(labels.any(axis=1), labels.argmax(axis=1), -1)
    rng = np.random.default_rng(seed)
    held = np.zeros(len(labels), dtype=bool)
    for c in np.unique(classes):
        members = rng.permutation(np.flatnonzero(classes == c))
        if len(members) > 1:
            held[members[: min(len(members) - 1, max(1, round(fraction * len(members))))]] = True
    return held
