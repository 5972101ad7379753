from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

SHOWN_CHARACTERS = 70  # a test input longer than this is cut when printed


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    fmt: str = "{:.3f}"


@dataclass(frozen=True)
class Prepared:
    train: Any
    val: Any
    model_args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Evaluation:
    metrics: dict[str, float]  # flat, for metrics/<experiment>.json and MLflow
    series: dict[str, dict[int, float]] = field(default_factory=dict)  # logged to MLflow with step = key
    # Text the model produced (file name -> contents: decoded examples, sampled text), written to
    # samples/<experiment>/ beside, not inside, plots/<experiment>/, which DVC reads as plots.
    texts: dict[str, str] = field(default_factory=dict)


class Task:
    name: str
    description: str
    sources: frozenset[str]
    head: str  # which head of a model it trains: classifier, language-model, sampler-2d
    primary: str  # metric that ranks the leaderboard
    higher_is_better: bool = True
    # The leaderboard's order: (metric, higher is better) compared in turn, each breaking the
    # ties of the one before, so that models saturating one metric are still told apart;
    # empty: ``primary`` alone. The champion is registered by it too.
    ranking: tuple[tuple[str, bool], ...] = ()
    columns: tuple[Column, ...] = ()
    gallery: tuple[str, ...] = ()  # pictures of plots/<experiment>/ that reports/index.html shows side by side
    # The logged per-epoch means (``curves/<experiment>.csv``) that ``zoo compare`` overlays
    # for all of a table's experiments in DVC's comparison plots (dvc.yaml's top-level ``plots``).
    compare_curves: tuple[str, ...] = ("val_loss",)
    # The validation metric whose plateau ends training (Lightning's EarlyStopping) and picks
    # the kept checkpoint; an experiment's `plateau.monitor` overrides it.
    monitor: str = "val_loss"
    monitor_mode: str = "min"  # "min" or "max"
    # The best value a maximised validation metric can take. A seed whose monitor reaches it has
    # reached its plateau and stops at that epoch (PlateauStopping's ceiling): no later epoch can
    # beat it, so the kept model, the first to reach it, is the one patience would keep.
    ceilings: dict[str, float] = {"val_accuracy": 1.0}
    # What ``zoo sample`` does with a model trained on this task (``pipeline.stages.sample``'s
    # kinds: text, answer, translate, caption, classify, points, images); None: it cannot.
    sample_kind: str | None = None
    # Classifiers: the names of the labels 0, 1, ... as ``zoo sample`` prints them (empty: the numbers).
    class_names: tuple[str, ...] = ()

    def encode_text(self, text: str, data_dir: Path, dataset_settings) -> list[int]:
        """``zoo sample --input`` as the dataset encodes its examples (a classifier's tokens);
        a text the task cannot read is a ``ConfigError``. ``dataset_settings``: the dataset's
        settings in ``params.yaml``."""
        raise NotImplementedError(f"task {self.name} reads no --input")

    def show_tokens(self, tokens: np.ndarray, data_dir: Path) -> str:
        """A test example's tokens as ``zoo sample`` prints them."""
        return " ".join(str(int(t)) for t in tokens)

    def training_callbacks(self, data_dir: Path, manifest: dict, common, seed: int, **inputs) -> list:
        """Lightning callbacks the train stage adds for this task: for instance one that logs a
        sample-based validation metric (modes covered, Fréchet distance) for ``monitor``.
        ``inputs`` are ``evaluation_inputs``' (a reference classifier)."""
        return []

    def gradient_flow_batch(self, data_dir: Path, manifest: dict, common):
        """A batch of equal-length sequences for ``pipeline.evaluation.diagnostics.gradient_flow``, or None."""
        return None

    def compare_plots(self, experiments: dict[str, str], layout, out_dir: Path) -> list[Path]:
        """Plots that put this task's experiments (name -> dataset) side by side."""
        return []

    def evaluation_inputs(self, config, layout, dataset: str) -> dict[str, Any]:
        """Extra keyword arguments of ``evaluate`` found through the pipeline (a reference classifier)."""
        return {}

    def extra_rows(self, dataset: str, layout) -> list[tuple[str, str, dict]]:
        """Unranked leaderboard rows (name, description, metrics), e.g. real data as a sanity check."""
        return []

    def prepare(self, data_dir: Path, manifest: dict, common, seed: int) -> Prepared:
        """Loaders and the model's shape arguments; ``common`` is the experiment's ExperimentCommon."""
        raise NotImplementedError

    def evaluate(self, model, data_dir: Path, manifest: dict, plots_dir: Path, seed: int, title: str, common=None) -> Evaluation:
        raise NotImplementedError


def cut(text: str, limit: int = SHOWN_CHARACTERS) -> str:
    """``text``, cut to ``limit`` characters (the last an ellipsis) if longer."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def load_split(data_dir: Path, split: str) -> dict[str, np.ndarray]:
    with np.load(data_dir / f"{split}.npz") as npz:
        return {k: npz[k] for k in npz.files}
