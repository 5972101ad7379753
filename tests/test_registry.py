"""The MLflow model registry that ``zoo compare`` fills: each leaderboard table's best
experiment (its best seed) is the ``champion`` of its registered model, and loads with
``mlflow.pytorch.load_model("models:/<name>@champion")`` and predicts on the input example
logged with it.

Every head kind on hand-made projects (untrained models, no data: seconds), and the
champions of a small finished pipeline run (``pipeline_copy``, shared with test_pipeline_e2e).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.plumbing import tracking
from pipeline.reporting import registry

# The shape arguments a task gives its models, per head.
MODEL_ARGS = {
    "classifier": {"vocab_size": 2, "n_classes": 2},
    "language-model": {"vocab_size": 30},
    "seq2seq": {"source_vocab_size": 40, "target_vocab_size": 20},
    "captioner": {"target_vocab_size": 14, "image_height": 8, "image_width": 24},
    "sampler-2d": {"data_dim": 2},
    "sampler-image": {"image_shape": [1, 8, 8], "n_classes": 10},
}
# One experiment per head kind (the recurrent and the Transformer language model), each in a
# leaderboard table of its own, and the registered model it becomes.
CHAMPIONS = {
    "parity-lstm": "rnngan-zoo.parity",
    "xml-lstm": "rnngan-zoo.xml",
    "charlm-transformer": "rnngan-zoo.charlm.pydoc",
    "dates-seq2seq-bahdanau": "rnngan-zoo.dates",
    "captions-show-attend-tell": "rnngan-zoo.captions",
    "ring-gan": "rnngan-zoo.mixture-2d.ring",
    "digits-cgan": "rnngan-zoo.images.digits",
}


def test_every_model_of_every_head_has_a_wrapper_with_one_tensor_in_and_out():
    """``registry.wrap`` on every (model, head) of ``MODELS``, default settings, untrained (of
    the 15 recurrent cells, which share their classes, torch's fused LSTM and one of the zoo's)."""
    from lightning_modules import MODELS

    with registry._one_thread():  # as registering runs them: tiny models
        for entry, head in ((e, h) for e in MODELS.values() for h in e.heads if e.family != "recurrent" or e.name in ("lstm", "gru")):
            _wrapper_predicts(entry, head)


def _wrapper_predicts(entry, head: str) -> None:
    torch.manual_seed(0)
    args = {**MODEL_ARGS[head], **({"image_shape": [1, 16, 16]} if head == "sampler-image" else {})}  # LAPGAN's 3 levels
    model = entry.build(head, entry.settings_for(head)(), **args)
    wrapper, example = registry.wrap(model, head)
    with torch.no_grad():
        output = wrapper(example)
    assert isinstance(output, torch.Tensor) and len(output) == len(example), (entry.name, head)
    assert torch.isfinite(output.float()).all(), (entry.name, head)
    expected = {
        "classifier": (2, 2), "language-model": (2, 30), "sampler-2d": (4, 2), "sampler-image": (4, 1, 16, 16),
    }.get(head)
    if expected:
        assert tuple(output.shape) == expected, (entry.name, head)
    else:  # greedy decoding: ids, at most DECODE_LENGTH of them
        assert output.dtype == torch.int64 and output.shape[1] <= registry.DECODE_LENGTH, (entry.name, head)
    signature = registry.signature(example.numpy(), output.numpy())
    assert signature.inputs.inputs[0].shape[0] == -1


@pytest.fixture
def use_store(monkeypatch):
    """Point MLflow's global tracking (and registry) URI at a store for the test, and back."""
    import mlflow

    def use(folder: Path) -> str:
        uri = f"sqlite:///{folder / 'mlflow.db'}"
        monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
        mlflow.set_tracking_uri(uri)
        return uri

    yield use
    mlflow.set_tracking_uri(None)


def seeded(values: list[float], key: str) -> dict:
    """``metrics/<experiment>.json`` of one value of ``key`` per seed (seeds 1, 2, ...)."""
    seeds = {str(i): {key: v, "plateau": 1.0, "diverged": 0.0} for i, v in enumerate(values, 1)}
    return {key: sum(values) / len(values), "n_seeds": len(values), "seeds": seeds}


def untrained(project: Path, config, name: str, metric, client) -> None:
    """What train and evaluate leave of an experiment, from untrained models: a checkpoint
    Lightning can load and a real MLflow run per seed, run.json, and the metrics file with
    ``metric`` (one number, or a list: one per seed) as the task's first ranking metric."""
    import pytorch_lightning as pl

    from lightning_modules import MODELS
    from pipeline.plumbing.paths import Layout
    from pipeline.stages.compare import ranking_of
    from pipeline.tasks import TASKS

    layout = Layout(project)
    exp = config.experiments[name]
    head = TASKS[exp.task].head
    values = metric if isinstance(metric, list) else [metric]
    experiment_id = tracking.experiment_id(client, tracking.resolve_uri(config, layout), tracking.experiment_name(config, exp.task), layout)
    seeds = {}
    for seed in range(1, len(values) + 1):
        torch.manual_seed(seed)
        model = MODELS[exp.model].build(head, exp.settings, **MODEL_ARGS[head])
        layout.seed_dir(name, seed).mkdir(parents=True, exist_ok=True)
        torch.save(
            {"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams), "pytorch-lightning_version": pl.__version__},
            layout.checkpoint(name, seed),
        )
        run_id = client.create_run(experiment_id, run_name=f"{name} seed {seed}", tags={"zoo.kind": "experiment", "zoo.task": exp.task}).info.run_id
        client.set_terminated(run_id, "FINISHED")
        seeds[str(seed)] = {"run_id": run_id}
    layout.run_file(name).write_text(json.dumps({"experiment": name, "experiment_id": experiment_id, "parameters": 1, "seeds": seeds}))
    layout.metrics(name).parent.mkdir(exist_ok=True)
    layout.metrics(name).write_text(json.dumps(seeded(values, ranking_of(TASKS[exp.task])[0][0])))


@pytest.fixture
def store_with(project, small_params, use_store):
    """``store_with({experiment: metric})``: a project with only those experiments, each
    left by ``untrained`` with that first ranking metric (a list: per seed), and its own MLflow
    store. Returns (layout, config, client)."""
    from conftest import write_params
    from pipeline.config import load
    from pipeline.plumbing.paths import Layout

    def make(metrics: dict[str, float]):
        small_params["experiments"] = {k: small_params["experiments"][k] for k in metrics}
        write_params(project, small_params)
        use_store(project)
        layout = Layout(project)
        config = load(layout.params)
        client = tracking.client(tracking.resolve_uri(config, layout))
        for name, metric in metrics.items():
            untrained(project, config, name, metric, client)
        return layout, config, client

    return make


def champion_predicts(name: str):
    """Load the champion as a user would, predict on its logged input example; the output as
    the signature says. Returns the model version and the output."""
    import mlflow
    from mlflow.models import Model

    uri = registry.champion_uri(name)
    local = mlflow.artifacts.download_artifacts(uri)
    metadata = Model.load(local)
    # The code it needs to load elsewhere: the whole pipeline package, subpackages included.
    code = Path(local) / "code"
    for module in ("pipeline/__init__.py", "pipeline/cli.py", "pipeline/reporting/registry.py", "pipeline/training/history.py",
                   "pipeline/evaluation/metrics.py", "pipeline/plumbing/paths.py", "pipeline/stages/evaluate.py",
                   "pipeline/tasks/__init__.py", "lightning_modules/__init__.py"):
        assert (code / module).is_file(), module
    example = metadata.load_input_example(local)
    assert isinstance(example, np.ndarray) and len(example) >= 2
    model = mlflow.pytorch.load_model(uri)
    with torch.no_grad():
        output = model(torch.from_numpy(example))
    assert isinstance(output, torch.Tensor) and len(output) == len(example)
    assert torch.isfinite(output.float()).all()
    (spec,) = metadata.signature.outputs.inputs
    assert output.numpy().dtype == spec.type
    assert all(expected in (-1, actual) for expected, actual in zip(spec.shape, output.shape, strict=True))
    (spec,) = metadata.signature.inputs.inputs
    assert example.dtype == spec.type and len(spec.shape) == example.ndim
    assert np.asarray(mlflow.pyfunc.load_model(uri).predict(example)).shape == tuple(output.shape)  # the schema admits it
    version = mlflow.MlflowClient().get_model_version_by_alias(name, registry.CHAMPION)
    return version, output


def test_every_head_kind_registers_a_champion_that_loads_and_predicts(project, store_with, capsys):
    from pipeline.stages.compare import compare

    layout, config, client = store_with(dict.fromkeys(CHAMPIONS, 0.5))
    compare(config, layout)
    out = capsys.readouterr().out
    assert (layout.reports / "leaderboard.md").is_file()

    from pipeline.tasks import TASKS

    for experiment, name in CHAMPIONS.items():
        head = TASKS[config.experiments[experiment].task].head
        assert f"model registry: {name} v1 @champion = {experiment} seed 1 (" in out
        version, output = champion_predicts(name)
        run = json.loads(layout.run_file(experiment).read_text())
        assert version.run_id == run["seeds"]["1"]["run_id"]  # logged into the seed's own run, in its experiment
        assert version.source.startswith("models:/m-")  # the logged model, by id
        assert client.get_logged_model(version.source.removeprefix("models:/")).experiment_id == run["experiment_id"]
        assert version.tags["zoo.experiment"] == experiment and version.tags["zoo.head"] == head
        assert version.tags["zoo.metric"] and version.tags["zoo.metric_value"] == "0.5" and version.tags["zoo.seed"] == "1"
        if head == "classifier":
            torch.testing.assert_close(output.sum(dim=1), torch.ones(len(output)))  # probabilities
        elif head == "sampler-image":
            assert output.shape[1:] == (1, 8, 8) and output.abs().max() <= 1
        elif head in ("seq2seq", "captioner"):
            assert output.dtype == torch.int64
    # The registered model names its task; the models lie beside the runs' artifacts.
    model = client.get_registered_model("rnngan-zoo.parity")
    assert model.tags["zoo.task"] == "parity" and "accuracy_longer" in model.description
    assert not (project / "mlruns").exists()


def test_a_rerun_keeps_the_champion_and_a_better_experiment_takes_over(store_with, capsys):
    """The best experiment by its mean over seeds; of it, the best seed is registered."""
    from pipeline.stages.compare import compare

    layout, config, client = store_with({"parity-lstm": [0.85, 0.9, 0.88], "parity-rnn": 0.6})
    compare(config, layout)
    assert "rnngan-zoo.parity v1 @champion = parity-lstm seed 2 (accuracy_longer 0.9; registered" in capsys.readouterr().out
    version = client.get_model_version_by_alias("rnngan-zoo.parity", "champion")
    run = json.loads(layout.run_file("parity-lstm").read_text())
    assert version.run_id == run["seeds"]["2"]["run_id"] and version.tags["zoo.seed"] == "2"
    assert version.tags["zoo.checkpoint_sha256"] == registry.sha256(layout.checkpoint("parity-lstm", 2))
    assert version.tags["zoo.metric_mean"] == "0.876667" and version.tags["zoo.seeds"] == "3"

    # compare again, nothing changed: no new version, the same champion, at once
    compare(config, layout)
    assert "rnngan-zoo.parity v1 @champion = parity-lstm seed 2 (accuracy_longer 0.9; unchanged" in capsys.readouterr().out
    assert len(client.search_model_versions("name = 'rnngan-zoo.parity'")) == 1

    # re-evaluated with new numbers, seed 2 still the best: the same version, its tags follow
    layout.metrics("parity-lstm").write_text(json.dumps(seeded([0.75, 0.8, 0.78], "accuracy_longer")))
    compare(config, layout)
    tags = client.get_model_version_by_alias("rnngan-zoo.parity", "champion").tags
    assert tags["zoo.metric_value"] == "0.8" and tags["zoo.metric_mean"] == "0.776667"

    # another experiment wins on its mean: a new version becomes champion
    layout.metrics("parity-rnn").write_text(json.dumps(seeded([0.95], "accuracy_longer")))
    compare(config, layout)
    assert "rnngan-zoo.parity v2 @champion = parity-rnn seed 1 (accuracy_longer 0.95; registered" in capsys.readouterr().out
    version, _ = champion_predicts("rnngan-zoo.parity")
    assert str(version.version) == "2" and version.tags["zoo.experiment"] == "parity-rnn"

    # and back: the earlier version is champion again, nothing logged twice
    layout.metrics("parity-rnn").write_text(json.dumps(seeded([0.5], "accuracy_longer")))
    compare(config, layout)
    assert "rnngan-zoo.parity v1 @champion = parity-lstm seed 2 (accuracy_longer 0.8; restored" in capsys.readouterr().out
    assert len(client.search_model_versions("name = 'rnngan-zoo.parity'")) == 2


def test_a_table_that_fails_to_register_is_reported_and_the_others_are_registered(store_with, capsys):
    from pipeline.stages.compare import compare

    layout, config, client = store_with({"parity-lstm": 0.9, "ring-gan": 3})
    layout.checkpoint("ring-gan", 1).write_bytes(b"not a checkpoint")

    compare(config, layout)
    captured = capsys.readouterr()
    assert "warning: model registry: rnngan-zoo.mixture-2d.ring: failed, ring-gan: ModelError: cannot load checkpoint" in captured.err
    assert "rnngan-zoo.parity v1 @champion = parity-lstm seed 1" in captured.out
    assert (layout.reports / "leaderboard.md").is_file() and "compared 2 experiments" in captured.out


@pytest.mark.slow
def test_the_champions_of_a_pipeline_run_load_and_predict(pipeline_copy, use_store):
    """After ``dvc repro``: each table's champion is its leaderboard's first experiment."""
    from pipeline.config import load
    from pipeline.plumbing.paths import Layout
    from pipeline.stages.compare import ranked, ranking_of

    dest, _, _ = pipeline_copy
    use_store(dest)
    layout = Layout(dest)
    config = load(layout.params)
    tables = list(ranked(config, layout))
    assert {(task.name, dataset) for task, dataset, _ in tables} == {("parity", "parity"), ("mixture-2d", "ring"), ("images", "digits")}
    for task, dataset, rows in tables:
        best, order = rows[0], ranking_of(task)
        seed = best.best_seed(order)
        version, output = champion_predicts(registry.model_name(config, task.name, dataset))
        assert version.tags["zoo.experiment"] == best.name and version.tags["zoo.seed"] == seed
        assert version.run_id == best.run_id(seed)
        assert version.tags["zoo.metric"] == order[0][0]
        assert float(version.tags["zoo.metric_value"]) == pytest.approx(best.seeds[seed][order[0][0]], rel=1e-5)
        assert version.tags["zoo.checkpoint_sha256"] == registry.sha256(layout.checkpoint(best.name, int(seed)))
