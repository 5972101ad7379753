"""The one place the pipeline draws: every picture it writes goes through here.

- ``pyplot()``: matplotlib's pyplot on the Agg backend (files only, no display);
- ``save_figure(fig, path)``: writes a figure as PNG atomically, at the shared resolution
  (``DPI``), and closes it;
- ``write_png(image, path)``: an array (H, W, C) in [0, 1] written pixel for pixel (C = 1: grey);
- ``mosaic(images, rows)``: samples (N, C, S, S) in [−1, 1] laid out in a grid with 1-pixel
  white lines, (H, W, C) in [0, 1];
- ``save_image_grid``: such a mosaic drawn as a titled figure (a model's samples);
- ``save_picture``: a picture a model declares beyond the task's own (``GANBase.extra_pictures``).

matplotlib is imported on first use, not with this module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import numpy as np

DPI = 110  # every figure the pipeline writes


def pyplot():
    """``matplotlib.pyplot``, after choosing the Agg backend (the stages write files only)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path) -> None:
    """Write ``fig`` to ``path`` as PNG (atomically: a reader never sees half a file) and close it."""
    from pipeline.plumbing.atomic import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=DPI, format="png")
    pyplot().close(fig)


def write_png(image: np.ndarray, path: Path) -> None:
    """An image (H, W, C) in [0, 1], one pixel per element; C = 1 is written grey."""
    from matplotlib import image as mpimage

    from pipeline.plumbing.atomic import atomic_path

    with atomic_path(path) as tmp:
        if image.shape[2] == 1:
            mpimage.imsave(tmp, image[:, :, 0], cmap="gray", vmin=0.0, vmax=1.0, format="png")
        else:
            mpimage.imsave(tmp, image, format="png")


def mosaic(images: np.ndarray, rows: int) -> np.ndarray:
    """(N, C, S, S) in [−1, 1] -> one (rows·(S+1)+1, cols·(S+1)+1, C) image in [0, 1], white between samples."""
    n, c, s, _ = images.shape
    cols = int(np.ceil(n / rows))
    out = np.ones((rows * (s + 1) + 1, cols * (s + 1) + 1, c), dtype=np.float32)
    for i in range(n):
        r, k = divmod(i, cols)
        out[1 + r * (s + 1): 1 + r * (s + 1) + s, 1 + k * (s + 1): 1 + k * (s + 1) + s] = (images[i].transpose(1, 2, 0) + 1) / 2
    return np.clip(out, 0, 1)


def as_array(images: Any) -> np.ndarray:
    """A tensor (detached, on the host) or an array, as an array."""
    if hasattr(images, "detach"):
        return images.detach().cpu().numpy()
    return np.asarray(images)


def save_image_grid(images, rows: int, title: str, path: Path, row_labels: Optional[list[str]] = None) -> None:
    """Samples (N, C, S, S) in [−1, 1] (array or tensor) as a titled mosaic of ``rows`` rows."""
    plt = pyplot()
    images = as_array(images)
    grid = mosaic(images, rows)
    height = max(2.0, 0.45 * rows + 0.8)
    fig, ax = plt.subplots(figsize=(max(3.0, height * grid.shape[1] / grid.shape[0]), height))
    ax.imshow(grid.squeeze(2) if grid.shape[2] == 1 else grid, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    if row_labels:
        s = images.shape[-1] + 1
        ax.set_yticks([1 + s * i + s / 2 - 1 for i in range(rows)], row_labels, fontsize=7)
    else:
        ax.set_yticks([])
    ax.set_title(title, fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)


def save_picture(picture, plots_dir: Path, title: str) -> None:
    """A model's extra picture (``lightning_modules.gan_base.Picture``: images, rows, file,
    caption, row labels) drawn as an image grid in ``plots_dir``."""
    save_image_grid(picture.images, picture.rows, f"{title}: {picture.caption}", plots_dir / picture.file, picture.row_labels)
