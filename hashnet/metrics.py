"""Kept for imports of the first layout: the retrieval metrics live in hashnet.retrieval.metrics."""
from hashnet.retrieval.metrics import mean_average_precision

__all__ = ["mean_average_precision"]
