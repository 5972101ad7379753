"""A stage's heavy imports (torch, Lightning, MLflow), done once with the cyclic garbage
collector paused and their objects frozen afterwards.

Every train and evaluate stage is a new process that imports about two million Python
objects before any work. With the collector running, each time the heap grows by a quarter
it walks all of them again (about a second of a five-second import here), and at exit the
interpreter walks them once more while tearing down (another second or two). Imported
modules live as long as the process, so nothing is lost by pausing the collector while
importing and then moving what was imported into the permanent generation
(``gc.freeze``): later collections, during training and at exit, skip those objects.
``python benchmarks/cli_startup.py`` measures a stage's imports both ways.
"""

from __future__ import annotations

import gc
import importlib
import sys
from urllib.parse import urlparse

HEAVY = ("torch", "pytorch_lightning", "mlflow")
DATABASE_STORE = "mlflow.store.tracking.sqlalchemy_store"  # SQLAlchemy and MLflow's tables: 1 s more
DATABASE_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")  # MLflow's database engines (``postgresql+psycopg2``...)


def stage_modules(tracking_uri: str) -> tuple[str, ...]:
    """What a train or evaluate stage imports: ``HEAVY``, and MLflow's database store when the
    runs go to a database (the sqlite default) rather than to a tracking server."""
    database = urlparse(tracking_uri).scheme.split("+", 1)[0] in DATABASE_SCHEMES
    return HEAVY + (DATABASE_STORE,) * database


def import_heavy(*modules: str) -> None:
    """Import ``modules`` (default: torch, Lightning and MLflow) with the collector paused,
    then freeze everything allocated so far. A second call, or one whose modules are all
    imported already (a test process, a stage calling another), does nothing."""
    modules = modules or HEAVY
    if all(name in sys.modules for name in modules):
        return
    enabled = gc.isenabled()
    gc.disable()
    try:
        for name in modules:
            importlib.import_module(name)
    finally:
        gc.freeze()
        if enabled:
            gc.enable()
