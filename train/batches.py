"""Batches of map-style training data whose content depends only on ``(seed, micro-step, rank)``,
so a resumed run sees exactly the batches of the uninterrupted one (docs/DESIGN.md#training).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler


class StepBatchSampler(Sampler[list[tuple[int, int]]]):
    """Endless batches whose content depends only on ``(seed, micro-step, rank)``.

    The index stream is the concatenation of permutations drawn from ``np.random.default_rng([seed,
    epoch])``; micro-step ``k`` takes stream positions ``[k·G, (k+1)·G)`` with ``G = batch_size ×
    world``, and rank ``r`` the ``r``-th slice of it. Items are ``(epoch, index)`` pairs so datasets
    with per-epoch randomness (``set_epoch``) stay reproducible.

    Args:
        size: dataset length.
        batch_size: items per rank and micro-step.
        seed: data-order seed.
        rank, world: this process and the number of processes.
        start: first micro-step (resume).
    """

    def __init__(self, size: int, batch_size: int, seed: int, rank: int = 0, world: int = 1,
                 start: int = 0):
        if size < 1:
            raise ValueError("cannot sample from an empty dataset")
        self.size, self.batch_size, self.seed = size, batch_size, seed
        self.rank, self.world, self.start = rank, world, start
        self._epoch, self._perm = -1, np.arange(0)

    def position(self, pos: int) -> tuple[int, int]:
        epoch = pos // self.size
        if epoch != self._epoch:
            self._epoch = epoch
            self._perm = np.random.default_rng([self.seed, epoch]).permutation(self.size)
        return epoch, int(self._perm[pos % self.size])

    def batch(self, k: int) -> list[tuple[int, int]]:
        first = k * self.batch_size * self.world + self.rank * self.batch_size
        return [self.position(first + j) for j in range(self.batch_size)]

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        k = self.start
        while True:
            yield self.batch(k)
            k += 1

    def __len__(self) -> int:  # endless; DataLoader only needs it for len()
        return 2**62


class EpochItems(Dataset):
    """Reads ``(epoch, index)`` items of a dataset, keeping only tensors (paths etc. dropped)."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, item: tuple[int, int]) -> dict[str, torch.Tensor]:
        epoch, i = item
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)
        return {k: v for k, v in self.dataset[i].items() if isinstance(v, torch.Tensor)}


