"""One evaluation split's outputs, labels and sample indices, collected over the steps of every process.

A torchmetrics Metric: its states are lists that torchmetrics concatenates across processes on compute()
(gathering tensors of different lengths). A DistributedSampler pads the last rank's share with repeated
samples and interleaves samples across ranks, so concatenating in rank order would count some samples twice
and scramble the rest: compute() orders the rows by their dataset index and keeps one row per index.
"""
from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric


class SplitOutputs(Metric):
    """update(outputs (B, K), labels (B, C), index (B,)) per batch; compute() -> (outputs (N, K) float32,
    labels (N, C) float32, index (N,) int64), ascending by dataset index, one row per index, on this device."""

    full_state_update = False

    def __init__(self) -> None:
        super().__init__(sync_on_compute=True)
        self.add_state("outputs", default=[], dist_reduce_fx="cat")
        self.add_state("labels", default=[], dist_reduce_fx="cat")
        self.add_state("index", default=[], dist_reduce_fx="cat")

    def update(self, outputs: Tensor, labels: Tensor, index: Tensor) -> None:
        self.outputs.append(outputs.detach().float())
        self.labels.append(labels.detach().float())
        self.index.append(index.detach().long())

    def compute(self) -> tuple[Tensor, Tensor, Tensor]:
        outputs, labels, index = (torch.cat(state) if isinstance(state, list) else state
                                  for state in (self.outputs, self.labels, self.index))
        unique, first = _first_occurrence(index)
        return outputs[first], labels[first], unique


def _first_occurrence(index: Tensor) -> tuple[Tensor, Tensor]:
    """The distinct values of index (n,) ascending and the position of the first occurrence of each."""
    order = torch.argsort(index, stable=True)
    ordered = index[order]
    keep = torch.ones_like(ordered, dtype=torch.bool)
    keep[1:] = ordered[1:] != ordered[:-1]
    return ordered[keep], order[keep]
