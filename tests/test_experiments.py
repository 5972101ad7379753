"""Every experiment of the shipped params.yaml trains for a few batches and is evaluated,
in-process, on shrunken data: the metrics its task promises come out finite, and the
recurrent models' gradient-flow picture is drawn."""

from __future__ import annotations

import json
import math

import pytest
import yaml

from conftest import repo_params, shrink
from pipeline import config as config_mod
from pipeline.plumbing.paths import Layout
from pipeline.tasks import TASKS

PARAMS = shrink(repo_params())
OFFLINE = {n: e for n, e in PARAMS["experiments"].items()}


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("experiments")
    (root / "params.yaml").write_text(yaml.safe_dump(PARAMS, sort_keys=False))
    config = config_mod.load(root / "params.yaml")
    layout = Layout(root)
    from pipeline.stages.fetch import fetch

    from pipeline.stages.reference import reference

    for name in {e.dataset for e in config.experiments.values()}:
        fetch(config, layout, name)
        if name in config.references:  # image datasets: the classifier the image metrics need
            reference(config, layout, name)
    return config, layout


@pytest.mark.parametrize("name", sorted(OFFLINE))
def test_experiment_trains_and_evaluates(project, name):
    from pipeline.stages.evaluate import evaluate
    from pipeline.stages.train import train

    config, layout = project
    train(config, layout, name)
    evaluate(config, layout, name)
    metrics = json.loads(layout.metrics(name).read_text())
    task = TASKS[config.experiments[name].task]
    for column in task.columns:
        assert column.key in metrics
    assert task.primary in metrics and metrics[task.primary] is not None and math.isfinite(metrics[task.primary])
    plots = layout.plots(name)
    assert {p.suffix for p in plots.iterdir()} <= {".png", ".csv"}  # what `dvc plots show` reads; text goes to samples/
    from lightning_modules import MODELS

    if MODELS[config.experiments[name].model].family == "recurrent":
        from mlflow.tracking import MlflowClient

        run = json.loads(layout.run_file(name).read_text())
        history = MlflowClient(tracking_uri=run["tracking_uri"]).get_metric_history(next(iter(run["seeds"].values()))["run_id"], "grad_norm")
        assert len(history) >= 2 and all(math.isfinite(m.value) and m.value > 0 for m in history)  # per step
        assert math.isfinite(metrics["grad_log10_decay"])
        assert (plots / "gradient_flow.png").stat().st_size > 1000
    if task.name == "charlm":
        text = (layout.samples(name) / "samples.txt").read_text()
        assert len(text.split("\n\n", 1)[1].strip()) >= 10
