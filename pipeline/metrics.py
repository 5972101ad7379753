"""Evaluation metrics as pure functions of arrays (REFERENCE.md, "Metrics")."""

from __future__ import annotations

import numpy as np


def accuracy_by_length(predictions: np.ndarray, labels: np.ndarray, lengths: np.ndarray) -> dict[int, float]:
    """Accuracy of the predictions for each distinct input length, in increasing length."""
    correct = predictions == labels
    return {int(n): float(correct[lengths == n].mean()) for n in np.unique(lengths)}


def mixture_metrics(samples: np.ndarray, means: np.ndarray, std: float) -> dict[str, float]:
    """Mode coverage of samples from a mixture of isotropic Gaussians (PacGAN, VEEGAN).

    Each sample is assigned to its nearest mean; it is high-quality when that distance is
    under 3σ. Returns
    - ``modes_covered``: components with at least one high-quality sample;
    - ``high_quality_pct``: 100 × high-quality samples / all samples;
    - ``reverse_kl``: KL(q̂ ‖ uniform) of the high-quality samples' histogram over the
      components, in nats (0 when all are covered equally, log K when one is). With no
      high-quality sample q̂ is undefined; we report log K, the value of total collapse.
    """
    samples = np.asarray(samples, dtype=np.float64)
    means = np.asarray(means, dtype=np.float64)
    k = len(means)
    dist = np.linalg.norm(samples[:, None, :] - means[None, :, :], axis=2)  # (N, K)
    nearest = dist.argmin(axis=1)
    high_quality = dist[np.arange(len(samples)), nearest] < 3 * std
    counts = np.bincount(nearest[high_quality], minlength=k).astype(np.float64)
    if counts.sum() == 0:
        reverse_kl = float(np.log(k))
    else:
        q = counts / counts.sum()
        nz = q > 0
        reverse_kl = float(np.sum(q[nz] * np.log(q[nz] * k)))
    return {
        "modes_covered": int((counts > 0).sum()),
        "high_quality_pct": float(100.0 * high_quality.mean()) if len(samples) else 0.0,
        "reverse_kl": reverse_kl,
    }
