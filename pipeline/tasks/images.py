"""Image GANs measured without downloaded weights (REFERENCE.md, "Metrics").

A reference classifier trained by the pipeline on the real data (``zoo reference DATASET``,
``pipeline.evaluation.reference_classifier``) reads N generated images, N = the size of the held-out test split:

- ``frechet_distance``: between Gaussians fitted to its penultimate-layer features of the
  real training images and of the N samples;
- ``classes_covered`` and ``class_kl``: the samples' predicted-class histogram and KL to uniform;
- ``class_accuracy`` (conditional models only): how often it returns the requested class;
- ``precision`` and ``recall`` (k = 3) in the same feature space against the training images.
The same numbers for the N real test images are the leaderboard's sanity row (``extra_rows``).

Pictures: the samples of the fixed noise batch (one row per class for conditional models), a
latent interpolation strip, the pictures the model declares (``GANBase.extra_pictures``: CoGAN's
pairs from shared noise, LAPGAN's pyramid levels), and the two players' losses per generator step.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from pipeline.datasets.images import IMAGE_SOURCES
from pipeline.training.loaders import batches
from pipeline.evaluation.metrics import class_histogram_metrics, frechet_distance, precision_recall
from pipeline.tasks.base import Column, Evaluation, Prepared, Task, load_split
from pipeline.tasks.figures import pyplot, save_figure, save_image_grid, save_picture

INTERPOLATION_STEPS = 10
N_VALIDATION_SAMPLES = 500  # per validation epoch, for the plateau: cheap, and the same every epoch


def to_network_range(x: np.ndarray) -> np.ndarray:
    """uint8 0..255 -> [−1, 1]; pad the side to 4·2^k (MNIST's 28 -> 32) with the background −1."""
    x = x.astype(np.float32) / 127.5 - 1.0 if x.dtype == np.uint8 else x.astype(np.float32)
    side = x.shape[-1]
    target = 8
    while target < side:
        target *= 2
    if target != side:
        before = (target - side) // 2
        pad = ((0, 0), (0, 0), (before, target - side - before), (before, target - side - before))
        x = np.pad(x, pad, constant_values=-1.0)
    return x


def load_images(data_dir: Path, split: str) -> dict[str, np.ndarray]:
    """``x`` (float32 in [−1, 1], side 4·2^k), ``label`` and, where the dataset has one, ``x_other``."""
    arrays = load_split(data_dir, split)
    out = {"x": to_network_range(arrays["x"]), "label": arrays["label"].astype(np.int64)}
    if "x_other" in arrays:
        out["x_other"] = to_network_range(arrays["x_other"])
    return out


def n_classes_of(data_dir: Path) -> int:
    return len(load_split(data_dir, "classes")["names"])


def image_metrics(classifier, real_features: np.ndarray, candidates: torch.Tensor, n_classes: int, requested: np.ndarray | None = None) -> dict[str, float]:
    """The reference-classifier metrics of ``candidates`` (generated or held-out real images)."""
    features, predicted = classifier.read(candidates)
    metrics = {"frechet_distance": frechet_distance(real_features, features)}
    metrics.update(class_histogram_metrics(predicted, n_classes))
    # None (not measured) for an unconditional model: the leaderboard shows "—"
    metrics["class_accuracy"] = float((predicted == requested).mean()) if requested is not None else None
    metrics.update(precision_recall(real_features, features, k=3))
    return metrics


class ImagesTask(Task):
    name = "images"
    description = "generate images; measured by the pipeline's reference classifier (Fréchet distance in its features, classes, precision/recall)"
    sources = IMAGE_SOURCES
    head = "sampler-image"
    sample_kind = "images"
    primary = "frechet_distance"
    higher_is_better = False
    ranking = (("frechet_distance", False), ("class_kl", False))
    columns = (
        Column("frechet_distance", "Fréchet distance", "{:.2f}"),
        Column("classes_covered", "classes covered", "{:.0f}"),
        Column("class_kl", "KL to uniform", "{:.3f}"),
        Column("class_accuracy", "requested class", "{:.3f}"),
        Column("precision", "precision", "{:.3f}"),
        Column("recall", "recall", "{:.3f}"),
    )
    compare_curves = ("train_d_loss", "train_g_loss", "val_frechet_distance")
    gallery = ("samples.png", "samples_per_class.png", "pairs.png", "pyramid.png")
    monitor = "val_frechet_distance"
    monitor_mode = "min"

    def prepare(self, data_dir, manifest, common, seed):
        train, val = load_images(data_dir, "train"), load_images(data_dir, "val")
        keys = ["x", "label", "x_other"] if "x_other" in train else ["x", "label"]
        return Prepared(
            train=batches([train[k] for k in keys], common.batch_size, shuffle=True, seed=seed),
            val=batches([val[k] for k in keys], common.batch_size, shuffle=False),
            model_args={"image_shape": list(train["x"].shape[1:]), "n_classes": n_classes_of(data_dir)},
        )

    def training_callbacks(self, data_dir, manifest, common, seed, reference_dir: Path | None = None, **inputs):
        """Each validation: the Fréchet distance (and, conditional, the requested-class
        accuracy) of ``N_VALIDATION_SAMPLES`` samples of a fixed noise set, in the reference
        classifier's features against the real training images."""
        from pipeline.evaluation.reference_classifier import load_reference
        from pipeline.tasks.sample_callbacks import ImageSampleMetrics

        classifier = load_reference(reference_dir)
        real_features, _ = classifier.read(torch.from_numpy(load_images(data_dir, "train")["x"]))
        return [ImageSampleMetrics(classifier, real_features, n_classes_of(data_dir), seed, N_VALIDATION_SAMPLES)]

    def evaluation_inputs(self, config, layout, dataset: str) -> dict:
        return {"reference_dir": layout.reference_dir(dataset)}

    def evaluate(self, model, data_dir, manifest, plots_dir, seed, title, common=None, reference_dir: Path | None = None):
        from pipeline.evaluation.reference_classifier import load_reference

        classifier = load_reference(reference_dir)
        n_classes = n_classes_of(data_dir)
        train, test = load_images(data_dir, "train"), load_images(data_dir, "test")
        real_features, _ = classifier.read(torch.from_numpy(train["x"]))
        n = len(test["x"])
        model.eval()
        generator = torch.Generator().manual_seed(seed)
        requested = None
        if model.conditional:
            requested = np.arange(n) % n_classes
            fake = model.sample(n, generator=generator, labels=torch.from_numpy(requested))
        else:
            fake = model.sample(n, generator=generator)
        metrics = image_metrics(classifier, real_features, fake.cpu(), n_classes, requested)
        names = [str(s) for s in load_split(data_dir, "classes")["names"]]
        draw_pictures(model, plots_dir, title, names, metrics)
        return Evaluation(metrics)

    def extra_rows(self, dataset: str, layout) -> list[tuple[str, str, dict]]:
        """The sanity row: the held-out real test images, measured the same way."""
        path = layout.reference_metrics(dataset)
        try:
            metrics = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return []
        if not metrics:
            return []
        label = f"reference classifier, test accuracy {metrics.get('accuracy', float('nan')):.3f}"
        return [("real held-out images", label, metrics)]


# ------------------------------------------------------------------------------- pictures


def plot_losses(history: list[tuple[int, float, float]], title: str, path: Path) -> None:
    plt = pyplot()
    steps, d, g = (np.array(col) for col in zip(*history))
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.plot(steps, d, lw=0.6, label="discriminator / critic")
    ax.plot(steps, g, lw=0.6, label="generator")
    ax.set(xlabel="generator step", ylabel="loss", title=title)
    ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path)


@torch.no_grad()
def draw_pictures(model, plots_dir: Path, title: str, class_names: list[str], metrics: dict) -> None:
    z = model.fixed_noise
    summary = f"{title}: Fréchet distance {metrics['frechet_distance']:.2f}, {metrics['classes_covered']} classes"
    if model.conditional:
        cols = 8
        labels = torch.arange(model.n_classes).repeat_interleave(cols)
        grid = model.generate(z[:cols].repeat(model.n_classes, 1), labels.to(z.device))
        save_image_grid(grid, model.n_classes, f"{summary}, requested class {metrics['class_accuracy']:.2f}\nrow = requested class, column = fixed noise", plots_dir / "samples_per_class.png", class_names)
    else:
        save_image_grid(model.generate(z), 8, f"{summary}\nfixed noise batch", plots_dir / "samples.png")
    # interpolation: z_a -> z_b in straight steps (for conditional models, one strip per class shown)
    t = torch.linspace(0, 1, INTERPOLATION_STEPS, device=z.device)[:, None]
    path = (1 - t) * z[0] + t * z[1]
    if model.conditional:
        rows = min(model.n_classes, 4)
        labels = torch.arange(rows).repeat_interleave(INTERPOLATION_STEPS)
        strip = model.generate(path.repeat(rows, 1), labels.to(z.device))
        save_image_grid(strip, rows, f"{title}: interpolation between two fixed noise vectors, per class", plots_dir / "interpolation.png", class_names[:rows])
    else:
        save_image_grid(model.generate(path), 1, f"{title}: interpolation between two fixed noise vectors", plots_dir / "interpolation.png")
    for picture in model.extra_pictures(z):  # CoGAN's pairs, LAPGAN's pyramid, ...
        save_picture(picture, plots_dir, title)
    if model.loss_history:
        plot_losses(model.loss_history, f"{title}: losses per generator step", plots_dir / "losses.png")
