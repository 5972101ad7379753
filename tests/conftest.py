"""Shared fixtures: a project folder with the real params.yaml, shrunken to run in seconds."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


def shrink(params: dict) -> dict:
    """The repository's params.yaml, made small: tiny datasets, one short epoch, no progress bar."""
    params = copy.deepcopy(params)
    params["trainer"].update(max_epochs=1, enable_progress_bar=False, log_every_n_steps=1)
    for body in params["datasets"].values():
        for key in list(body):
            if key.startswith("n_train"):
                body[key] = min(body[key], 512)
            elif key.startswith("n_val"):
                body[key] = min(body[key], 128)
            elif key == "n_test_per_length":
                body[key] = min(body[key], 8)
    for body in params["experiments"].values():
        body.setdefault("trainer", {})["max_epochs"] = 1
        body["trainer"]["limit_train_batches"] = 4
    return params


def repo_params() -> dict:
    return yaml.safe_load((REPO / "params.yaml").read_text())


@pytest.fixture
def small_params() -> dict:
    return shrink(repo_params())


@pytest.fixture
def project(tmp_path, monkeypatch, small_params):
    """A fresh project folder (params.yaml only) as the current directory."""
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(small_params, sort_keys=False))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ZOO_ROOT", raising=False)
    return tmp_path


def write_params(folder: Path, params: dict) -> None:
    (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
