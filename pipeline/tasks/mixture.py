"""Samples of a 2-D Gaussian mixture: mode coverage, sample quality, reverse KL."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from pipeline.training.loaders import batches
from pipeline.evaluation.metrics import mixture_metrics
from pipeline.tasks.base import Column, Evaluation, Prepared, Task, load_split
from pipeline.tasks.figures import pyplot, save_figure

N_EVAL_SAMPLES = 2500  # REFERENCE.md: metrics on 2,500 samples


class MixtureTask(Task):
    name = "mixture-2d"
    description = "learn to sample a mixture of 2-D Gaussians (ring, grid); mode collapse measured exactly"
    sources = frozenset({"ring", "grid"})
    head = "sampler-2d"
    sample_kind = "points"
    primary = "modes_covered"
    ranking = (("modes_covered", True), ("high_quality_pct", True), ("reverse_kl", False))
    columns = (
        Column("modes_covered", "modes covered", "{:.0f}"),
        Column("high_quality_pct", "% high quality", "{:.1f}"),
        Column("reverse_kl", "reverse KL", "{:.3f}"),
    )
    compare_curves = ("train_d_loss", "train_g_loss", "val_modes_covered", "val_mode_mass_pct")
    gallery = ("samples.png",)
    # the plateau: sample quality and coverage in one number (sample_callbacks.mode_mass_pct says why)
    monitor = "val_mode_mass_pct"
    monitor_mode = "max"

    def prepare(self, data_dir, manifest, common, seed):
        train, val = load_split(data_dir, "train"), load_split(data_dir, "val")
        return Prepared(
            train=batches([train["x"]], common.batch_size, shuffle=True, seed=seed),
            val=batches([val["x"]], common.batch_size, shuffle=False),
            model_args={"data_dim": 2},
        )

    def training_callbacks(self, data_dir, manifest, common, seed, **inputs):
        """Each validation: 2,500 samples of a fixed noise set (not the evaluation's) measured
        as the evaluation measures them, plus ``val_mode_mass_pct``."""
        from pipeline.tasks.sample_callbacks import MixtureSampleMetrics

        mixture = load_split(data_dir, "means")
        return [MixtureSampleMetrics(mixture["means"], float(mixture["std"]), seed, N_EVAL_SAMPLES)]

    def evaluate(self, model, data_dir, manifest, plots_dir, seed, title, common=None):
        mixture = load_split(data_dir, "means")
        model.eval()
        samples = model.sample(N_EVAL_SAMPLES, generator=torch.Generator().manual_seed(seed)).cpu().numpy()
        metrics = mixture_metrics(samples, mixture["means"], float(mixture["std"]))
        plot_samples(samples, mixture["means"], float(mixture["std"]), metrics, title, plots_dir / "samples.png")
        if getattr(model, "loss_history", None):
            from pipeline.tasks.images import plot_losses

            plot_losses(model.loss_history, f"{title}: losses per generator step", plots_dir / "losses.png")
        return Evaluation(metrics)


def plot_samples(samples: np.ndarray, means: np.ndarray, std: float, metrics: dict, title: str, path: Path) -> None:
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(5, 5))
    ax.scatter(samples[:, 0], samples[:, 1], s=3, alpha=0.35, color="tab:blue", label=f"{len(samples)} samples")
    ax.scatter(means[:, 0], means[:, 1], s=60, marker="x", color="tab:red", label="true means")
    for m in means:
        ax.add_patch(plt.Circle(m, 3 * std, fill=False, color="tab:red", linewidth=0.8))
    span = np.abs(means).max() * 1.5 + 6 * std
    ax.set(xlim=(-span, span), ylim=(-span, span), aspect="equal")
    ax.set_title(
        f"{title}\n{metrics['modes_covered']}/{len(means)} modes, "
        f"{metrics['high_quality_pct']:.1f}% high quality, reverse KL {metrics['reverse_kl']:.3f}",
        fontsize=9,
    )
    ax.legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)
