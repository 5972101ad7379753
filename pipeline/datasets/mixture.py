"""Mixtures of 2-D Gaussians for measuring mode collapse exactly (PacGAN, VEEGAN).

``ring``: ``n_components`` Gaussians with standard deviation ``std`` evenly spaced on a circle
of radius ``radius`` (REFERENCE.md: 8 components, σ = 0.01, unit circle).
``grid``: ``side``² Gaussians at the points of a square grid with ``spacing`` between
neighbours, centred on 0 (REFERENCE.md: 25 at {−4, −2, 0, 2, 4}², σ = 0.05). Each split holds
``x`` (float32, N x 2) and ``component`` (int16: which Gaussian drew it); ``means.npz``
holds the component means and ``std`` for the metrics.
"""

from __future__ import annotations

from types import SimpleNamespace

from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field


def sample(means: np.ndarray, std: float, n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    component = rng.integers(0, len(means), size=n)
    x = means[component] + std * rng.standard_normal((n, 2))
    return {"x": x.astype(np.float32), "component": component.astype(np.int16)}


class RingSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    n_components: int = Field(8, ge=1)
    radius: float = Field(1.0, gt=0)
    std: float = Field(0.01, gt=0)
    n_train: int = Field(50000, ge=1)
    n_val: int = Field(5000, ge=1)


def ring_means(settings: RingSettings) -> np.ndarray:
    angles = 2 * np.pi * np.arange(settings.n_components) / settings.n_components
    return settings.radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def splits(means: np.ndarray, settings, seed: int) -> dict[str, dict[str, np.ndarray]]:
    """Train and validation samples of the mixture with these means, and the means themselves."""
    rng = np.random.default_rng(seed)
    return {
        "train": sample(means, settings.std, settings.n_train, rng),
        "val": sample(means, settings.std, settings.n_val, rng),
        "means": {"means": means.astype(np.float64), "std": np.array(settings.std)},
    }


def generate_ring(settings: RingSettings, seed: int, scratch: Path | None = None) -> dict[str, dict[str, np.ndarray]]:
    return splits(ring_means(settings), settings, seed)


ring = SimpleNamespace(Settings=RingSettings, generate=generate_ring)


class GridSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    side: int = Field(5, ge=1, description="components per row and column")
    spacing: float = Field(2.0, gt=0)
    std: float = Field(0.05, gt=0)
    n_train: int = Field(50000, ge=1)
    n_val: int = Field(5000, ge=1)


def grid_means(settings: GridSettings) -> np.ndarray:
    coords = settings.spacing * (np.arange(settings.side) - (settings.side - 1) / 2)
    xs, ys = np.meshgrid(coords, coords, indexing="ij")
    return np.stack([xs.ravel(), ys.ravel()], axis=1)


def generate_grid(settings: GridSettings, seed: int, scratch: Path | None = None) -> dict[str, dict[str, np.ndarray]]:
    return splits(grid_means(settings), settings, seed)


grid = SimpleNamespace(Settings=GridSettings, generate=generate_grid)
