"""The evaluation protocol of a mAP number, as one line that every result carries:

    mAP@5000 ties=index empty=drop queries-in-database=yes split=original

mAP@R: the cut-off R ("all": the whole database). ties: how equal Hamming distances are ordered
("index": by database index; "average": the expectation over random orders). empty: what a query with
no relevant item in the top R counts ("drop": left out of the mean, the paper's code; "zero": AP 0,
DeepHash-pytorch's and FIRe's). queries-in-database: whether any query image is also a database
item ("unknown" when that could not be told). split: "original" (the lists as published) or "strict"
(queries left out of the database or unlabeled rows dropped); unseen: the classes a protocol held out of training
(fashion_mnist_unseen), when there are any. Numbers whose lines differ are not
comparable.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from hashnet.utils.errors import check_choice

TIES = ("index", "average")
EMPTY_QUERIES = ("drop", "zero")
SPLITS = ("original", "strict")


def check_conventions(ties: str, empty_queries: str, prefix: str = "") -> None:
    """ConfigError unless ties and empty_queries are known; prefix names where they came from (e.g. "dataset.")."""
    check_choice(f"{prefix}ties", ties, TIES)
    check_choice(f"{prefix}empty_queries", empty_queries, EMPTY_QUERIES)


def split_of(drop_unlabeled: bool, exclude_queries_from_database: bool) -> str:
    """"strict" when either protocol option of the dataset was on, else "original"."""
    return "strict" if drop_unlabeled or exclude_queries_from_database else "original"


def queries_in_database(query_paths: Iterable[str], db_paths: Iterable[str]) -> bool:
    """Whether any query image path is also a database image path."""
    database = set(db_paths)
    return any(path in database for path in query_paths)


@dataclass(frozen=True)
class Protocol:
    """How a mAP number was computed; str() is its one-line description."""
    topk: int | None
    ties: str = "index"
    empty_queries: str = "drop"
    queries_in_database: bool | None = None  # None: could not be told
    split: str = "original"
    unseen: tuple[int, ...] | None = None  # the classes held out of training (fashion_mnist_unseen), if any

    def __post_init__(self) -> None:
        check_conventions(self.ties, self.empty_queries)
        check_choice("split", self.split, SPLITS)

    @property
    def metric(self) -> str:
        """The metric's name: mAP@R, or mAP@all when every database item is ranked."""
        return f"mAP@{self.topk or 'all'}"

    def __str__(self) -> str:
        overlap = {True: "yes", False: "no", None: "unknown"}[self.queries_in_database]
        unseen = f" unseen={','.join(map(str, self.unseen))}" if self.unseen else ""
        return (f"{self.metric} ties={self.ties} empty={self.empty_queries} "
                f"queries-in-database={overlap} split={self.split}{unseen}")
