"""Kept for imports of the first layout: HashNet's continuation schedule lives in hashnet.methods.hashnet."""
from hashnet.methods.hashnet import beta_at

__all__ = ["beta_at"]
