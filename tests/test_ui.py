"""The MLflow dashboard (``zoo ui``, what ``make ui`` opens) on the store of a small finished
pipeline run (``pipeline_copy``), its pages rendered by headless Chromium: the text of the
rendered page is checked, and a screenshot of each page is kept under the test's tmp_path.

Needs Chromium (Debian package ``chromium``); ``make test`` installs it where it is missing.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

# Open the pages in the "Model training" view (MLflow 3 starts in its GenAI view otherwise).
VIEW = "?workflowType=machine_learning"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


@pytest.fixture(scope="session")
def chromium() -> str:
    """The browser; fails (not skips) where there is none, saying how to install it. Session
    scope: set up before the pipeline run the dashboard shows, so that it fails first."""
    for name in CHROMIUM_NAMES:
        if found := shutil.which(name):
            return found
    pytest.fail(
        "Chromium is not installed: this test renders the MLflow dashboard in headless Chromium. "
        "Install it with `sudo apt-get install -y chromium` (Debian, Ubuntu: chromium-browser), "
        "or run `make test`, which installs it.",
        pytrace=False,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def dashboard(chromium, pipeline_copy, tmp_path_factory):
    """``zoo ui`` on the pipeline's store, on a free port; stopped (its whole process group) at the end."""
    dest, env, _ = pipeline_copy
    browser = chromium
    port = free_port()
    log = tmp_path_factory.mktemp("ui") / "server.log"
    # MLflow's job runner (GenAI judges) is not needed to browse runs and costs seconds at start.
    server_env = {**env, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pipeline", "ui", "--port", str(port)],
            cwd=dest, env=server_env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None, f"`zoo ui` exited with {proc.returncode}:\n{log.read_text()[-3000:]}"
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, f"`zoo ui` did not answer on {base}:\n{log.read_text()[-3000:]}"
            time.sleep(0.5)
        yield base, dest, browser
    finally:
        stop(proc)


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM to the server's process group (the MLflow server and its workers), then SIGKILL
    to whatever of the group is left."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)


class _Text(HTMLParser):
    def __init__(self):
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        self._skip += tag in ("script", "style", "noscript")

    def handle_endtag(self, tag):
        self._skip -= tag in ("script", "style", "noscript")

    def handle_data(self, data):
        text = " ".join(data.split())  # also a no-break space ("@\u00a0champion")
        if not self._skip and text:
            self.parts.append(text)


def render(browser: str, url: str, screenshot: Path) -> list[str]:
    """The text of the page as Chromium renders it (the DOM after its scripts ran), one entry
    per text node; and a screenshot of it."""
    common = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--virtual-time-budget=20000"]
    # one page load for both: the DOM on standard output, the picture in the file
    dom = subprocess.run([*common, "--dump-dom", f"--screenshot={screenshot}", "--window-size=1400,1000", url], capture_output=True, text=True, timeout=180)
    assert dom.returncode == 0 and dom.stdout, f"chromium --dump-dom --screenshot {url} failed:\n{dom.stderr[-2000:]}"
    parser = _Text()
    parser.feed(dom.stdout)
    screenshot.with_suffix(".txt").write_text("\n".join(parser.parts))  # what was checked, beside the picture
    return parser.parts


def assert_picture(path: Path) -> None:
    """A PNG of the window's size, far from one flat colour."""
    import numpy as np
    from PIL import Image

    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000, f"{path}: {len(data)} bytes"
    image = np.asarray(Image.open(path).convert("L"), dtype=np.float32)
    assert image.shape == (1000, 1400)
    assert image.std() > 5 and len(np.unique(image)) > 50, f"{path} is nearly blank"


def experiment_of(dest: Path, name: str) -> tuple[str, dict]:
    run = json.loads((dest / "models" / name / "run.json").read_text())
    return run["experiment_id"], run


def test_a_task_experiment_lists_its_runs_and_only_those(dashboard, tmp_path):
    from mlflow.tracking import MlflowClient

    base, dest, browser = dashboard
    experiment_id, _ = experiment_of(dest, "parity-lstm")
    client = MlflowClient(tracking_uri=f"sqlite:///{dest / 'mlflow.db'}")
    assert client.get_experiment(experiment_id).name == "rnngan-zoo/parity"

    text = render(browser, f"{base}/#/experiments/{experiment_id}/runs{VIEW}", tmp_path / "parity-runs.png")
    assert "rnngan-zoo/parity" in text
    assert any(t.startswith("parity-rnn seed ") for t in text) and any(t.startswith("parity-lstm seed ") for t in text), text  # a run per seed
    page = " | ".join(text)
    assert "ring-gan" not in page and "digits-cgan" not in page and "leaderboard" not in page  # other tasks, the report
    assert_picture(tmp_path / "parity-runs.png")

    text = render(browser, f"{base}/#/experiments{VIEW}", tmp_path / "experiments.png")
    for name in ("rnngan-zoo", "rnngan-zoo/parity", "rnngan-zoo/mixture-2d", "rnngan-zoo/images"):  # one per task
        assert name in text, name
    assert_picture(tmp_path / "experiments.png")


def test_a_run_page_shows_its_metrics_parameters_artifacts_and_registered_model(dashboard, tmp_path):
    """The run of parity's champion (test_pipeline_e2e may have changed which one it is)."""
    from mlflow.tracking import MlflowClient

    base, dest, browser = dashboard
    client = MlflowClient(tracking_uri=f"sqlite:///{dest / 'mlflow.db'}")
    champion = client.get_model_version_by_alias("rnngan-zoo.parity", "champion")
    name = champion.tags["zoo.experiment"]
    experiment_id, run = experiment_of(dest, name)
    run_id = run["seeds"][champion.tags["zoo.seed"]]["run_id"]  # the champion's best seed
    assert run_id == champion.run_id
    url = f"{base}/#/experiments/{experiment_id}/runs/{run_id}"

    text = render(browser, url + VIEW, tmp_path / "champion-run.png")
    assert name in text
    metrics = json.loads((dest / "metrics" / f"{name}.json").read_text())["seeds"][champion.tags["zoo.seed"]]
    for metric in (*(k for k, v in metrics.items() if v is not None), "val_loss", "train_loss"):  # evaluation and training metrics
        assert metric in text, metric
    for param in ("batch_size", "hidden_size", "trainer.max_epochs"):
        assert param in text, param
    page = " | ".join(text)
    assert "model.hidden_size" not in page  # a model setting once, under its own name
    assert "zoo.task | : parity" in page  # a tag
    assert "Logged models (1)" in page and f"Registered models | rnngan-zoo.parity | v{champion.version}" in page
    assert_picture(tmp_path / "champion-run.png")

    text = render(browser, f"{url}/artifacts{VIEW}", tmp_path / "champion-artifacts.png")
    assert {"model", "metrics", "plots"} <= set(text), text  # the folders of the run's artifacts
    assert_picture(tmp_path / "champion-artifacts.png")


def test_the_model_registry_shows_each_tables_champion(dashboard, tmp_path):
    from mlflow.tracking import MlflowClient

    base, dest, browser = dashboard
    client = MlflowClient(tracking_uri=f"sqlite:///{dest / 'mlflow.db'}")
    champion = client.get_model_version_by_alias("rnngan-zoo.parity", "champion")

    text = render(browser, f"{base}/#/models/rnngan-zoo.parity{VIEW}", tmp_path / "registry-parity.png")
    assert "rnngan-zoo.parity" in text
    assert f"Version {champion.version}" in text and "@ champion" in text, text
    page = " | ".join(text)
    assert "zoo.metric | : accuracy_longer" in page  # what it won on
    assert f"zoo.experiment | : {champion.tags['zoo.experiment']}" in page
    assert_picture(tmp_path / "registry-parity.png")

    text = render(browser, f"{base}/#/models{VIEW}", tmp_path / "registry.png")
    for name in ("rnngan-zoo.parity", "rnngan-zoo.mixture-2d.ring", "rnngan-zoo.images.digits"):
        assert name in text, name
    assert_picture(tmp_path / "registry.png")
