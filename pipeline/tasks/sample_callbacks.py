"""Validation metrics measured on a GAN's samples, for the plateau that ends its training.

A GAN's validation losses do not say whether its samples improve (the two players' losses
trade against each other), so each validation epoch these callbacks draw a fixed batch of
latent vectors, pass it through the generator and log what the evaluation measures:

- ``MixtureSampleMetrics`` (2-D mixtures): ``val_modes_covered``, ``val_high_quality_pct``,
  ``val_reverse_kl`` (``pipeline.evaluation.metrics.mixture_metrics``) and ``val_mode_mass_pct``
  (``mode_mass_pct``), the task's monitor;
- ``ImageSampleMetrics`` (images): ``val_frechet_distance`` in the reference classifier's
  features against the real training images, and for conditional models
  ``val_class_accuracy`` (how often the classifier returns the requested class).

The noise comes from ``VALIDATION_NOISE_SEED + seed``, never from the evaluation's own
generator (seeded with ``seed``): the checkpoint is chosen on samples that the evaluation does
not see. Nothing is drawn during Lightning's sanity check.
"""

from __future__ import annotations

import numpy as np
import pytorch_lightning as pl
import torch

from pipeline.evaluation.metrics import frechet_distance, mixture_metrics

VALIDATION_NOISE_SEED = 1_000_003  # + the run's seed; the evaluation draws from Generator(seed)


def mode_mass_pct(samples: np.ndarray, means: np.ndarray, std: float) -> float:
    """100 × Σ_k min(h_k / N, 1/K): h_k = high-quality samples at component k (within 3σ of its
    mean, as ``mixture_metrics``), N samples, K components. The share of the samples that are
    high-quality *and* that a uniform mixture would put at their component. 100 only when every
    component gets its 1/K of high-quality samples; a newly covered mode raises it, and so does
    better quality, while a generator that collapses onto m modes scores at most 100·m/K
    however sharp its samples. It is the monitor of the 2-D GANs because neither published
    number is one alone: % high quality is maximised by a collapsed generator (2 of 8 ring modes
    at 98 % was seen), modes covered ignores quality (one stray sample covers a mode)."""
    samples, means = np.asarray(samples, np.float64), np.asarray(means, np.float64)
    k = len(means)
    if len(samples) == 0:
        return 0.0
    dist = np.linalg.norm(samples[:, None, :] - means[None, :, :], axis=2)
    nearest = dist.argmin(axis=1)
    high_quality = dist[np.arange(len(samples)), nearest] < 3 * std
    share = np.bincount(nearest[high_quality], minlength=k) / len(samples)
    return float(100.0 * np.minimum(share, 1.0 / k).sum())


class MixtureSampleMetrics(pl.Callback):
    """At every validation epoch's end: ``n_samples`` samples of a fixed noise set, measured
    against the mixture's ``means`` and ``std``."""

    def __init__(self, means: np.ndarray, std: float, seed: int, n_samples: int = 2500):
        self.means, self.std, self.n_samples = np.asarray(means, np.float64), float(std), n_samples
        self.noise_seed = VALIDATION_NOISE_SEED + seed

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking:
            return
        samples = pl_module.sample(self.n_samples, generator=torch.Generator().manual_seed(self.noise_seed)).cpu().numpy()
        metrics = {f"val_{k}": float(v) for k, v in mixture_metrics(samples, self.means, self.std).items()}
        metrics["val_mode_mass_pct"] = mode_mass_pct(samples, self.means, self.std)
        pl_module.log_dict(metrics, on_step=False, on_epoch=True, batch_size=1)


class ImageSampleMetrics(pl.Callback):
    """At every validation epoch's end: ``n_samples`` images of a fixed noise set (classes in
    turn for a conditional model) read by the reference ``classifier``; ``real_features`` are
    its features of the real training images. A few hundred samples keep it cheap: the
    Fréchet distance of so few is biased upwards, but by the same amount every epoch, which is
    all a plateau needs (the evaluation measures the test split's size)."""

    def __init__(self, classifier, real_features: np.ndarray, n_classes: int, seed: int, n_samples: int = 500):
        self.classifier, self.real_features, self.n_classes, self.n_samples = classifier, real_features, n_classes, n_samples
        self.noise_seed = VALIDATION_NOISE_SEED + seed

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking:
            return
        generator = torch.Generator().manual_seed(self.noise_seed)
        requested = None
        if pl_module.conditional:
            requested = np.arange(self.n_samples) % self.n_classes
            fake = pl_module.sample(self.n_samples, generator=generator, labels=torch.from_numpy(requested))
        else:
            fake = pl_module.sample(self.n_samples, generator=generator)
        features, predicted = self.classifier.read(fake.cpu())
        metrics = {"val_frechet_distance": frechet_distance(self.real_features, features)}
        if requested is not None:
            metrics["val_class_accuracy"] = float((predicted == requested).mean())
        pl_module.log_dict(metrics, on_step=False, on_epoch=True, batch_size=1)
