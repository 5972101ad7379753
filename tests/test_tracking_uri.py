"""Where runs go: params.yaml (or --set) over MLFLOW_TRACKING_URI over the project's sqlite
store; and no DVC stage depends on it, so moving the runs retrains nothing."""

from __future__ import annotations

from pathlib import Path

import yaml

from pipeline import config as config_module
from pipeline.plumbing import tracking
from pipeline.plumbing.paths import Layout

REPO = Path(__file__).resolve().parents[1]


def test_precedence_params_over_variable_over_default(tmp_path, monkeypatch, small_params):
    layout = Layout(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    config = config_module.validate(small_params)
    assert tracking.resolve_uri(config, layout) == f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    assert tracking.resolve_uri(config, layout) == "http://127.0.0.1:5999"
    config = config_module.validate(small_params, ["tracking.uri=sqlite:////elsewhere/runs.db"])
    assert tracking.resolve_uri(config, layout) == "sqlite:////elsewhere/runs.db"


def test_no_stage_takes_the_tracking_section_as_a_parameter():
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        body = stage.get("do", stage)
        params = [p if isinstance(p, str) else next(iter(p)) for p in body.get("params", [])]
        assert not any(p == "tracking" or p.startswith("tracking.") for p in params), name


def test_an_experiment_dvc_queue_runs_in_a_temporary_copy_tracks_into_the_project_it_came_from(tmp_path):
    # `dvc queue start` trains in a copy at <project>/.dvc/tmp/exps/tmpXXXXXXXX: the default store (and its
    # artifacts) stay the project's, so the runs outlive the copy and sit beside the others
    copy = Layout(tmp_path / "zoo" / ".dvc" / "tmp" / "exps" / "tmpa1b2c3")
    assert copy.default_tracking_uri == f"sqlite:///{tmp_path / 'zoo' / 'mlflow.db'}"
    assert copy.artifact_root == tmp_path / "zoo" / "mlartifacts"
    assert Layout(tmp_path / "zoo").tracking_root == tmp_path / "zoo"
