"""Faults and interruptions (issue 7's matrix): a killed or interrupted training run resumes
where it stopped and ends exactly where an uninterrupted one does; a NaN loss stops training
at once; stages started together share one sqlite store; the same seed gives the same result.

Also here: an unreachable tracking server, corrupt or foreign checkpoints, a deleted MLflow
run. Rows tested elsewhere: bad settings and malformed YAML (test_config), missing or tampered
data and an interrupted fetch (test_cli), failing downloads (test_download).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from conftest import REPO, repo_params, shrink, write_params
from pipeline import config as config_mod
from pipeline.plumbing.errors import TrainingError
from pipeline.plumbing.paths import Layout

EXPERIMENT = "parity-lstm"


def small_project(folder: Path, experiments: tuple[str, ...] = (EXPERIMENT,), **trainer) -> Path:
    """A project with one dataset and a few experiments, a few seconds an epoch."""
    params = shrink(repo_params())
    params["experiments"] = {k: params["experiments"][k] for k in experiments}
    params["datasets"] = {"parity": {**params["datasets"]["parity"], "n_train": 4000}}
    params.pop("references", None)
    for body in params["experiments"].values():
        body["trainer"].update({"max_epochs": 3, "limit_train_batches": 16, **trainer})
    folder.mkdir(parents=True, exist_ok=True)
    write_params(folder, params)
    return folder


def env() -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if k not in ("ZOO_ROOT", "MLFLOW_TRACKING_URI")}
    out["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{out.get('PATH', '')}"
    out["PYTHONPATH"] = str(REPO)
    return out


def zoo(folder: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=folder, env=env(), capture_output=True, text=True, timeout=600)
    if check:
        assert proc.returncode == 0, f"zoo {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc


def start_training(folder: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline", "train", EXPERIMENT], cwd=folder, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not path.is_file():
        assert proc.poll() is None, f"training ended before {path} appeared:\n{proc.communicate()[1]}"
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.01)


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return torch.load(Layout(folder).checkpoint(EXPERIMENT), map_location="cpu", weights_only=False)["state_dict"]


def seed_of(folder: Path, name: str = EXPERIMENT) -> int:
    return config_mod.load(folder / "params.yaml").experiment_seed(name)


def mlflow_runs(folder: Path):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{folder / 'mlflow.db'}")
    exp = client.get_experiment_by_name("rnngan-zoo/parity")  # the task's experiment
    return client, client.search_runs([exp.experiment_id], "tags.`zoo.kind` = 'experiment'")


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    folder = small_project(tmp_path_factory.mktemp("faults") / "straight")
    zoo(folder, "fetch", "parity")
    zoo(folder, "train", EXPERIMENT)
    zoo(folder, "evaluate", EXPERIMENT)
    return folder


def assert_same_model(a: Path, b: Path) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        torch.testing.assert_close(wa[key], wb[key], rtol=0, atol=1e-6, msg=key)


@pytest.mark.slow
def test_sigkill_mid_epoch_resumes_from_checkpoint_and_matches_uninterrupted_run(tmp_path, uninterrupted):
    folder = small_project(tmp_path / "killed")
    zoo(folder, "fetch", "parity")
    layout = Layout(folder)
    proc = start_training(folder)
    seed = seed_of(folder)
    wait_for(layout.seed_resume_dir(EXPERIMENT, seed) / "last.ckpt", proc)  # epoch 1 done: kill in epoch 2
    proc.kill()
    proc.wait()
    run_id = json.loads((layout.seed_resume_dir(EXPERIMENT, seed) / "resume.json").read_text())["run_id"]
    assert not layout.model_dir(EXPERIMENT).exists()  # nothing half-written

    resumed = zoo(folder, "train", EXPERIMENT)
    assert f"resuming {EXPERIMENT} seed {seed} at step" in resumed.stdout
    assert json.loads(layout.run_file(EXPERIMENT).read_text())["seeds"][str(seed)]["run_id"] == run_id  # the same MLflow run
    assert not layout.resume_dir(EXPERIMENT).exists()
    assert_same_model(folder, uninterrupted)
    assert layout.curves(EXPERIMENT).read_text() == Layout(uninterrupted).curves(EXPERIMENT).read_text()  # every epoch's curve

    zoo(folder, "evaluate", EXPERIMENT)
    metrics = json.loads(layout.metrics(EXPERIMENT).read_text())
    expected = json.loads(Layout(uninterrupted).metrics(EXPERIMENT).read_text())
    assert metrics["seeds"] == {str(seed): pytest.approx(expected["seeds"][str(seed)], abs=1e-6)}  # gradient norms and record too

    client, runs = mlflow_runs(folder)
    assert [r.info.run_id for r in runs] == [run_id]
    assert runs[0].info.status == "FINISHED"
    epochs = {int(m.value) for m in client.get_metric_history(run_id, "epoch")}
    assert epochs == {0, 1, 2}  # the whole history, across the kill
    assert len(client.get_metric_history(run_id, "val_loss")) == 3


@pytest.mark.slow
def test_ctrl_c_saves_a_checkpoint_marks_the_run_killed_and_the_next_run_resumes(tmp_path, uninterrupted):
    folder = small_project(tmp_path / "interrupted")
    zoo(folder, "fetch", "parity")
    layout = Layout(folder)
    proc = start_training(folder)
    wait_for(layout.seed_resume_dir(EXPERIMENT, seed_of(folder)) / "last.ckpt", proc)
    time.sleep(0.2)  # into the second epoch
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr and f"zoo train {EXPERIMENT}` resumes" in stderr
    assert "Traceback" not in stderr
    _, runs = mlflow_runs(folder)
    assert [r.info.status for r in runs] == ["KILLED"]
    assert not layout.model_dir(EXPERIMENT).exists()

    resumed = zoo(folder, "train", EXPERIMENT)
    assert "resuming" in resumed.stdout
    _, runs = mlflow_runs(folder)
    assert [r.info.status for r in runs] == ["FINISHED"]
    assert_same_model(folder, uninterrupted)  # the checkpoint taken mid-epoch resumes exactly


@pytest.mark.slow
@pytest.mark.parametrize("lands", ["last training batch", "validation", "epoch end", "last epoch"])
def test_ctrl_c_anywhere_in_an_epoch_resumes_exactly(tmp_path, uninterrupted, monkeypatch, lands):
    """Ctrl-C (the flag it sets) after an epoch's last training batch, in validation or at the
    epoch's end takes effect at the next epoch's first batch, a checkpoint that resumes
    exactly; in the last epoch the seed finishes first and then the stage stops."""
    import pipeline.training.resume as resume_mod
    from pipeline.plumbing.errors import Interrupted
    from pipeline.stages.fetch import fetch
    from pipeline.stages.train import train

    epoch = 2 if lands == "last epoch" else 1

    class CtrlC(resume_mod.GracefulInterrupt):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if lands == "last training batch" and trainer.current_epoch == epoch and batch_idx + 1 == trainer.num_training_batches:
                self.requested = True
            super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

        def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
            if lands in ("validation", "last epoch") and not trainer.sanity_checking and trainer.current_epoch == epoch and batch_idx == 0:
                self.requested = True

        def on_train_epoch_end(self, trainer, pl_module):
            if lands == "epoch end" and trainer.current_epoch == epoch:
                self.requested = True

    folder = small_project(tmp_path / "interrupted")
    config, layout = config_mod.load(folder / "params.yaml"), Layout(folder)
    fetch(config, layout, "parity")
    monkeypatch.setattr(resume_mod, "GracefulInterrupt", CtrlC)
    with pytest.raises(Interrupted, match="finished" if lands == "last epoch" else "resumes from it"):
        train(config, layout, EXPERIMENT)
    monkeypatch.undo()
    checkpoint = layout.seed_resume_dir(EXPERIMENT, seed_of(folder)) / "last.ckpt"
    if lands != "last epoch":  # after the first batch of the next epoch
        assert torch.load(checkpoint, map_location="cpu", weights_only=False)["epoch"] == epoch + 1
    train(config, layout, EXPERIMENT)
    assert_same_model(folder, uninterrupted)
    assert layout.curves(EXPERIMENT).read_text() == Layout(uninterrupted).curves(EXPERIMENT).read_text()


def test_changed_settings_do_not_resume_an_old_checkpoint(tmp_path):
    from pipeline.training.resume import ResumeState

    state = ResumeState(tmp_path / "checkpoints" / "x", "fingerprint-a")
    state.start("run-1")
    (state.folder / "last.ckpt").write_bytes(b"checkpoint")
    assert state.find() == (state.folder / "last.ckpt", "run-1", None)
    other = ResumeState(state.folder, "fingerprint-b")
    checkpoint, run_id, note = other.find()
    assert checkpoint is None and run_id is None and "starting afresh" in note
    assert not state.folder.exists()


def test_nan_loss_stops_training_names_the_step_and_writes_no_model(project, monkeypatch):
    from lightning_modules.recurrent import SequenceClassifier
    from pipeline.stages.fetch import fetch
    from pipeline.stages.train import train

    original = SequenceClassifier.training_step

    def poisoned(self, batch, batch_idx):
        loss = original(self, batch, batch_idx)
        return loss * float("nan") if self.global_step >= 2 else loss

    monkeypatch.setattr(SequenceClassifier, "training_step", poisoned)
    config = config_mod.load(project / "params.yaml")
    layout = Layout(project)
    fetch(config, layout, "parity")
    with pytest.raises(TrainingError, match=r"experiments\.parity-rnn: loss became nan at step 2"):
        train(config, layout, "parity-rnn")
    assert not layout.model_dir("parity-rnn").exists()
    assert not (project / "models").exists()  # no temporary folder left either
    assert not list(layout.resume_dir("parity-rnn").rglob("*.tmp")) and not list(layout.resume_dir("parity-rnn").rglob("done"))
    _, runs = mlflow_runs(project)
    assert [(r.info.run_name, r.info.status) for r in runs] == [(f"parity-rnn seed {seed_of(project, 'parity-rnn')}", "FAILED")]


def test_same_seed_gives_the_same_metrics(tmp_path):
    from pipeline.stages.evaluate import evaluate
    from pipeline.stages.fetch import fetch
    from pipeline.stages.train import train

    results = []
    for name in ("first", "second"):
        folder = small_project(tmp_path / name, ("parity-rnn",), max_epochs=1, limit_train_batches=6)
        config, layout = config_mod.load(folder / "params.yaml"), Layout(folder)
        fetch(config, layout, "parity")
        train(config, layout, "parity-rnn")
        evaluate(config, layout, "parity-rnn")
        results.append(json.loads(layout.metrics("parity-rnn").read_text()))
    assert results[0] == results[1]  # bit for bit on CPU


@pytest.mark.slow
def test_stages_started_together_share_one_sqlite_store(tmp_path):
    """Two training stages at once against a store neither has created yet: the table
    creation race and 'database is locked' must not fail either of them."""
    folder = small_project(tmp_path / "together", ("parity-rnn", "parity-lstm"), max_epochs=1, limit_train_batches=4)
    zoo(folder, "fetch", "parity")
    procs = [
        subprocess.Popen([sys.executable, "-m", "pipeline", "train", name], cwd=folder, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for name in ("parity-rnn", "parity-lstm")
    ]
    for proc in procs:
        _, stderr = proc.communicate(timeout=600)
        assert proc.returncode == 0, stderr
    _, runs = mlflow_runs(folder)
    assert sorted((r.info.run_name, r.info.status) for r in runs) == [(f"{name} seed {seed_of(folder, name)}", "FINISHED") for name in ("parity-lstm", "parity-rnn")]


# --- tracking server, checkpoints, deleted runs (through the CLI, as a user meets them) ---

def cli(*args: str):
    from typer.testing import CliRunner

    from pipeline.cli import app

    return CliRunner().invoke(app, list(args))


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def silent_server():
    """An address on this machine that takes the connection and never answers (a listening
    socket nobody accepts from): a hung server, without sending a packet off the machine."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.mark.parametrize("kind", ["refused", "no-answer"])
def test_unreachable_tracking_server_fails_fast_naming_it_before_training(project, small_params, kind, request):
    uri = f"http://127.0.0.1:{free_port()}" if kind == "refused" else request.getfixturevalue("silent_server")
    small_params["tracking"]["uri"] = uri
    write_params(project, small_params)
    assert cli("fetch", "parity").exit_code == 0
    started = time.monotonic()
    result = cli("train", "parity-rnn")
    assert time.monotonic() - started < 15
    assert result.exit_code == 4, result.output
    assert uri in result.output and "Traceback" not in result.output
    assert not (project / "models").exists() and not (project / "checkpoints").exists()


@pytest.fixture
def trained(project):
    assert cli("fetch", "parity").exit_code == 0
    result = cli("train", "parity-rnn")
    assert result.exit_code == 0, result.output
    return project


def test_corrupt_checkpoint_is_named(trained):
    checkpoint = Layout(trained).checkpoint("parity-rnn")
    checkpoint.write_bytes(checkpoint.read_bytes()[:1000])
    result = cli("evaluate", "parity-rnn")
    assert result.exit_code == 6, result.output
    assert str(checkpoint) in result.output and "Traceback" not in result.output
    assert not (trained / "metrics" / "parity-rnn.json").exists()


def test_checkpoint_of_another_architecture_is_named(trained):
    checkpoint = Layout(trained).checkpoint("parity-rnn")
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    state["hyper_parameters"]["hidden_size"] = 16  # weights of a 64-unit network, hyper-parameters of a 16-unit one
    torch.save(state, checkpoint)
    result = cli("evaluate", "parity-rnn")
    assert result.exit_code == 6, result.output
    assert str(checkpoint) in result.output and "model 'rnn'" in result.output


def test_evaluation_of_a_deleted_run_logs_into_a_new_tagged_run(trained):
    (entry,) = json.loads((trained / "models" / "parity-rnn" / "run.json").read_text())["seeds"].values()
    run_id = entry["run_id"]
    client, _ = mlflow_runs(trained)
    client.delete_run(run_id)
    result = cli("evaluate", "parity-rnn")
    assert result.exit_code == 0, result.output
    _, runs = mlflow_runs(trained)
    assert len(runs) == 1 and runs[0].info.run_id != run_id
    assert run_id in runs[0].data.tags["zoo.note"] and "not found" in runs[0].data.tags["zoo.note"]
    assert "accuracy" in runs[0].data.metrics


def test_interrupted_evaluation_leaves_no_partial_output(trained, monkeypatch):
    from pipeline.tasks.parity import ParityTask

    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(ParityTask, "evaluate", interrupted)
    result = cli("evaluate", "parity-rnn")
    assert result.exit_code == 130
    assert not (trained / "metrics").exists() or not list((trained / "metrics").iterdir())
    assert not (trained / "plots").exists() or not list((trained / "plots").iterdir())


def test_nan_in_a_gan_stops_training_too(project, monkeypatch):
    """GANs optimise manually; their training_step returns the players' losses for the guard."""
    from lightning_modules.gan import GAN
    from pipeline.stages.fetch import fetch
    from pipeline.stages.train import train

    original = GAN.critic_loss

    def poisoned(self, *args, **kwargs):
        loss, logs = original(self, *args, **kwargs)
        return (loss * float("nan"), logs) if int(self.generator_steps) >= 1 else (loss, logs)

    monkeypatch.setattr(GAN, "critic_loss", poisoned)
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["experiments"]["ring-gan"]["batch_size"] = 64  # several batches in the shrunken data
    write_params(project, params)
    config = config_mod.load(project / "params.yaml")
    layout = Layout(project)
    fetch(config, layout, "ring")
    with pytest.raises(TrainingError, match=r"experiments\.ring-gan: d_loss became nan at step 1"):
        train(config, layout, "ring-gan")
    assert not layout.model_dir("ring-gan").exists()
