"""The zoo CLI through Typer's test runner, on a fresh project folder."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
from typer.testing import CliRunner

from conftest import repo_params
from pipeline.cli import app

runner = CliRunner()


def test_list_json_shows_every_experiment(project):
    result = runner.invoke(app, ["list", "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.output)}
    assert set(rows) == set(repo_params()["experiments"])
    assert rows["ring-gan"] == {
        "name": "ring-gan", "family": "gan", "task": "mixture-2d", "model": "gan",
        "dataset": "ring", "trained": False, "evaluated": False,
    }


def test_list_table(project):
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 0
    header, rule, *rows = result.output.strip().splitlines()
    assert header.split() == ["name", "family", "task", "model", "dataset", "trained", "evaluated"]
    assert [r.split()[0] for r in rows] == list(repo_params()["experiments"])


def test_fetch_writes_dataset_with_manifest(project):
    result = runner.invoke(app, ["fetch", "parity"])
    assert result.exit_code == 0, result.output
    folder = project / "data" / "raw" / "parity"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert set(manifest["files"]) == {"train.npz", "val.npz", "test.npz"}
    assert manifest["counts"]["train"] == 512
    from pipeline.stages.fetch import sha256

    for name, meta in manifest["files"].items():
        assert sha256(folder / name) == meta["sha256"]
    # no temporary leftovers beside the dataset
    assert sorted(p.name for p in folder.parent.iterdir()) == ["parity"]
    # fetching again with the same seed gives the same arrays
    before = np.load(folder / "train.npz")["tokens"].copy()
    assert runner.invoke(app, ["fetch", "parity"]).exit_code == 0
    assert np.array_equal(np.load(folder / "train.npz")["tokens"], before)


def test_interrupted_fetch_leaves_nothing(project, monkeypatch):
    from pipeline.datasets import parity

    def broken(settings, seed, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(parity, "generate", broken)
    result = runner.invoke(app, ["fetch", "parity"])
    assert result.exit_code == 130
    raw = project / "data" / "raw"
    assert not raw.exists() or list(raw.iterdir()) == []


def test_train_before_fetch_says_what_to_run(project):
    result = runner.invoke(app, ["train", "parity-lstm"])
    assert result.exit_code == 3
    (line,) = result.output.strip().splitlines()
    assert "dataset 'parity' is not fetched" in line and "zoo fetch parity" in line
    assert not (project / "models").exists() and not (project / "mlflow.db").exists()


def test_tampered_dataset_is_refused(project):
    assert runner.invoke(app, ["fetch", "ring"]).exit_code == 0
    (project / "data" / "raw" / "ring" / "train.npz").write_bytes(b"not the data")
    result = runner.invoke(app, ["train", "ring-gan"])
    assert result.exit_code == 3
    assert "train.npz is missing or does not match its manifest" in result.output


def test_evaluate_before_train_exits_6(project):
    assert runner.invoke(app, ["fetch", "ring"]).exit_code == 0
    result = runner.invoke(app, ["evaluate", "ring-gan"])
    assert result.exit_code == 6
    assert "zoo train ring-gan" in result.output


def test_help_and_completion_do_not_import_heavy_libraries(project):
    code = (
        "import sys\n"
        "from pipeline.cli import app\n"
        "try:\n    app(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('torch', 'pytorch_lightning', 'mlflow') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=project).stdout
    assert "HEAVY []" in out
    env_code = code.replace("app(['--help'])", "app(['train', ''], prog_name='zoo')")
    env = {"_ZOO_COMPLETE": "complete_bash", "COMP_WORDS": "zoo train par", "COMP_CWORD": "2", "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", env_code], capture_output=True, text=True, cwd=project, env=env)
    assert "parity-lstm" in done.stdout and "parity-rnn" in done.stdout and "ring-gan" not in done.stdout
    assert "HEAVY []" in done.stdout
