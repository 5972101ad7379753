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

    def checkpoint(self, experiment: str) -> Path:
        return self.model_dir(experiment) / "model.ckpt"

    def run_file(self, experiment: str) -> Path:
        return self.model_dir(experiment) / "run.json"

    def metrics(self, experiment: str) -> Path:
        return self.root / "metrics" / f"{experiment}.json"

    def plots(self, experiment: str) -> Path:
        return self.root / "plots" / experiment

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def log_file(self) -> Path:
        return self.root / "logs" / "zoo.log"

    @property
    def default_tracking_uri(self) -> str:
        # MLflow 3 refuses a bare ./mlruns file store: an absolute sqlite URI works everywhere.
        return f"sqlite:///{(self.root / 'mlflow.db').as_posix()}"

    @property
    def artifact_root(self) -> Path:
        return self.root / "mlartifacts"
