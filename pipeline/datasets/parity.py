"""Parity of bit strings: the tutorial's motivating example ("output YES if the number of 1s
is ...": no fixed window solves it). Label 1 when the number of ones is odd (REFERENCE.md).

Training and validation strings have lengths drawn uniformly from ``train_min_length`` ..
``train_max_length`` (L); the test split holds ``n_test_per_length`` strings of every length
1 .. ``test_max_length``, several times L, to measure generalisation beyond the lengths seen.

Each bit is 1 with probability ``one_prob`` (0.5: uniform strings). A small ``one_prob`` makes
the task one of long time lags: only a 1 changes the answer, so the parity seen so far must be
held across runs of zeros about 1 / ``one_prob`` long, and the gradient that teaches that hold
must cross them (Bengio et al. 1994's latching problem; Hochreiter & Schmidhuber 1997). With
uniform bits a string's parity flips every second step on average and no span is long.
Arrays: ``tokens`` (int8, N x max_len, zero-padded), ``lengths`` (int16), ``labels`` (int8).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    train_min_length: int = Field(1, ge=1)
    train_max_length: int = Field(16, ge=1)
    test_max_length: int = Field(64, ge=1)
    n_train: int = Field(20000, ge=1)
    n_val: int = Field(2000, ge=1)
    n_test_per_length: int = Field(100, ge=1)
    one_prob: float = Field(0.5, gt=0, lt=1, description="chance that a bit is 1")

    @model_validator(mode="after")
    def _lengths_ordered(self) -> "Settings":
        if self.train_max_length < self.train_min_length:
            raise ValueError("train_max_length must be at least train_min_length")
        if self.test_max_length < self.train_max_length:
            raise ValueError("test_max_length must be at least train_max_length")
        return self


def strings(lengths: np.ndarray, rng: np.random.Generator, one_prob: float = 0.5) -> dict[str, np.ndarray]:
    max_len = int(lengths.max())
    if one_prob == 0.5:  # the uniform strings' draw, kept so that existing data sets do not change
        bits = rng.integers(0, 2, size=(len(lengths), max_len), dtype=np.int8)
    else:
        bits = (rng.random(size=(len(lengths), max_len)) < one_prob).astype(np.int8)
    bits[np.arange(max_len)[None, :] >= lengths[:, None]] = 0  # padding
    labels = (bits.sum(axis=1) % 2).astype(np.int8)
    return {"tokens": bits, "lengths": lengths.astype(np.int16), "labels": labels}


def generate(settings: Settings, seed: int, scratch: Path | None = None) -> dict[str, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    lo, hi = settings.train_min_length, settings.train_max_length
    p = settings.one_prob
    train = strings(rng.integers(lo, hi + 1, size=settings.n_train), rng, p)
    val = strings(rng.integers(lo, hi + 1, size=settings.n_val), rng, p)
    test_lengths = np.repeat(np.arange(1, settings.test_max_length + 1), settings.n_test_per_length)
    test = strings(test_lengths, rng, p)
    return {"train": train, "val": val, "test": test}
