"""Parity classification: accuracy overall, per test length and beyond the training lengths."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from pipeline.plumbing.atomic import write_text
from pipeline.training.loaders import batches
from pipeline.evaluation.metrics import accuracy_by_length
from pipeline.tasks.base import Column, Evaluation, Prepared, Task, load_split
from pipeline.tasks.figures import pyplot, save_figure


class ParityTask(Task):
    name = "parity"
    description = "bit string -> is the number of ones odd; trained on lengths 1..L, tested up to several times L"
    sources = frozenset({"parity"})
    head = "classifier"
    sample_kind = "classify"
    class_names = ("even", "odd")
    primary = "accuracy_longer"
    ranking = (("accuracy_longer", True), ("accuracy_max_length", True), ("accuracy_train_lengths", True))
    columns = (
        Column("accuracy_train_lengths", "acc. (train lengths)"),
        Column("accuracy_longer", "acc. (longer)"),
        Column("accuracy_max_length", "acc. (longest)"),
        Column("accuracy", "acc. (all)"),
    )
    compare_curves = ("val_accuracy", "val_loss")
    gallery = ("gradient_flow.png",)  # claim 2: the gradient's decay through time

    def prepare(self, data_dir, manifest, common, seed):
        train, val = load_split(data_dir, "train"), load_split(data_dir, "val")
        keys = ["tokens", "lengths", "labels"]
        return Prepared(
            train=batches([train[k] for k in keys], common.batch_size, shuffle=True, seed=seed),
            val=batches([val[k] for k in keys], common.batch_size, shuffle=False),
            model_args={"vocab_size": 2, "n_classes": 2},
        )

    def gradient_flow_batch(self, data_dir, manifest, common):
        test = load_split(data_dir, "test")
        longest = test["lengths"] == test["lengths"].max()
        pick = np.flatnonzero(longest)[:64]
        return (
            torch.from_numpy(test["tokens"][pick].astype(np.int64)),
            torch.from_numpy(test["lengths"][pick].astype(np.int64)),
            torch.from_numpy(test["labels"][pick].astype(np.int64)),
        )

    def compare_plots(self, experiments, layout, out_dir):
        curves, train_max = {}, 0
        for name, dataset in experiments.items():
            csv, manifest = layout.plots(name) / "accuracy_by_length.csv", layout.dataset(dataset) / "manifest.json"
            if csv.is_file() and manifest.is_file():
                curves[name] = read_curve(csv)
                train_max = max(train_max, json.loads(manifest.read_text())["settings"]["train_max_length"])
        if not curves:
            return []
        path = out_dir / f"accuracy_by_length_{next(iter(experiments.values()))}.png"
        plot_accuracy_by_length(curves, train_max, path)
        return [path]

    def evaluate(self, model, data_dir, manifest, plots_dir, seed, title, common=None):
        test = load_split(data_dir, "test")
        preds = []
        model.eval()
        with torch.no_grad():
            for tokens, lengths, _ in batches([test["tokens"], test["lengths"], test["labels"]], 1024, shuffle=False):
                tokens, lengths = tokens.to(model.device), lengths.to(model.device)
                preds.append(model.predict(tokens[:, : int(lengths.max())], lengths).cpu().numpy())
        predictions = np.concatenate(preds)
        labels, lengths = test["labels"], test["lengths"]
        train_max = manifest["settings"]["train_max_length"]
        correct = predictions == labels
        by_length = accuracy_by_length(predictions, labels, lengths)
        metrics = {
            "accuracy": float(correct.mean()),
            "accuracy_train_lengths": float(correct[lengths <= train_max].mean()),
            "accuracy_longer": float(correct[lengths > train_max].mean()) if (lengths > train_max).any() else float("nan"),
            "accuracy_max_length": by_length[int(lengths.max())],
        }
        write_text(plots_dir / "accuracy_by_length.csv", "length,accuracy\n" + "".join(f"{n},{a:.4f}\n" for n, a in by_length.items()))
        plot_accuracy_by_length({title: by_length}, train_max, plots_dir / "accuracy_by_length.png")
        return Evaluation(metrics, {"accuracy_by_length": by_length})


    def encode_text(self, text, data_dir, dataset_settings):
        """A string of 0s and 1s (spaces ignored)."""
        from pipeline.plumbing.errors import ConfigError

        bits = "".join(text.split())
        if set(bits) - {"0", "1"}:
            raise ConfigError("", f"--input: parity reads a string of 0s and 1s, e.g. 0110101 (got {text!r})")
        return [int(b) for b in bits]

    def show_tokens(self, tokens, data_dir):
        return "".join(str(int(t)) for t in tokens)


def plot_accuracy_by_length(curves: dict[str, dict[int, float]], train_max: int, path: Path) -> None:
    plt = pyplot()

    fig, ax = plt.subplots(figsize=(7, 4))
    for i, (name, curve) in enumerate(curves.items()):
        # Several models often score the same: vary the line so none hides another.
        ax.plot(list(curve), list(curve.values()), linestyle=["-", "--", ":", "-."][i % 4], marker=".", markersize=4, label=name)
    ax.axvspan(0.5, train_max + 0.5, color="0.92", zorder=0, label=f"training lengths (≤ {train_max})")
    ax.axhline(0.5, color="0.5", linestyle=":", linewidth=1, label="chance")
    ax.set(xlabel="string length", ylabel="test accuracy", ylim=(0.0, 1.02), title="Parity: accuracy by length")
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)


def read_curve(path: Path) -> dict[int, float]:
    lines = path.read_text(encoding="utf-8").splitlines()[1:]
    return {int(n): float(a) for n, a in (line.split(",") for line in lines if line)}
