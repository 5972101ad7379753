"""MLflow: one run per experiment, found again through ``models/<experiment>/run.json``.

Only the process of global rank zero writes tracking data (``is_rank_zero``).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from pathlib import Path
from typing import Any, Optional
from urllib.parse import urlparse

from pipeline.plumbing.errors import TrackingError

KIND_EXPERIMENT = "experiment"
KIND_REPORT = "report"


def is_rank_zero() -> bool:
    """Whether this process has global rank zero: torchrun and SLURM set ``RANK`` /
    ``SLURM_PROCID``; the processes Lightning launches itself get ``NODE_RANK`` and ``LOCAL_RANK``."""
    for var in ("RANK", "SLURM_PROCID"):
        if var in os.environ:
            return int(os.environ[var]) == 0
    return int(os.environ.get("NODE_RANK", "0")) == 0 and int(os.environ.get("LOCAL_RANK", "0")) == 0


def resolve_uri(config, layout) -> str:
    """Where runs go: ``tracking.uri`` (params.yaml or ``--set``), else the variable every
    MLflow user sets, ``MLFLOW_TRACKING_URI``, else ``sqlite:///<project>/mlflow.db``. It is no
    parameter of any DVC stage: pointing the zoo at a team server retrains nothing."""
    return config.tracking.uri or os.environ.get("MLFLOW_TRACKING_URI") or layout.default_tracking_uri


def check_reachable(uri: str, timeout: float = 5.0) -> None:
    """Fail fast, naming the URI, when a tracking server does not answer."""
    parsed = urlparse(uri)
    if parsed.scheme in ("http", "https"):
        import urllib.error
        import urllib.request

        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        try:
            with socket.create_connection((parsed.hostname, port), timeout=timeout):
                pass
        except OSError as exc:
            raise TrackingError(f"MLflow tracking server {uri} is unreachable ({exc.strerror or exc}); start it or set tracking.uri") from None
        # Something listens; is it an MLflow server? (A proxy or another service answers too.)
        try:
            with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout) as response:
                healthy, detail = response.status == 200, f"HTTP {response.status}"
        except urllib.error.HTTPError as exc:
            healthy, detail = False, f"HTTP {exc.code}"
        except (OSError, ValueError) as exc:
            healthy, detail = False, str(getattr(exc, "reason", exc))
        if not healthy:
            raise TrackingError(f"MLflow tracking server {uri} does not answer ({detail}); start it or set tracking.uri")
    elif parsed.scheme == "sqlite":
        folder = Path(parsed.path).parent
        if not folder.is_dir():
            raise TrackingError(f"MLflow store {uri}: folder {folder} does not exist")


def client(uri: str):
    """An ``MlflowClient`` whose store is ready. A new sqlite store is created (and an old one
    migrated) by the first process that opens it; stages started at once (``dvc queue
    start -j 2``) would race to create the same tables, so they take turns under a file lock."""
    from mlflow.tracking import MlflowClient

    parsed = urlparse(uri)
    if parsed.scheme != "sqlite" or parsed.path in ("", "/:memory:"):
        return MlflowClient(tracking_uri=uri)
    with _file_lock(Path(parsed.path).with_name(Path(parsed.path).name + ".lock")):
        mlflow_client = MlflowClient(tracking_uri=uri)
        mlflow_client.search_experiments(max_results=1)  # creates or migrates the tables
    return mlflow_client


@contextlib.contextmanager
def _file_lock(path: Path):
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks; one process at a time is the user's job
        yield
        return
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def experiment_name(config, task: Optional[str] = None) -> str:
    """The MLflow experiment of a task's runs: ``<tracking.experiment>/<task>``, one per task, so
    that the dashboard lists (and compares) like with like. Without a task,
    ``tracking.experiment`` itself: the comparison report's runs and the reference classifiers'."""
    base = config.tracking.experiment
    return f"{base}/{task}" if task else base


def experiment_id(mlflow_client, uri: str, name: str, layout) -> str:
    found = mlflow_client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    # A local store keeps artifacts beside the project, wherever the command runs from.
    location = None if str(uri).startswith(("http://", "https://")) else layout.artifact_root.as_uri()
    try:
        return mlflow_client.create_experiment(name, artifact_location=location)
    except Exception:  # created meanwhile by a parallel stage
        found = mlflow_client.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


def git_commit(root: Path) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def experiment_tags(config, layout, name: str, family: str) -> dict[str, str]:
    exp = config.experiments[name]
    tags = {
        "zoo.kind": KIND_EXPERIMENT,
        "zoo.experiment": name,
        "zoo.family": family,
        "zoo.task": exp.task,
        "zoo.model": exp.model,
        "zoo.dataset": exp.dataset,
        "mlflow.runName": name,
    }
    commit = git_commit(layout.root)
    if commit:
        tags["mlflow.source.git.commit"] = commit
    return tags


def log_params(mlflow_client, run_id: str, params: dict[str, Any]) -> None:
    """Log flat parameters. A model setting (``model.<name>``) is logged as ``<name>``: the name
    Lightning's logger gives the model's hyper-parameters as well, so the dashboard shows each
    setting once instead of twice; the prefix stays only where another parameter has that name."""
    from mlflow.entities import Param

    named = {}
    for key, value in params.items():
        short = key[len("model.") :] if key.startswith("model.") else None
        named[short if short and (short not in params or str(params[short]) == str(value)) else key] = value
    items = [Param(k, str(v)) for k, v in sorted(named.items())]
    for i in range(0, len(items), 100):
        mlflow_client.log_batch(run_id, params=items[i : i + 100])


def log_metrics(mlflow_client, run_id: str, metrics: dict[str, float], series: dict[str, dict[int, float]] | None = None) -> None:
    import math
    import time

    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    items = [Metric(k, float(v), now, 0) for k, v in sorted(metrics.items()) if v is not None and math.isfinite(v)]
    for key, curve in (series or {}).items():
        items += [Metric(key, float(v), now, int(step)) for step, v in curve.items()]
    for i in range(0, len(items), 500):
        mlflow_client.log_batch(run_id, metrics=items[i : i + 500])


def run_exists(mlflow_client, run_id: str) -> bool:
    try:
        run = mlflow_client.get_run(run_id)
    except Exception:
        return False
    return run.info.lifecycle_stage == "active"


def ui_link(run_json: dict) -> str:
    # workflowType: MLflow 3's dashboard opens in its GenAI view otherwise (traces, not runs).
    return f"http://127.0.0.1:5000/#/experiments/{run_json['experiment_id']}/runs/{run_json['run_id']}?workflowType=machine_learning"


def log_dataset(mlflow_client, run_id: str, name: str, folder: Path, manifest: dict) -> None:
    """Record the run's training data as an MLflow dataset input (the runs table's Dataset
    column): its name, a digest of the manifest's SHA-256 of every file, the folder, and the
    split sizes as its profile."""
    import hashlib
    import json

    from mlflow.entities import Dataset, DatasetInput, InputTag

    hashes = {file: entry.get("sha256") for file, entry in sorted((manifest.get("files") or {}).items())}
    digest = hashlib.sha256(json.dumps(hashes, sort_keys=True).encode()).hexdigest()[:16]
    profile = json.dumps({"counts": manifest.get("counts", {}), "files": hashes}, sort_keys=True)
    dataset = Dataset(name=name, digest=digest, source_type="local", source=str(folder), profile=profile)
    inputs = [DatasetInput(dataset, tags=[InputTag("mlflow.data.context", "training")])]
    try:
        mlflow_client.log_inputs(run_id, datasets=inputs)
    except Exception:  # noqa: BLE001 - another seed's process registered the same dataset at the same moment
        # The store inserts a dataset it has not seen, so two runs logging one dataset at once can
        # race to insert it (a unique constraint); once it exists, logging it only links the run.
        time.sleep(0.5)
        mlflow_client.log_inputs(run_id, datasets=inputs)
