"""Batches cut from in-memory tensors.

A ``DataLoader`` that indexes one sample at a time and collates them costs more than the
small models here spend computing; instead the sampler yields a whole batch of indices and
``TensorDataset`` fancy-indexes every tensor at once. It stays a real ``DataLoader``, so
Lightning can still shard it across processes.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler, TensorDataset


def batches(arrays: list[np.ndarray], batch_size: int, shuffle: bool, seed: int = 0) -> DataLoader:
    tensors = [torch.from_numpy(np.ascontiguousarray(a)) for a in arrays]
    dataset = TensorDataset(*tensors)
    if shuffle:
        base = RandomSampler(dataset, generator=torch.Generator().manual_seed(seed))
    else:
        base = SequentialSampler(dataset)
    sampler = BatchSampler(base, batch_size=batch_size, drop_last=False)
    return DataLoader(dataset, sampler=sampler, batch_size=None, num_workers=0)
