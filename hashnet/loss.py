"""Kept for imports of the first layout: HashNet's loss lives in hashnet.methods.hashnet."""
from hashnet.methods.hashnet import pairwise_loss, similar_pair_weight

__all__ = ["pairwise_loss", "similar_pair_weight"]
