"""Shared fixtures: a project folder with the real params.yaml, shrunken to run in seconds."""

from __future__ import annotations

import contextlib
import copy
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


def shrink(params: dict) -> dict:
    """The repository's params.yaml, made small: tiny datasets, one short epoch, one seed (the
    first of an experiment's ``seeds``), no progress bar."""
    params = copy.deepcopy(params)
    params["trainer"].update(max_epochs=1, enable_progress_bar=False, log_every_n_steps=1)
    params["seed_workers"] = 1  # seeds in turn, in the test's process (tests/test_seed_workers.py forks)
    limits = {
        "n_train": 512, "n_val": 128, "n_test": 64, "n_test_long": 32, "n_test_per_length": 8,
        "n_train_chars": 20000, "n_val_chars": 4000, "n_test_chars": 4000, "max_chars": 40000,
    }
    for body in params["datasets"].values():
        for key, limit in limits.items():
            if key in body or key == "max_chars" and body.get("source") in ("pydoc-topics", "python-stdlib"):
                body[key] = min(body.get(key) or limit, limit)
    for body in params["experiments"].values():
        body.setdefault("trainer", {})["max_epochs"] = 1
        body["trainer"]["limit_train_batches"] = 4
        body["trainer"]["limit_val_batches"] = 2
        for key in ("min_epochs", "min_steps", "val_check_interval"):
            body["trainer"][key] = None
        body["sampling"] = {**body.get("sampling", {}), "length": 20}
        if body.get("seeds"):
            body["seeds"] = body["seeds"][:1]
    for shared in (params.get("defaults") or {}).values():
        if shared.get("seeds"):
            shared["seeds"] = shared["seeds"][:1]
    return params


@pytest.fixture(autouse=True)
def _runs_go_to_the_tests_own_stores():
    """`MLFLOW_TRACKING_URI` decides where runs go when params.yaml does not (tracking.resolve_uri),
    and MLflow itself sets it in `mlflow.set_tracking_uri`: keep it out of every test, so no
    test's `zoo` writes into another's store (or the user's server)."""
    saved = os.environ.pop("MLFLOW_TRACKING_URI", None)
    yield
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    if saved is not None:
        os.environ["MLFLOW_TRACKING_URI"] = saved


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
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


def write_params(folder: Path, params: dict) -> None:
    (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


@contextlib.contextmanager
def serve_folder(folder: Path):
    """Serve ``folder`` over HTTP on 127.0.0.1 (a free port) while the block runs; yields the
    base URL. Download code is tested against it instead of the real addresses."""
    import threading
    from functools import partial
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(folder)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


# ------------------------------------------------------------ one small pipeline run, shared

# The pipeline's mechanics on four experiments; test_experiments.py trains every one.
PIPELINE_EXPERIMENTS = ["parity-rnn", "parity-lstm", "ring-gan", "digits-cgan"]
PIPELINE_DATASETS = ["parity", "ring", "digits"]


def run(cmd: list[str], cwd: Path, env: dict) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{' '.join(cmd)} failed ({proc.returncode}):\n{output[-4000:]}"
    return output


def project_copy(dest: Path, change) -> dict:
    """Copy the project as git would check it out into ``dest``, let ``change(dest)`` shrink it,
    and commit it in a git repository of its own; returns the environment to run ``zoo`` in."""
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    for rel in files:
        if (REPO / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, dest / rel)
    change(dest)
    env = {k: v for k, v in os.environ.items() if k not in ("ZOO_ROOT", "MLFLOW_TRACKING_URI")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["GIT_AUTHOR_NAME"] = env["GIT_COMMITTER_NAME"] = "test"
    env["GIT_AUTHOR_EMAIL"] = env["GIT_COMMITTER_EMAIL"] = "test@example.invalid"
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "copy"]):
        run(cmd, dest, env)
    return env


@pytest.fixture(scope="session")
def pipeline_copy(tmp_path_factory):
    """A fresh copy of the project (what git would check out), small parameters, own git repo,
    after one ``zoo warm dvc repro`` (``make repro``'s command): (folder, environment, its output). Run once per
    session and shared: test_pipeline_e2e checks the pipeline on it (and then changes parameters
    to rerun parts of it), test_registry the model registry, test_ui the MLflow dashboard."""
    dest = tmp_path_factory.mktemp("e2e") / "zoo"

    def small(dest: Path) -> None:
        (dest / "dvc.lock").unlink(missing_ok=True)
        params = shrink(repo_params())
        params["experiments"] = {k: v for k, v in params["experiments"].items() if k in PIPELINE_EXPERIMENTS}
        params["datasets"] = {k: v for k, v in params["datasets"].items() if k in PIPELINE_DATASETS}
        params["references"]["digits"]["epochs"] = 2
        write_params(dest, params)

    env = project_copy(dest, small)
    first = run(["zoo", "warm", "dvc", "repro"], dest, env)  # as `make repro` runs it
    return dest, env, first
