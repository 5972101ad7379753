"""The reference classifier of an image dataset: the ruler of the image GANs' metrics.

A small CNN trained on the real training images (no downloaded weights, REFERENCE.md):
conv 3×3 (32) → ReLU → max-pool 2 → conv 3×3 (64) → ReLU → max-pool 2 → linear (``features``)
→ ReLU = the feature space of the Fréchet distance and of precision/recall → linear → class
logits. Trained with Adam and cross-entropy; the epoch with the best validation accuracy is
kept. It lives in the pipeline, not in ``lightning_modules``: it measures the models and is
not one of them, and a plain loop trains it in seconds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from pipeline.plumbing.errors import ModelError

FILE = "classifier.pt"


class ReferenceClassifier(nn.Module):
    def __init__(self, image_shape: tuple[int, int, int], n_classes: int, features: int = 128):
        super().__init__()
        c, side, _ = image_shape
        self.image_shape, self.n_classes, self.n_features = tuple(image_shape), n_classes, features
        self.body = nn.Sequential(
            nn.Conv2d(c, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(64 * (side // 4) ** 2, features), nn.ReLU(),
        )
        self.head = nn.Linear(features, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))

    @torch.no_grad()
    def read(self, x: torch.Tensor, batch_size: int = 512) -> tuple[np.ndarray, np.ndarray]:
        """(penultimate features (N, features), predicted classes (N,)) of images x in [−1, 1]."""
        self.eval()
        feats, preds = [], []
        for i in range(0, len(x), batch_size):
            f = self.body(x[i:i + batch_size].float())
            feats.append(f)
            preds.append(self.head(f).argmax(1))
        return torch.cat(feats).numpy().astype(np.float64), torch.cat(preds).numpy()


def accuracy(model: ReferenceClassifier, x: np.ndarray, y: np.ndarray) -> float:
    return float((model.read(torch.from_numpy(x))[1] == y).mean())


def train_reference(train: dict, val: dict, n_classes: int, settings, seed: int) -> tuple[ReferenceClassifier, list[dict]]:
    """Fit on ``train`` (x, label); keep the weights of the best validation epoch."""
    torch.manual_seed(seed)
    model = ReferenceClassifier(train["x"].shape[1:], n_classes, settings.features)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
    x, y = torch.from_numpy(train["x"]), torch.from_numpy(train["label"])
    generator = torch.Generator().manual_seed(seed)
    history, best, best_state = [], -1.0, None
    for epoch in range(settings.epochs):
        model.train()
        total = 0.0
        for idx in torch.randperm(len(x), generator=generator).split(settings.batch_size):
            loss = F.cross_entropy(model(x[idx]), y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(idx)
        val_accuracy = accuracy(model, val["x"], val["label"])
        history.append({"epoch": epoch, "train_loss": total / len(x), "val_accuracy": val_accuracy})
        if val_accuracy > best:
            best, best_state = val_accuracy, {k: v.clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)
    return model, history


def save_reference(model: ReferenceClassifier, folder: Path) -> Path:
    path = Path(folder) / FILE
    torch.save({"state_dict": model.state_dict(), "image_shape": list(model.image_shape), "n_classes": model.n_classes, "features": model.n_features}, path)
    return path


def load_reference(folder: Path | None) -> ReferenceClassifier:
    path = Path(folder or ".") / FILE
    if not path.is_file():
        dataset = Path(folder or "?").name.removeprefix("reference-")
        raise ModelError(f"{path} does not exist: train the reference classifier first (`zoo reference {dataset}`)")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        model = ReferenceClassifier(tuple(saved["image_shape"]), saved["n_classes"], saved["features"])
        model.load_state_dict(saved["state_dict"])
    except Exception as exc:  # a corrupt or foreign file
        raise ModelError(f"cannot load the reference classifier {path}: {str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__}") from exc
    return model.eval()
