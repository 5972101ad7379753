"""Gradient flow through time: ‖∂C_T/∂h_t‖ against the distance T − t, for the trained
model and for the same model at initialisation (same settings and seed). The picture of
vanishing (and exploding) gradients behind the tutorial's case for the LSTM."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from pipeline.tasks.figures import pyplot, save_figure


def gradient_flow(model, batch, seed: int, plots_dir: Path, title: str) -> tuple[dict[str, float], dict[str, dict[int, float]]]:
    import pytorch_lightning as pl

    trained = model.hidden_gradient_norms(batch).cpu().numpy()[::-1]  # index = distance T - t
    pl.seed_everything(seed, verbose=False)
    fresh = type(model)(**model.hparams).to(model.device)
    initial = fresh.hidden_gradient_norms(batch).cpu().numpy()[::-1]
    plot_gradient_flow({"trained": trained, "at initialisation": initial}, title, plots_dir / "gradient_flow.png")

    def decay(norms: np.ndarray) -> float:
        # log10 of ‖∂C_T/∂h_1‖ / ‖∂C_T/∂h_T‖: about 0 = no vanishing; very negative = vanished.
        first, last = float(norms[-1]), float(norms[0])
        return math.log10(max(first, 1e-30) / max(last, 1e-30))

    metrics = {"grad_log10_decay": decay(trained), "grad_log10_decay_init": decay(initial)}
    series = {
        "grad_norm_by_distance": {d: float(v) for d, v in enumerate(trained)},
        "grad_norm_by_distance_init": {d: float(v) for d, v in enumerate(initial)},
    }
    return metrics, series


def plot_gradient_flow(curves: dict[str, np.ndarray], title: str, path: Path) -> None:
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(6, 4))
    for label, norms in curves.items():
        ax.semilogy(np.arange(len(norms)), np.maximum(norms, 1e-30), label=label)
    ax.set(xlabel="distance T − t (steps)", ylabel="‖∂C_T / ∂h_t‖ (mean over batch)", title=f"{title}: gradient flow through time")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    save_figure(fig, path)
