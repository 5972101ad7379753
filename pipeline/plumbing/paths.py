"""Where things live. Every path is relative to the project root, found from the current
directory (the folder holding ``params.yaml``), or set with ``ZOO_ROOT``."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def find_root(start: Path | None = None) -> Path:
    env = os.environ.get("ZOO_ROOT")
    if env:
        return Path(env).resolve()
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "params.yaml").is_file():
            return folder
    return here


@dataclass(frozen=True)
class Layout:
    root: Path

    @classmethod
    def here(cls) -> "Layout":
        return cls(find_root())

    @property
    def params(self) -> Path:
        return self.root / "params.yaml"

    def dataset(self, name: str) -> Path:
        return self.root / "data" / "raw" / name

    def model_dir(self, experiment: str) -> Path:
        return self.root / "models" / experiment

    def seed_dir(self, experiment: str, seed: int) -> Path:
        """One seed's trained model (``model.ckpt``) and its training curves."""
        return self.model_dir(experiment) / f"seed-{seed}"

    def trained_seeds(self, experiment: str) -> list[int]:
        """The seeds trained, in the order ``run.json`` lists them (the experiment's order),
        else those with a folder, in increasing order."""
        import json

        try:
            return [int(s) for s in json.loads(self.run_file(experiment).read_text(encoding="utf-8"))["seeds"]]
        except (OSError, ValueError, KeyError, TypeError):
            pass
        found = [p.name[len("seed-") :] for p in self.model_dir(experiment).glob("seed-*")]
        return sorted(int(s) for s in found if s.isdigit())

    def checkpoint(self, experiment: str, seed: int | None = None) -> Path:
        """A seed's model; without a seed, the first seed's (what ``zoo sample`` and the
        registry use)."""
        if seed is None:
            seeds = self.trained_seeds(experiment)
            if not seeds:
                return self.model_dir(experiment) / "model.ckpt"  # not trained: does not exist
            seed = seeds[0]
        return self.seed_dir(experiment, seed) / "model.ckpt"

    def run_file(self, experiment: str) -> Path:
        return self.model_dir(experiment) / "run.json"

    def resume_dir(self, experiment: str) -> Path:
        """Training state of an unfinished run (last checkpoint, MLflow run id); outside
        ``models/`` because DVC clears a stage's outputs before running it again."""
        return self.root / "checkpoints" / experiment

    def seed_resume_dir(self, experiment: str, seed: int) -> Path:
        """One seed's unfinished training state, or its finished outputs (``done/``) while
        the experiment's other seeds train."""
        return self.resume_dir(experiment) / f"seed-{seed}"

    def reference_dir(self, dataset: str) -> Path:
        """The reference classifier of an image dataset (``zoo reference``)."""
        return self.root / "models" / f"reference-{dataset}"

    def reference_metrics(self, dataset: str) -> Path:
        return self.root / "metrics" / f"reference-{dataset}.json"

    def metrics(self, experiment: str) -> Path:
        return self.root / "metrics" / f"{experiment}.json"

    def plots(self, experiment: str) -> Path:
        return self.root / "plots" / experiment

    def samples(self, experiment: str) -> Path:
        """The evaluation's text outputs (decoded examples, sampled text): not plots, so not in ``plots/``."""
        return self.root / "samples" / experiment

    def curves(self, experiment: str) -> Path:
        """The training curves the train stage writes (a DVC plot)."""
        return self.root / "curves" / f"{experiment}.csv"

    @property
    def comparison(self) -> Path:
        """The data of DVC's comparison plots, written by ``zoo compare``."""
        return self.root / "comparison"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def log_file(self) -> Path:
        return self.root / "logs" / "zoo.log"

    @property
    def tracking_root(self) -> Path:
        """Where the default MLflow store lives: the project folder; for an experiment that
        ``dvc queue`` runs in a temporary copy (``<project>/.dvc/tmp/exps/...``), the
        project it was queued from, so its runs land beside the others and outlive the copy."""
        parts = self.root.parts
        for i in range(len(parts) - 2):
            if parts[i : i + 3] == (".dvc", "tmp", "exps"):
                return Path(*parts[:i])
        return self.root

    @property
    def default_tracking_uri(self) -> str:
        # MLflow 3 refuses a bare ./mlruns file store: an absolute sqlite URI works everywhere.
        return f"sqlite:///{(self.tracking_root / 'mlflow.db').as_posix()}"

    @property
    def artifact_root(self) -> Path:
        return self.tracking_root / "mlartifacts"
