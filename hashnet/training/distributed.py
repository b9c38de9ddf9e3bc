"""Gather per-sample results from every rank and put them back in dataset order.

A DistributedSampler pads the last rank's share with repeated samples and interleaves samples
across ranks, so concatenating in rank order would count some samples twice and scramble the
rest. Each sample carries its dataset index; results are placed by that index instead.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

AllGather = Callable[[Tensor], Tensor]


def place_by_index(values: Tensor, index: Tensor, size: int) -> Tensor:
    """values: (n, ...) with dataset positions index: (n,) -> (size, ...) in dataset order.

    Duplicates (padding) write the same sample twice, harmlessly. Raises if a position is missing.
    """
    out = values.new_zeros((size, *values.shape[1:]))
    seen = torch.zeros(size, dtype=torch.bool, device=values.device)
    out[index] = values
    seen[index] = True
    if not bool(seen.all()):
        missing = (~seen).nonzero().flatten()[:5].tolist()
        raise RuntimeError(f"{int((~seen).sum())} of {size} samples were never encoded (first: {missing})")
    return out


def gather_by_index(values: Tensor, index: Tensor, size: int, all_gather: AllGather | None = None) -> Tensor:
    """Collect values (n_rank, ...) from all ranks into (size, ...) ordered by dataset index.

    all_gather stacks a tensor of the same shape from every rank into (world, ...) (e.g.
    LightningModule.all_gather); None means a single process. Ranks may hold different counts,
    so each pads to the largest and marks padding with index -1.
    """
    if all_gather is not None:
        count = all_gather(torch.tensor([len(index)], device=index.device)).flatten()
        longest = int(count.max())
        pad = longest - len(index)
        values = torch.cat([values, values.new_zeros((pad, *values.shape[1:]))])
        index = torch.cat([index, index.new_full((pad,), -1)])
        values = all_gather(values).flatten(0, 1)
        index = all_gather(index).flatten()
        keep = index >= 0
        values, index = values[keep], index[keep]
    return place_by_index(values, index, size)
