"""Training randomness as pure functions of (seed, epoch, step), so a resumed run repeats it exactly.

A plain shuffled DataLoader draws its permutation and the crops from the global RNG, whose state
after a restart differs from the interrupted run's, and Lightning cannot restore the position
inside an epoch of a non-stateful loader. Here instead:

- the permutation of epoch e is drawn from a generator seeded with (seed, e), and every sample
  carries its own augmentation seed drawn with it; a sampler built at global step s skips the
  batches that steps before s consumed;
- the global RNG (dropout) is reseeded from (seed, step, rank) before every training step
  (hashnet.training.callbacks.StepSeed).
"""
from __future__ import annotations

from typing import Iterator

import torch
from torch.utils.data import Dataset, DistributedSampler

SEED_RANGE = 2**62  # per-sample seeds are drawn below this (torch.manual_seed takes 64-bit seeds)


def mix_seed(*parts: int) -> int:
    """A 63-bit seed from integers: the same parts always give the same seed, neighbours differ."""
    generator = torch.Generator().manual_seed(parts[0])
    for part in parts[1:]:
        offset = int(torch.randint(SEED_RANGE, (), generator=generator))
        generator.manual_seed((offset + part) % SEED_RANGE)
    return int(torch.randint(SEED_RANGE, (), generator=generator))


def epoch_order(size: int, seed: int, epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(permutation (size,) int64, augmentation seeds (size,) int64) of one epoch, from (seed, epoch) only."""
    generator = torch.Generator().manual_seed(mix_seed(seed, epoch))
    return torch.randperm(size, generator=generator), torch.randint(SEED_RANGE, (size,), generator=generator)


class ResumableSampler(DistributedSampler):
    """Yields (index, augmentation seed) for the batches of this rank, epoch by epoch.

    Step t of epoch e (global batch = world_size * batch_size samples, incomplete batches dropped)
    takes positions [(t * world_size + rank) * batch_size, ... + batch_size) of epoch_order(e).
    start_step: the global step the loader is built at (the resumed one); in the epoch holding it,
    the batches of earlier steps are skipped. A DistributedSampler subclass, so Lightning keeps it.
    """

    def __init__(self, dataset: Dataset, batch_size: int, seed: int, start_step: int = 0,
                 num_replicas: int = 1, rank: int = 0) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed, drop_last=True)
        self.batch_size, self.start_step = batch_size, start_step
        self.steps_per_epoch = len(dataset) // (batch_size * num_replicas)
        if self.steps_per_epoch == 0:
            raise ValueError(f"{len(dataset)} training images make no full batch of {batch_size} x {num_replicas} "
                             "processes -- lower dataset.batch_size")

    def __len__(self) -> int:
        """Samples of a whole epoch on this rank (Lightning's epoch length), skipped ones included."""
        return self.steps_per_epoch * self.batch_size

    def skipped_steps(self, epoch: int) -> int:
        """Steps of epoch that were done before start_step."""
        return min(max(self.start_step - epoch * self.steps_per_epoch, 0), self.steps_per_epoch)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        order, seeds = epoch_order(len(self.dataset), self.seed, self.epoch)
        for step in range(self.skipped_steps(self.epoch), self.steps_per_epoch):
            first = (step * self.num_replicas + self.rank) * self.batch_size
            for position in range(first, first + self.batch_size):
                yield int(order[position]), int(seeds[position])


class SeededSamples(Dataset):
    """dataset[(index, seed)] = dataset[index] with the global torch RNG seeded by seed, then restored.

    The random crops and flips of a sample then depend on its seed only, not on what ran before.
    """

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]):
        index, seed = key
        with torch.random.fork_rng(devices=[]):
            torch.random.default_generator.manual_seed(seed)  # the CPU generator only: fork_rng restores only it
            return self.dataset[index]

