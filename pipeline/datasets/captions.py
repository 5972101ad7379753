"""Images of two to four handwritten digits side by side, captioned with the digits' words
("three one four"): a one-to-many task for Show and Tell and Show, Attend and Tell. Offline,
from scikit-learn's bundled 8×8 digits (``sklearn.datasets.load_digits``, 1,797 real images,
grey levels 0 .. 16).

The digit images are shuffled with the seed and a ``test_fraction`` of them held out: the
test captions are drawn only from held-out images, training and validation only from the
others, so the test measures reading digits never seen. Each example has a number of digits
uniform in ``min_digits`` .. ``max_digits``, each digit image drawn uniformly from its pool,
placed left to right; the canvas is 8 × 8·max_digits, blank (0) to the right of the last digit.

Arrays per split: ``images`` (uint8, N x 8 x 8·max_digits, 0 .. 16), ``target`` (int16 word ids,
N x max_digits, zero-padded), ``target_lengths`` (the number of digits). Split ``vocab``:
``target_tokens`` (<pad>, <s>, </s>, <unk>, then "zero" .. "nine") and ``joiner`` (a space).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from pipeline.datasets.dates import SPECIALS

WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
TARGET_TOKENS = SPECIALS + WORDS


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    min_digits: int = Field(2, ge=1)
    max_digits: int = Field(4, ge=1)
    test_fraction: float = Field(0.2, gt=0, lt=1, description="digit images held out for the test captions")
    n_train: int = Field(10000, ge=1)
    n_val: int = Field(500, ge=1)
    n_test: int = Field(1000, ge=1)

    @model_validator(mode="after")
    def _range(self) -> "Settings":
        if self.min_digits > self.max_digits:
            raise ValueError("min_digits must not exceed max_digits")
        return self


def compose(n: int, images: np.ndarray, labels: np.ndarray, settings: Settings, rng: np.random.Generator) -> dict[str, np.ndarray]:
    counts = rng.integers(settings.min_digits, settings.max_digits + 1, size=n)
    picks = rng.integers(0, len(images), size=(n, settings.max_digits))
    canvas = np.zeros((n, 8, 8 * settings.max_digits), dtype=np.uint8)
    target = np.zeros((n, settings.max_digits), dtype=np.int16)
    for i, k in enumerate(counts.tolist()):
        for j in range(k):
            canvas[i, :, 8 * j : 8 * j + 8] = images[picks[i, j]]
            target[i, j] = len(SPECIALS) + labels[picks[i, j]]
    return {"images": canvas, "target": target, "target_lengths": counts.astype(np.int16)}


def generate(settings: Settings, seed: int, scratch: Path | None = None) -> dict[str, dict[str, np.ndarray]]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    images, labels = digits.images.astype(np.uint8), digits.target.astype(np.int64)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(images))
    n_held = int(round(settings.test_fraction * len(images)))
    held, kept = order[:n_held], order[n_held:]
    return {
        "train": compose(settings.n_train, images[kept], labels[kept], settings, rng),
        "val": compose(settings.n_val, images[kept], labels[kept], settings, rng),
        "test": compose(settings.n_test, images[held], labels[held], settings, rng),
        "vocab": {"target_tokens": np.array(TARGET_TOKENS), "joiner": np.array([" "])},
    }
