"""Batches cut from in-memory tensors.

A ``DataLoader`` that indexes one sample at a time and collates them costs more than the
small models here spend computing; instead the sampler yields a whole batch of indices and
``TensorDataset`` fancy-indexes every tensor at once. It stays a real ``DataLoader``, so
Lightning can still shard it across processes.

The shuffled order of an epoch is a function of (seed, epoch) alone: Lightning calls
``set_epoch`` before each epoch, so a run resumed from a checkpoint sees the same batches
as an uninterrupted one. The loader is resumable in Lightning's sense (``state_dict`` /
``load_state_dict``): a checkpoint taken in the middle of an epoch records how many batches
of it were trained on (``pipeline.resume.RandomState`` keeps ``position`` current), and the
resumed epoch skips them.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, Sampler, SequentialSampler, TensorDataset


class EpochShuffle(Sampler[int]):
    """A random permutation of ``range(n)`` drawn from ``seed`` and the epoch number."""

    def __init__(self, n: int, seed: int):
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return iter(torch.randperm(self.n, generator=generator).tolist())


class EpochBatchSampler(BatchSampler):
    """``BatchSampler`` that knows its epoch (Lightning calls ``set_epoch`` on
    ``DataLoader.sampler``, which is this object when batches are sampled whole) and can
    skip the batches of an epoch that a resumed run has already trained on."""

    def __init__(self, sampler, batch_size: int, drop_last: bool):
        super().__init__(sampler, batch_size, drop_last)
        self.epoch, self.skip_epoch, self.skip = 0, -1, 0
        self._told, self._started = False, False

    def set_epoch(self, epoch: int) -> None:
        self.epoch, self._told = epoch, True
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)

    def __iter__(self):
        if self._started and not self._told:
            # Nobody called set_epoch (Lightning's DistributedSamplerWrapper calls its own):
            # count epochs here, so each still gets a new order.
            self.set_epoch(self.epoch + 1)
        self._started, self._told = True, False
        skip = self.skip if self.epoch == self.skip_epoch else 0
        self.skip_epoch = -1  # once
        for i, batch in enumerate(super().__iter__()):
            if i >= skip:
                yield batch


class ResumableLoader(DataLoader):
    """A ``DataLoader`` whose place in an epoch is saved in checkpoints (see module doc)."""

    position = 0  # batches of the current epoch already trained on

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.sampler.epoch, "batches": int(self.position)}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.sampler.skip_epoch, self.sampler.skip = int(state["epoch"]), int(state["batches"])


def batches(arrays: list[np.ndarray], batch_size: int, shuffle: bool, seed: int = 0) -> DataLoader:
    tensors = [torch.from_numpy(np.ascontiguousarray(a)) for a in arrays]
    dataset = TensorDataset(*tensors)
    base = EpochShuffle(len(dataset), seed) if shuffle else SequentialSampler(dataset)
    sampler = EpochBatchSampler(base, batch_size=batch_size, drop_last=False)
    return ResumableLoader(dataset, sampler=sampler, batch_size=None, num_workers=0)
