"""params.yaml validation: every bad input ends with exit code 2, one line naming the key
path, and nothing written."""

from __future__ import annotations

import copy

import pytest
from typer.testing import CliRunner

from conftest import write_params
from pipeline import config as config_mod
from pipeline.cli import app
from pipeline.plumbing.errors import ConfigError

runner = CliRunner()


def error_of(params: dict, overrides=None) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        config_mod.validate(params, overrides)
    return info.value


def test_the_shipped_params_are_valid(small_params):
    from conftest import repo_params

    config = config_mod.validate(repo_params())
    assert {"parity-rnn", "parity-lstm", "ring-gan"} <= set(config.experiments)
    lstm = config.experiments["parity-lstm"]
    assert lstm.settings.hidden_size == 64
    assert lstm.trainer.max_epochs == repo_params()["defaults"]["parity"]["trainer"]["max_epochs"]  # the task's default
    assert config_mod.validate(small_params).experiments["ring-gan"].trainer.max_epochs == 1


@pytest.mark.parametrize(
    "mutate, path, message",
    [
        (lambda p: p["experiments"]["parity-lstm"].update(hiden_size=64), "experiments.parity-lstm.hiden_size", "unknown key"),
        (lambda p: p["experiments"]["parity-lstm"].update(hidden_size="big"), "experiments.parity-lstm.hidden_size", "integer"),
        (lambda p: p["experiments"]["parity-lstm"].update(hidden_size=0), "experiments.parity-lstm.hidden_size", "greater than or equal to 1"),
        (lambda p: p["experiments"]["parity-lstm"].update(dropout=1.5), "experiments.parity-lstm.dropout", "less than 1"),
        (lambda p: p["experiments"]["ring-gan"].update(generator_loss="wasserstein"), "experiments.ring-gan.generator_loss", "non-saturating"),
        (lambda p: p["experiments"]["parity-lstm"].update(model="lstmm"), "experiments.parity-lstm.model", "choose from: acgan, cgan, cogan, dcgan, gan, gan-mbd, gru, lapgan, lstm, lstm-cifg,"),
        (lambda p: p["experiments"]["parity-lstm"].update(task="parityy"), "experiments.parity-lstm.task", "choose from: arithmetic, captions, charlm, dates, images, mixture-2d, parity, sentiment, translation, xml"),
        (lambda p: p["experiments"]["parity-lstm"].update(dataset="nope"), "experiments.parity-lstm.dataset", "choose from: "),
        (lambda p: p["experiments"]["parity-lstm"].update(model="gan"), "experiments.parity-lstm.model", "does not fit task 'parity'"),
        (lambda p: p["experiments"]["parity-lstm"].pop("task"), "experiments.parity-lstm.task", "missing required key"),
        (lambda p: p["experiments"]["parity-lstm"]["trainer"].update(max_epoch=3), "experiments.parity-lstm.trainer.max_epoch", "unknown key"),
        (lambda p: p["trainer"].update(max_epochs=-1), "trainer.max_epochs", "greater than or equal to 1"),
        (lambda p: p["trainer"].update(colour="red"), "trainer.colour", "unknown key"),
        (lambda p: p["tracking"].update(experiment=""), "tracking.experiment", "at least 1 character"),
        (lambda p: p["datasets"]["parity"].update(source="parrity"), "datasets.parity.source", "choose from: arithmetic, captions, cifar10, dates, digits, grid, imdb, mnist, parity, pydoc-topics, python-stdlib, ring, tiny-shakespeare, translation, xml"),
        (lambda p: p["datasets"]["parity"].update(n_train="many"), "datasets.parity.n_train", "integer"),
        (lambda p: p["datasets"]["ring"].update(std=-0.1), "datasets.ring.std", "greater than 0"),
        (lambda p: p["datasets"]["parity"].update(test_max_length=2), "datasets.parity", "test_max_length"),
        (lambda p: p.update(seeds=3), "seeds", "unknown key"),
        (lambda p: p["experiments"]["parity-lstm"].update(seed=1, seeds=[1, 2]), "experiments.parity-lstm.seeds", "either seed (one seed) or seeds (a list), not both"),
        (lambda p: p["experiments"]["parity-long-lstm"].update(seeds=[1, 1]), "experiments.parity-long-lstm.seeds", "a seed is listed twice"),
        (lambda p: p["experiments"]["parity-long-lstm"].update(seeds=[]), "experiments.parity-long-lstm.seeds", "at least 1 item"),
        (lambda p: p["experiments"]["parity-long-lstm"].update(seeds=3), "experiments.parity-long-lstm.seeds", "valid list"),
        (lambda p: p["experiments"]["parity-lstm"].update(plateau={"patience": 0}), "experiments.parity-lstm.plateau.patience", "greater than or equal to 1"),
        (lambda p: p["experiments"]["parity-lstm"].update(plateau={"mode": "up"}), "experiments.parity-lstm.plateau.mode", "'min' or 'max'"),
        (lambda p: p["experiments"]["parity-lstm"].update(plateau={"patiense": 2}), "experiments.parity-lstm.plateau.patiense", "unknown key"),
        (lambda p: p["experiments"]["parity-lstm"].update(on_nonfinite_loss="ignore"), "experiments.parity-lstm.on_nonfinite_loss", "'fail' or 'record'"),
        (lambda p: p["experiments"]["parity-lstm"].update(optimizer="rmsprop"), "experiments.parity-lstm.optimizer", "'adam' or 'sgd'"),
        (lambda p: p.update(seed="x"), "seed", "non-negative integer"),
        (lambda p: p.pop("experiments"), "experiments", "missing required key"),
    ],
)
def test_bad_params_name_the_key(small_params, mutate, path, message):
    params = copy.deepcopy(small_params)
    mutate(params)
    err = error_of(params)
    assert err.path == path
    assert message in err.message


def test_override_is_validated_like_the_file(small_params):
    config = config_mod.validate(small_params, ["experiments.parity-lstm.hidden_size=8", "trainer.max_epochs=3"])
    assert config.experiments["parity-lstm"].settings.hidden_size == 8
    assert config.trainer.max_epochs == 3
    assert error_of(small_params, ["experiments.parity-lstm.hiden_size=8"]).path == "experiments.parity-lstm.hiden_size"
    assert "key.path=value" in error_of(small_params, ["trainer.max_epochs"]).message


def _assert_nothing_written(folder):
    assert sorted(p.name for p in folder.iterdir()) == ["params.yaml"]


@pytest.mark.parametrize(
    "args",
    [["train", "parity-lstm"], ["fetch", "parity"], ["evaluate", "parity-lstm"], ["list"], ["compare"]],
)
def test_cli_misspelt_key_exits_2_with_one_line_and_writes_nothing(project, small_params, args):
    params = copy.deepcopy(small_params)
    params["experiments"]["parity-lstm"]["hiden_size"] = 32
    write_params(project, params)
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert lines == ["error: params.yaml: experiments.parity-lstm.hiden_size: unknown key"]
    _assert_nothing_written(project)


def test_cli_unknown_experiment_exits_2_naming_the_choices(project):
    result = runner.invoke(app, ["train", "no-such-experiment"])
    assert result.exit_code == 2
    (line,) = result.output.strip().splitlines()
    assert "unknown experiment 'no-such-experiment'" in line and "parity-lstm" in line
    _assert_nothing_written(project)


def test_cli_unknown_dataset_exits_2(project):
    result = runner.invoke(app, ["fetch", "mnist"])
    assert result.exit_code == 2
    assert "unknown dataset 'mnist'; choose from: parity," in result.output
    _assert_nothing_written(project)


def test_malformed_yaml_names_file_and_line(project):
    (project / "params.yaml").write_text("seed: 1\ntrainer:\n  max_epochs: [1\n")
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 2
    (line,) = result.output.strip().splitlines()
    assert line.startswith("error: params.yaml: line ") and "malformed YAML" in line
    _assert_nothing_written(project)


def test_defaults_give_a_tasks_experiments_their_shared_settings_and_an_experiment_overrides_its_own(small_params):
    params = dict(small_params)
    params["defaults"] = {task: {} for task in {e["task"] for e in params["experiments"].values()}}
    params["defaults"]["xml"] = {"hidden_size": 40, "seeds": [4, 5, 6], "trainer": {"max_epochs": 7, "gradient_clip_val": 1.0}}
    params["experiments"] = {k: v for k, v in params["experiments"].items() if v["task"] != "xml"}
    params["experiments"]["xml-a"] = {"dataset": "xml", "task": "xml", "model": "lstm"}
    params["experiments"]["xml-b"] = {"dataset": "xml", "task": "xml", "model": "gru", "hidden_size": 24, "seed": 9, "trainer": {"max_epochs": 3}}
    config = config_mod.validate(params)
    a, b = config.experiments["xml-a"], config.experiments["xml-b"]
    assert a.settings.hidden_size == 40 and config.experiment_seeds("xml-a") == [4, 5, 6] and a.trainer.max_epochs == 7
    assert b.settings.hidden_size == 24 and config.experiment_seeds("xml-b") == [9]
    assert b.trainer.max_epochs == 3 and b.trainer.gradient_clip_val == 1.0  # trainer merged key by key


def test_defaults_errors_name_the_key(small_params):
    params = dict(small_params)
    params["defaults"] = {"parity": {}}
    with pytest.raises(ConfigError, match=r"defaults\.\w+: missing"):
        config_mod.validate(params)
    params["defaults"] = {"nope": {}}
    with pytest.raises(ConfigError, match="defaults.nope: unknown task"):
        config_mod.validate(params)
    params["defaults"] = {task: {} for task in {e["task"] for e in params["experiments"].values()}}
    params["defaults"]["parity"] = {"model": "rnn"}
    with pytest.raises(ConfigError, match="defaults.parity.model"):
        config_mod.validate(params)


# ---------------------------------------------------------------------------------------
# The trainer section: every plain keyword of Lightning's Trainer, checked before anything is written


def test_trainer_keys_cover_lightnings_signature_and_precisions():
    """A Lightning upgrade that adds, renames or retypes a keyword fails here, not in a user's run."""
    import inspect
    import typing

    import pytorch_lightning as pl
    from pipeline.plumbing import trainer_keys

    keywords = set(inspect.signature(pl.Trainer.__init__).parameters) - {"self"}
    known = set(config_mod.TrainerSettings.model_fields) | set(trainer_keys.MORE) | set(trainer_keys.REFUSED)
    assert keywords == known
    assert not set(trainer_keys.MORE) & set(config_mod.TrainerSettings.model_fields)
    # the precisions Lightning's public signature accepts (a Union of Literals, and None)
    precision = typing.get_type_hints(pl.Trainer.__init__)["precision"]
    accepted = [value for literal in typing.get_args(precision) for value in typing.get_args(literal)]
    assert sorted(map(repr, trainer_keys.PRECISIONS)) == sorted(map(repr, accepted))


@pytest.mark.parametrize(
    "override, path, message",
    [
        ("trainer.precision=fp7", "trainer.precision", "unknown precision 'fp7'; choose from: 64, 32, 16, transformer-engine"),
        ("experiments.parity-lstm.trainer.precision=fp7", "experiments.parity-lstm.trainer.precision", "unknown precision 'fp7'"),
        ("trainer.accelerator=gpus", "trainer.accelerator", "unknown accelerator 'gpus'; choose from: auto, cpu, gpu, cuda, mps, tpu"),
        ("trainer.devices=0", "trainer.devices", "positive number of devices"),
        ("trainer.devices=two", "trainer.devices", "a number of devices"),
        ("trainer.accumulate_grad_batches=two", "trainer.accumulate_grad_batches", "valid integer"),
        ("experiments.parity-lstm.trainer.benchmark=maybe", "experiments.parity-lstm.trainer.benchmark", "valid boolean"),
        ("trainer.reload_dataloaders_every_n_epochs=1.5", "trainer.reload_dataloaders_every_n_epochs", "valid integer"),
        ("trainer.max_time=[1, 2]", "trainer.max_time", "valid string"),
        ("trainer.default_root_dir=/tmp/x", "trainer.default_root_dir", "set by the zoo"),
        ("experiments.parity-lstm.trainer.callbacks=[]", "experiments.parity-lstm.trainer.callbacks", "set by the zoo"),
        ("trainer.logger=false", "trainer.logger", "MLflow run"),
        ("trainer.enable_checkpointing=false", "trainer.enable_checkpointing", "resumable"),
        ("trainer.plugins=x", "trainer.plugins", "Python objects"),
    ],
)
def test_bad_trainer_values_name_the_key(small_params, override, path, message):
    err = error_of(small_params, [override])
    assert err.path == path
    assert message in err.message, err.message


def test_every_plain_trainer_keyword_is_accepted(small_params):
    overrides = [
        "trainer.max_time=00:00:05:00", "trainer.accumulate_grad_batches=2", "trainer.fast_dev_run=true",
        "trainer.overfit_batches=0.1", "trainer.precision=bf16-mixed", "trainer.devices=1",
        "experiments.parity-lstm.trainer.detect_anomaly=true", "experiments.parity-lstm.trainer.limit_test_batches=3",
        "experiments.parity-lstm.trainer.inference_mode=false",
    ]
    config = config_mod.validate(small_params, overrides)
    lstm = config.experiments["parity-lstm"].trainer.model_dump(exclude_none=True)
    assert {k: lstm[k] for k in ("max_time", "accumulate_grad_batches", "fast_dev_run", "precision", "detect_anomaly", "limit_test_batches", "inference_mode")} == {
        "max_time": "00:00:05:00", "accumulate_grad_batches": 2, "fast_dev_run": True, "precision": "bf16-mixed",
        "detect_anomaly": True, "limit_test_batches": 3, "inference_mode": False,
    }
    assert "detect_anomaly" not in config.experiments["parity-rnn"].trainer.model_dump()  # set for one experiment only
    # keys left unset are not passed (Lightning's defaults), so logged parameters stay as they were
    assert "benchmark" not in config_mod.validate(small_params).experiments["parity-lstm"].trainer.model_dump()


def test_cli_precision_fp7_exits_2_naming_the_key_and_writes_nothing(project):
    result = runner.invoke(app, ["train", "parity-lstm", "--set", "trainer.precision=fp7"])
    assert result.exit_code == 2
    (line,) = result.output.strip().splitlines()
    assert line.startswith("error: params.yaml: trainer.precision: unknown precision 'fp7'")
    _assert_nothing_written(project)


@pytest.mark.parametrize("override, path", [
    ("trainer.accelerator=gpu", "experiments.parity-rnn.trainer.accelerator"),
    ("experiments.parity-rnn.trainer.accelerator=cuda", "experiments.parity-rnn.trainer.accelerator"),
])
def test_cli_gpu_on_a_machine_without_one_exits_2_before_any_run_or_folder(project, monkeypatch, override, path):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert runner.invoke(app, ["fetch", "parity"]).exit_code == 0
    result = runner.invoke(app, ["train", "parity-rnn", "--set", override])
    assert result.exit_code == 2, result.output
    (line,) = result.output.strip().splitlines()
    assert line.startswith(f"error: {path}: ") and "no CUDA GPU on this machine" in line, line
    assert sorted(p.name for p in project.iterdir()) == ["data", "params.yaml"]  # no mlflow.db, checkpoints/, models/


def test_more_cuda_devices_than_the_machine_has_exits_2(project, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert runner.invoke(app, ["fetch", "parity"]).exit_code == 0
    result = runner.invoke(app, ["train", "parity-rnn", "--set", "trainer.accelerator=gpu", "--set", "trainer.devices=4"])
    assert result.exit_code == 2, result.output
    assert "experiments.parity-rnn.trainer.devices: 4 asked for, this machine has 2 CUDA GPUs" in result.output
    result = runner.invoke(app, ["train", "parity-rnn", "--set", "trainer.accelerator=gpu", "--set", "trainer.devices=[0, 2]"])
    assert result.exit_code == 2 and "device index 2 asked for" in result.output


def test_new_trainer_keys_reach_the_trainer(project, monkeypatch):
    import pytorch_lightning as pl

    seen = {}

    class Recording(pl.Trainer):
        def __init__(self, **kwargs):
            seen.update(kwargs)
            super().__init__(**kwargs)

    monkeypatch.setattr(pl, "Trainer", Recording)
    assert runner.invoke(app, ["fetch", "parity"]).exit_code == 0
    result = runner.invoke(app, ["train", "parity-rnn", "--set", "trainer.max_time=00:00:10:00", "--set", "trainer.accumulate_grad_batches=2",
                                 "--set", "experiments.parity-rnn.trainer.detect_anomaly=true"])
    assert result.exit_code == 0, result.output
    assert seen["max_time"] == "00:00:10:00" and seen["accumulate_grad_batches"] == 2 and seen["detect_anomaly"] is True
    assert "benchmark" not in seen
