"""The project uses Lightning and MLflow through their public API only: no code reads or writes
their private attributes (a name starting with one underscore) or imports their private
modules, which change between releases without notice.

Two checks over every .py file of the project: the names and patterns removed when the
project went back to stock Lightning (issue 20) must not come back, and no attribute access
anywhere names a private attribute of the Lightning and MLflow objects the project works with
(collected from live instances, so a new private name of a later release is covered too)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = ("pipeline", "lightning_modules", "benchmarks", "tests", "docs")
THIS = Path(__file__).resolve()

# What the project once reached into, and the usual ways of reaching into a trainer or logger.
FORBIDDEN = [
    r"\btrainer\._[a-z]",
    r"\blogger\._[a-z]",
    r"\bfit_loop\._",
    r"\bepoch_loop\._",
    r"\bstrategy\._",
    r"\bexperiment\._",
    r"_current_fx_name",
    r"_log_batch_kwargs",
    r"\._prefix\b",
    r"_last_global_step_saved",
    r"_last_checkpoint_saved",
    r"_param_requires_grad_state",
    r"_use_tracking_uri",
    r"_tracking_service",
]
PACKAGES = ("pytorch_lightning", "lightning", "lightning_fabric", "lightning_utilities", "mlflow")


def project_files() -> list[Path]:
    files = [ROOT / name for name in ("conftest.py",) if (ROOT / name).is_file()]
    for folder in FOLDERS:
        files += sorted((ROOT / folder).rglob("*.py"))
    return [f for f in files if f.resolve() != THIS and ".venv" not in f.parts]


def is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


@pytest.fixture(scope="module")
def library_private_names(tmp_path_factory) -> set[str]:
    """Private attribute names of the Lightning and MLflow objects the project uses, read
    from instances (attributes set in ``__init__``) and their classes."""
    import pytorch_lightning as pl
    from mlflow.tracking import MlflowClient
    from pytorch_lightning.callbacks import Callback, EarlyStopping, ModelCheckpoint, TQDMProgressBar
    from pytorch_lightning.loggers import MLFlowLogger
    from pytorch_lightning.plugins import TorchCheckpointIO

    folder = tmp_path_factory.mktemp("public-api")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    objects = [
        pl.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False, default_root_dir=folder),
        pl.LightningModule(),
        Callback(),
        ModelCheckpoint(dirpath=folder),
        EarlyStopping(monitor="val_loss"),
        TQDMProgressBar(),
        MLFlowLogger(tracking_uri=uri),
        MlflowClient(tracking_uri=uri),
        TorchCheckpointIO(),
    ]
    names: set[str] = set()
    for obj in objects:
        names |= {n for n in [*vars(obj), *dir(type(obj))] if is_private(n)}
    trainer = objects[0]
    for part in (trainer.fit_loop, trainer.fit_loop.epoch_loop, trainer.strategy):
        names |= {n for n in [*vars(part), *dir(type(part))] if is_private(n)}
    return names


def test_no_forbidden_private_name_is_used():
    pattern = re.compile("|".join(FORBIDDEN))
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in project_files()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert not found, "private Lightning/MLflow names in use:\n" + "\n".join(found)


def test_no_attribute_access_names_a_private_attribute_of_lightning_or_mlflow(library_private_names):
    assert {"_current_fx_name", "_log_batch_kwargs", "_last_global_step_saved"} <= library_private_names  # the collection works
    found = []
    for path in project_files():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in library_private_names:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: .{node.attr}")
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in PACKAGES:
                private = [p for p in node.module.split(".") if is_private(p)] + [a.name for a in node.names if is_private(a.name)]
                if private:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}: from {node.module} import {', '.join(a.name for a in node.names)}")
    assert not found, "private Lightning/MLflow attributes or modules in use:\n" + "\n".join(found)
