"""The seeded, class-stratified split every builder draws its lists with (CIFAR-10 and Fashion-MNIST through
hashnet.data.builders.pools, the digits, a folder of your own).

One generator seeded with seed permutes each class's members in turn, classes in label order. Of a class's
permuted members, the first `query` are queries; of the R others, the first `train` are training images and the
last `database` the database, so train and database overlap only when train + database > R. The permutation does
not depend on the sizes: builds that ask for the same sizes draw the same split.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

SPLITS = ("query", "train", "database")
Sizes = Callable[[int], tuple[int, int, int]]  # a class's image count -> its (query, train, database) counts


def split_per_class(labels: np.ndarray, num_classes: int, seed: int,
                    sizes: Sizes) -> tuple[dict[str, np.ndarray], list[int]]:
    """({"query", "train", "database"}: sorted positions into labels, the classes too small for their sizes).

    labels: (N,) class ids in [0, num_classes). A class is too small when its train or database count exceeds R,
    its images that are not queries; it is left out of the split (the caller says why).
    """
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {key: [np.zeros(0, np.int64)] for key in SPLITS}
    small = []
    for label in range(num_classes):
        members = rng.permutation(np.flatnonzero(labels == label))
        queries, train, database = sizes(len(members))
        rest = len(members) - queries
        if train > rest or database > rest:
            small.append(label)
            continue
        parts["query"].append(members[:queries])
        parts["train"].append(members[queries:queries + train])
        parts["database"].append(members[len(members) - database:])
    return {key: np.sort(np.concatenate(chunks)) for key, chunks in parts.items()}, small
