"""Shared fixtures: a project folder with the real params.yaml, shrunken to run in seconds."""

from __future__ import annotations

import contextlib
import copy
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


def shrink(params: dict) -> dict:
    """The repository's params.yaml, made small: tiny datasets, one short epoch, no progress bar."""
    params = copy.deepcopy(params)
    params["trainer"].update(max_epochs=1, enable_progress_bar=False, log_every_n_steps=1)
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
        body["sampling"] = {**body.get("sampling", {}), "length": 20}
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
