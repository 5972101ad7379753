"""Batches cut from in-memory tensors.

A ``DataLoader`` that indexes one sample at a time and collates them costs more than the
small models here spend computing; instead the sampler yields a whole batch of indices and
``TensorDataset`` fancy-indexes every tensor at once. It stays a real ``DataLoader``, so
Lightning can still shard it across processes.

The shuffled order of an epoch is a function of (seed, epoch) alone: Lightning calls
``set_epoch`` before each epoch, so a run resumed from a checkpoint sees the same batches
as an uninterrupted one. The loader is resumable in Lightning's sense (``state_dict`` /
``load_state_dict``): a checkpoint taken in the middle of an epoch records how many batches
of it were trained on (``pipeline.training.resume.RandomState`` keeps ``position`` current), and the
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


class ResumableBatches(Sampler[list[int]]):
    """Wraps a sampler of whole batches: passes ``set_epoch`` on (Lightning calls it on
    ``DataLoader.sampler``, which is this object when batches are sampled whole) and skips
    the batches of an epoch that a resumed run has already trained on."""

    def __init__(self, batch_sampler):
        self.batch_sampler = batch_sampler
        self.epoch, self.skip_epoch, self.skip = 0, -1, 0
        self._told, self._started = False, False

    def set_epoch(self, epoch: int) -> None:
        self.epoch, self._told = epoch, True
        for inner in (self.batch_sampler, getattr(self.batch_sampler, "sampler", None)):
            if hasattr(inner, "set_epoch"):
                inner.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.batch_sampler)

    def __iter__(self):
        if self._started and not self._told:
            # Nobody called set_epoch (Lightning's DistributedSamplerWrapper calls its own):
            # count epochs here, so each still gets a new order.
            self.set_epoch(self.epoch + 1)
        self._started, self._told = True, False
        skip = self.skip if self.epoch == self.skip_epoch else 0
        self.skip_epoch = -1  # once
        for i, batch in enumerate(self.batch_sampler):
            if i >= skip:
                yield batch


class ResumableLoader(DataLoader):
    """A ``DataLoader`` whose place in an epoch is saved in checkpoints (see module doc)."""

    position = 0  # batches of the current epoch already trained on

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.sampler.epoch, "batches": int(self.position)}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.sampler.skip_epoch, self.sampler.skip = int(state["epoch"]), int(state["batches"])


def batch_loader(arrays: list[np.ndarray], batch_sampler) -> DataLoader:
    """A resumable loader over in-memory arrays whose batches (lists of indices) come from
    ``batch_sampler`` (which may have ``set_epoch``)."""
    dataset = TensorDataset(*(torch.from_numpy(np.ascontiguousarray(a)) for a in arrays))
    return ResumableLoader(dataset, sampler=ResumableBatches(batch_sampler), batch_size=None, num_workers=0)


def batches(arrays: list[np.ndarray], batch_size: int, shuffle: bool, seed: int = 0) -> DataLoader:
    n = len(arrays[0])
    base = EpochShuffle(n, seed) if shuffle else SequentialSampler(range(n))
    return batch_loader(arrays, BatchSampler(base, batch_size=batch_size, drop_last=False))
