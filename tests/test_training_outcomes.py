"""Results a researcher can cite (issue 19): every seed trained and evaluated, training to a
plateau with the best checkpoint kept, divergence recorded as an outcome, gradient-norm
statistics, plain SGD for the recurrent models. Tiny parity models, seconds each."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
import torch

from conftest import write_params
from pipeline import config as config_mod
from pipeline.plumbing.errors import ConfigError
from pipeline.plumbing.paths import Layout

RECORD_KEYS = {"monitor", "mode", "stopped", "epochs", "best_epoch", "best_score", "epochs_to_target", "diverged_step", "grad_norm"}
SEED_METRICS = {"plateau", "diverged", "epochs", "best_epoch", "diverged_step", "epochs_to_target", "grad_norm_max", "grad_norm_p50", "grad_norm_p90", "grad_norm_p99"}


def setup(project, params, name="parity-rnn", dataset="parity", **changes):
    trainer = changes.pop("trainer", {})
    if "seeds" in changes:
        params["experiments"][name].pop("seed", None)  # the shipped one-seed form gives way
    params["experiments"][name].update(changes)
    params["experiments"][name].setdefault("trainer", {}).update(trainer)
    write_params(project, params)
    config, layout = config_mod.load(project / "params.yaml"), Layout(project)
    from pipeline.stages.fetch import fetch

    fetch(config, layout, dataset)
    return config, layout


def mlflow_client(project):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")


def test_two_seeds_train_and_evaluate_into_their_own_folders_runs_and_metrics(project, small_params):
    from pipeline.stages.evaluate import evaluate
    from pipeline.stages.train import train

    config, layout = setup(project, small_params, seeds=[3, 1], trainer={"max_epochs": 2, "gradient_clip_val": 1e-6})
    assert train(config, layout, "parity-rnn") == layout.checkpoint("parity-rnn", 3)
    run = json.loads(layout.run_file("parity-rnn").read_text())
    assert list(run["seeds"]) == ["3", "1"]  # the experiment's order
    assert {"experiment", "model", "task", "family", "parameters", "tracking_uri", "experiment_id"} <= set(run)
    for seed in (3, 1):
        assert layout.checkpoint("parity-rnn", seed).is_file() and (layout.seed_dir("parity-rnn", seed) / "curves.csv").is_file()
        training = run["seeds"][str(seed)]["training"]
        assert set(training) == RECORD_KEYS
        assert training["stopped"] == "cap" and training["epochs"] == 2 and training["monitor"] == "val_accuracy"  # parity's defaults
        # measured before clipping: far above the clipping threshold
        assert training["grad_norm"]["p50"] > 1e-3 and training["grad_norm"]["max"] >= training["grad_norm"]["p99"] >= training["grad_norm"]["p50"]
    assert layout.checkpoint("parity-rnn") == layout.checkpoint("parity-rnn", 3)  # no seed: the first
    assert layout.curves("parity-rnn").read_text() == (layout.seed_dir("parity-rnn", 3) / "curves.csv").read_text()
    assert not layout.resume_dir("parity-rnn").exists()
    a = torch.load(layout.checkpoint("parity-rnn", 3), weights_only=False)["state_dict"]
    b = torch.load(layout.checkpoint("parity-rnn", 1), weights_only=False)["state_dict"]
    assert any(not torch.equal(a[k], b[k]) for k in a)  # two seeds, two models

    trained_end = {seed: mlflow_client(project).get_run(run["seeds"][seed]["run_id"]).info.end_time for seed in ("3", "1")}
    evaluate(config, layout, "parity-rnn")
    for seed, end in trained_end.items():  # the evaluation logs into the run without stretching it
        info = mlflow_client(project).get_run(run["seeds"][seed]["run_id"]).info
        assert info.status == "FINISHED" and info.end_time == end
    metrics = json.loads(layout.metrics("parity-rnn").read_text())
    assert metrics["n_seeds"] == 2 and set(metrics["seeds"]) == {"3", "1"}
    for seed, entry in metrics["seeds"].items():
        assert SEED_METRICS | {"accuracy"} <= set(entry)
        assert entry["plateau"] == 0.0 and entry["diverged"] == 0.0 and entry["diverged_step"] is None
        assert entry["grad_norm_max"] == pytest.approx(run["seeds"][seed]["training"]["grad_norm"]["max"])
    assert metrics["accuracy"] == pytest.approx(np.mean([e["accuracy"] for e in metrics["seeds"].values()]))
    assert metrics["plateau"] == 0.0 and metrics["epochs"] == 2.0 and metrics["diverged_step"] is None
    assert (layout.plots("parity-rnn") / "accuracy_by_length.png").is_file()

    client = mlflow_client(project)
    for seed in ("3", "1"):
        mlflow_run = client.get_run(run["seeds"][seed]["run_id"])
        assert mlflow_run.info.run_name == f"parity-rnn seed {seed}" and mlflow_run.info.status == "FINISHED"
        assert mlflow_run.data.params["seed"] == seed and mlflow_run.data.tags["zoo.seed"] == seed
        (dataset_input,) = mlflow_run.inputs.dataset_inputs  # the runs table's Dataset column
        assert dataset_input.dataset.name == "parity" and len(dataset_input.dataset.digest) == 16
        assert mlflow_run.data.metrics["accuracy"] == pytest.approx(metrics["seeds"][seed]["accuracy"])
        assert mlflow_run.data.metrics["plateau"] == 0.0


def test_a_finished_seed_is_not_trained_again_when_the_stage_reruns_after_a_failure_in_a_later_seed(project, small_params, monkeypatch):
    import pytorch_lightning as pl

    from lightning_modules.recurrent import SequenceClassifier
    from pipeline.stages.train import train

    config, layout = setup(project, small_params, seeds=[1, 2])
    original = SequenceClassifier.training_step

    def killed_in_seed_2(self, batch, batch_idx):
        if os.environ.get("PL_GLOBAL_SEED") == "2" and self.global_step >= 2:
            raise RuntimeError("killed")
        return original(self, batch, batch_idx)

    monkeypatch.setattr(SequenceClassifier, "training_step", killed_in_seed_2)
    with pytest.raises(RuntimeError, match="killed"):
        train(config, layout, "parity-rnn")
    assert not layout.model_dir("parity-rnn").exists()
    done = json.loads((layout.seed_resume_dir("parity-rnn", 1) / "done" / "seed.json").read_text())
    weights = (layout.seed_resume_dir("parity-rnn", 1) / "done" / "model.ckpt").read_bytes()

    monkeypatch.setattr(SequenceClassifier, "training_step", original)
    fits = []
    fit = pl.Trainer.fit
    monkeypatch.setattr(pl.Trainer, "fit", lambda self, *a, **k: fits.append(os.environ["PL_GLOBAL_SEED"]) or fit(self, *a, **k))
    train(config, layout, "parity-rnn")
    assert fits == ["2"]  # seed 1 kept from the first attempt
    run = json.loads(layout.run_file("parity-rnn").read_text())
    assert run["seeds"]["1"]["run_id"] == done["run_id"]
    assert layout.checkpoint("parity-rnn", 1).read_bytes() == weights
    assert not layout.resume_dir("parity-rnn").exists()


def test_training_stops_on_a_plateau_keeps_the_best_checkpoint_and_records_the_epoch_a_target_is_reached(project, small_params):
    from pipeline.stages.evaluate import evaluate
    from pipeline.stages.train import train

    # No later epoch improves on the first by min_delta 100: patience 2 stops after epoch 3.
    plateau = {"monitor": "val_loss", "mode": "min", "patience": 2, "min_delta": 100.0, "target": 10.0}
    config, layout = setup(project, small_params, plateau=plateau, trainer={"max_epochs": 6})
    train(config, layout, "parity-rnn")
    seed = config.experiment_seed("parity-rnn")
    training = json.loads(layout.run_file("parity-rnn").read_text())["seeds"][str(seed)]["training"]
    assert training["stopped"] == "plateau" and training["mode"] == "min" and training["epochs"] == 3
    assert training["epochs_to_target"] == 1  # a parity loss is under 10 from the start
    kept = torch.load(layout.checkpoint("parity-rnn"), map_location="cpu", weights_only=False)
    assert kept["epoch"] == training["best_epoch"] - 1  # the best checkpoint (Lightning counts epochs from 0)
    curves = [r for r in (layout.curves("parity-rnn")).read_text().splitlines()[1:] if ",loss,validation," in r]
    losses = [float(r.split(",")[-1]) for r in curves]
    assert len(losses) == 3 and min(losses) == pytest.approx(training["best_score"], rel=1e-5)
    assert losses.index(min(losses)) + 1 == training["best_epoch"]
    evaluate(config, layout, "parity-rnn")
    metrics = json.loads(layout.metrics("parity-rnn").read_text())
    assert metrics["plateau"] == 1.0 and metrics["seeds"][str(seed)]["epochs_to_target"] == 1


def test_a_monitor_at_the_tasks_ceiling_ends_training_on_its_plateau(project, small_params, monkeypatch):
    from pipeline.stages.train import train
    from pipeline.tasks import TASKS

    assert TASKS["parity"].ceilings == {"val_accuracy": 1.0}
    monkeypatch.setattr(TASKS["parity"], "ceilings", {"val_accuracy": 0.0})  # any accuracy reaches it
    plateau = {"monitor": "val_accuracy", "mode": "max", "patience": 50, "min_delta": 0.0}
    config, layout = setup(project, small_params, plateau=plateau, trainer={"max_epochs": 6})
    train(config, layout, "parity-rnn")
    training = json.loads(layout.run_file("parity-rnn").read_text())["seeds"][str(config.experiment_seed("parity-rnn"))]["training"]
    assert training["stopped"] == "plateau" and training["epochs"] == 1 and training["best_epoch"] == 1


def test_a_monitor_the_model_does_not_log_is_named_as_a_config_error(project, small_params):
    from pipeline.stages.train import train

    config, layout = setup(project, small_params, plateau={"monitor": "val_acuracy"})
    with pytest.raises(ConfigError) as info:
        train(config, layout, "parity-rnn")
    assert info.value.path == "experiments.parity-rnn.plateau.monitor"
    assert "val_acuracy" in info.value.message and "val_accuracy" in info.value.message


def test_divergence_is_recorded_as_an_outcome_through_zoo_train_and_evaluate(project, small_params):
    """Pascanu et al.'s exploding vanilla RNN, pushed over the edge: large recurrent weights,
    plain SGD with a huge step. The loss becomes NaN; the stage succeeds and says so."""
    from typer.testing import CliRunner

    from pipeline.cli import app

    setup(project, small_params, seeds=[1], init_scale=20.0, optimizer="sgd", lr=1e35, on_nonfinite_loss="record", trainer={"max_epochs": 3})
    layout = Layout(project)
    runner = CliRunner()
    trained = runner.invoke(app, ["train", "parity-rnn"])
    assert trained.exit_code == 0, trained.output
    assert "stopped diverged" in trained.output
    training = json.loads(layout.run_file("parity-rnn").read_text())["seeds"]["1"]
    record = training["training"]
    assert record["stopped"] == "diverged" and isinstance(record["diverged_step"], int)
    assert record["epochs"] == 1  # stopped in the first epoch
    assert layout.checkpoint("parity-rnn", 1).is_file()
    evaluated = runner.invoke(app, ["evaluate", "parity-rnn"])
    assert evaluated.exit_code == 0, evaluated.output
    metrics = json.loads(layout.metrics("parity-rnn").read_text())
    assert metrics["diverged"] == 1.0 and metrics["plateau"] == 0.0
    assert metrics["seeds"]["1"]["diverged_step"] == record["diverged_step"]
    assert all(v is None or math.isfinite(v) for v in metrics["seeds"]["1"].values())
    assert "accuracy" in metrics["seeds"]["1"]
    run = mlflow_client(project).get_run(training["run_id"])
    assert run.info.status == "FINISHED" and run.data.tags["zoo.stopped"] == "diverged"
    assert run.data.metrics["diverged"] == 1.0


def test_a_gan_that_diverges_is_recorded_too_and_has_no_gradient_norm(project, small_params, monkeypatch):
    from lightning_modules.gan import GAN
    from pipeline.stages.train import train

    original = GAN.critic_loss

    def poisoned(self, *args, **kwargs):
        loss, logs = original(self, *args, **kwargs)
        return (loss * float("nan"), logs) if int(self.generator_steps) >= 1 else (loss, logs)

    monkeypatch.setattr(GAN, "critic_loss", poisoned)
    config, layout = setup(project, small_params, name="ring-gan", dataset="ring", on_nonfinite_loss="record", trainer={"max_epochs": 3})
    train(config, layout, "ring-gan")
    (entry,) = json.loads(layout.run_file("ring-gan").read_text())["seeds"].values()
    assert entry["training"]["stopped"] == "diverged" and entry["training"]["diverged_step"] == 1
    assert "grad_norm" not in entry["training"]  # manual optimisation: no single gradient
    from pipeline.tasks import TASKS

    assert entry["training"]["monitor"] == TASKS["mixture-2d"].monitor  # the task's, with no plateau.monitor


def test_gradient_norm_statistics_are_the_global_norms_of_each_step():
    from pipeline.training.training_record import GradientNorms

    class Module(torch.nn.Module):
        automatic_optimization = True

    module = Module()
    module.a, module.b = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(1))
    norms = GradientNorms()
    expected = []
    for step in range(1, 101):
        module.a.grad, module.b.grad = torch.tensor([3.0 * step, 0.0]), torch.tensor([4.0 * step])
        norms.on_before_optimizer_step(None, module, None)
        expected.append(5.0 * step)
    module.a.grad = torch.tensor([float("inf"), 0.0])
    norms.on_before_optimizer_step(None, module, None)  # non-finite: left out of the statistics
    restored = GradientNorms()
    restored.load_state_dict(norms.state_dict())  # travels in the resume checkpoint
    summary = restored.summary()
    assert summary["max"] == pytest.approx(500.0)
    for q in (50, 90, 99):
        assert summary[f"p{q}"] == pytest.approx(np.percentile(expected, q))


def test_sgd_is_plain_by_default_and_adam_stays_the_default():
    from lightning_modules import MODELS
    from lightning_modules.settings import SequenceClassifierSettings

    def optimiser(**settings):
        return MODELS["rnn"].build("classifier", SequenceClassifierSettings(**settings), vocab_size=3, n_classes=2).configure_optimizers()

    sgd = optimiser(optimizer="sgd", lr=0.5)
    assert type(sgd) is torch.optim.SGD and sgd.defaults["momentum"] == 0.0 and sgd.defaults["lr"] == 0.5
    assert optimiser(optimizer="sgd", momentum=0.9).defaults["momentum"] == 0.9
    assert type(optimiser()) is torch.optim.Adam
    with pytest.raises(ValueError, match="momentum applies to optimizer 'sgd' only"):
        SequenceClassifierSettings(momentum=0.9)


def test_lr_halving_patience_halves_the_rate_when_val_loss_stops_improving():
    import pytorch_lightning as pl
    from torch.utils.data import DataLoader, TensorDataset

    from lightning_modules import MODELS
    from lightning_modules.settings import SequenceClassifierSettings

    def model(**settings):
        return MODELS["lstm"].build("classifier", SequenceClassifierSettings(**settings), vocab_size=3, n_classes=2)

    assert type(model().configure_optimizers()) is torch.optim.Adam  # constant unless asked
    # a rate so small the weights do not move: val_loss never improves, so after the first
    # epoch each epoch halves the rate (patience 0)
    lstm = model(lr=1e-20, lr_halving_patience=0, hidden_size=4, embedding_dim=2)
    generator = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.randint(1, 3, (16, 5), generator=generator), torch.full((16,), 5), torch.randint(0, 2, (16,), generator=generator))
    trainer = pl.Trainer(max_epochs=3, logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(lstm, DataLoader(data, batch_size=8), DataLoader(data, batch_size=8))
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(1e-20 / 4)


def test_seed_forms_give_the_list_of_seeds(small_params):
    params = small_params
    params["experiments"]["parity-rnn"].pop("seed", None)
    params["experiments"]["parity-rnn"]["seeds"] = [5, 6, 7]
    params["experiments"]["parity-lstm"]["seed"] = 9
    params["experiments"]["xml-mut1"].pop("seed", None)
    params["defaults"]["xml"].pop("seeds", None)
    config = config_mod.validate(params)
    assert config.experiment_seeds("parity-rnn") == [5, 6, 7] and config.experiment_seed("parity-rnn") == 5
    assert config.experiment_seeds("parity-lstm") == [9]  # its own seed over the task's seeds
    assert config.experiment_seeds("xml-mut1") == [params["seed"]]  # neither: the top-level seed


def test_deferred_check_records_the_first_nonfinite_step_and_stops(monkeypatch):
    """The GPU path (losses read back every check_every steps), run on the CPU: record mode
    stops training at the read-back and records the first bad step, not the step it was read."""
    from types import SimpleNamespace

    from pipeline.training.resume import FiniteLoss

    guard = FiniteLoss("x", check_every=5, on_nonfinite="record")
    loop = SimpleNamespace(total_batch_idx=0)
    trainer = SimpleNamespace(fit_loop=SimpleNamespace(epoch_loop=loop), current_epoch=0, should_stop=False)
    module = SimpleNamespace(device=torch.device("cpu"))
    for step in range(10):
        loop.total_batch_idx = step
        loss = torch.tensor(float("nan") if step >= 2 else 1.0)
        guard.on_train_batch_end(trainer, module, {"loss": loss}, None, step)
        assert trainer.should_stop == (step >= 4)  # read back after step 4 (every 5 steps)
        if trainer.should_stop:
            break
    assert guard.diverged["step"] == 2 and guard.diverged["key"] == "loss"
