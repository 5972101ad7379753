"""No failure leaves a trace (issue 21): a failure injected at each step of ``zoo train`` and
``zoo evaluate`` leaves no MLflow run RUNNING, no resume folder with nothing to resume, no
half-written output; a run left RUNNING by a SIGKILLed training is closed as KILLED, and its
resume folder removed, once the experiment's outputs are back (here as DVC's run-cache
restores them: copied in, no training)."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml
from typer.testing import CliRunner

from conftest import write_params
from pipeline.cli import app
from pipeline.plumbing.paths import Layout

EXPERIMENT = "parity-rnn"
runner = CliRunner()


def cli(*args: str):
    return runner.invoke(app, list(args))


def runs(folder):
    """Every run of the project's store: {run id: status}."""
    from mlflow.tracking import MlflowClient

    if not (folder / "mlflow.db").is_file():
        return {}
    client = MlflowClient(tracking_uri=f"sqlite:///{folder / 'mlflow.db'}")
    ids = [e.experiment_id for e in client.search_experiments()]
    return {r.info.run_id: r.info.status for r in client.search_runs(ids)}


def boom(*args, **kwargs):
    raise RuntimeError("injected failure")


class FailAt:
    """A callback that fails training at a given point of the fit."""

    def __init__(self, hook: str, epoch: int = 0, exc=RuntimeError):
        import pytorch_lightning as pl

        self.callback = type("FailAt", (pl.Callback,), {hook: self._fail})()
        self.epoch, self.exc = epoch, exc

    def _fail(self, trainer, *args):
        if trainer.current_epoch >= self.epoch:
            raise self.exc("injected failure")


def inject_callback(monkeypatch, failing: FailAt) -> None:
    from pipeline.tasks.parity import ParityTask

    monkeypatch.setattr(ParityTask, "training_callbacks", lambda self, *a, **k: [failing.callback])


@pytest.fixture
def fetched(project):
    assert cli("fetch", "parity").exit_code == 0
    return project


def train_failure_cases():
    return {
        # seed_run: the run exists, its dataset input cannot be logged
        "after run creation": lambda mp: mp.setattr("pipeline.plumbing.tracking.log_dataset", boom),
        "during the first epoch": lambda mp: inject_callback(mp, FailAt("on_train_batch_end")),
        "ctrl-c in the first epoch": lambda mp: inject_callback(mp, FailAt("on_train_batch_end", exc=KeyboardInterrupt)),
        "saving the model": lambda mp: mp.setattr("pipeline.stages.train.keep_model", boom),
        "logging the finished seed": lambda mp: mp.setattr("pipeline.plumbing.tracking.log_metrics", boom),
    }


@pytest.mark.parametrize("step", list(train_failure_cases()))
def test_a_failure_at_each_step_of_train_closes_the_run_and_removes_what_cannot_be_resumed(fetched, step):
    with pytest.MonkeyPatch.context() as injected:
        train_failure_cases()[step](injected)
        result = cli("train", EXPERIMENT)
    assert result.exit_code != 0
    statuses = runs(fetched)
    assert len(statuses) == 1, statuses
    (status,) = statuses.values()
    assert status == ("KILLED" if step.startswith("ctrl-c") else "FAILED")
    layout = Layout(fetched)
    assert not layout.model_dir(EXPERIMENT).exists()
    seed_folder = next(layout.resume_dir(EXPERIMENT).glob("seed-*"), None)
    if seed_folder is None:
        assert not layout.resume_dir(EXPERIMENT).exists()  # nothing to resume: nothing left
    else:
        assert (seed_folder / "last.ckpt").is_file(), sorted(p.name for p in seed_folder.iterdir())  # kept only to resume from

    # the next run, without the failure, trains to the end and leaves nothing RUNNING
    assert cli("train", EXPERIMENT).exit_code == 0
    assert "RUNNING" not in runs(fetched).values()
    assert not layout.resume_dir(EXPERIMENT).exists()


def test_a_failure_after_an_epoch_checkpoint_keeps_it_and_the_next_train_resumes_the_failed_run(fetched):
    params = yaml.safe_load((fetched / "params.yaml").read_text())
    params["experiments"][EXPERIMENT]["trainer"]["max_epochs"] = 2
    write_params(fetched, params)
    with pytest.MonkeyPatch.context() as injected:
        inject_callback(injected, FailAt("on_train_epoch_start", epoch=1))
        assert cli("train", EXPERIMENT).exit_code == 1
    (run_id,) = runs(fetched)
    assert runs(fetched)[run_id] == "FAILED"
    layout = Layout(fetched)
    (seed_folder,) = layout.resume_dir(EXPERIMENT).glob("seed-*")
    assert (seed_folder / "last.ckpt").is_file()

    result = cli("train", EXPERIMENT)
    assert result.exit_code == 0, result.output
    assert "resuming" in result.output
    assert runs(fetched) == {run_id: "FINISHED"}


def test_a_failure_while_writing_the_model_folder_keeps_the_finished_seeds_and_leaves_no_run_running(fetched):
    with pytest.MonkeyPatch.context() as injected:
        injected.setattr("pipeline.stages.train.write_text", boom)
        assert cli("train", EXPERIMENT).exit_code == 1
    assert set(runs(fetched).values()) == {"FINISHED"}  # the seed trained; only the stage's last step failed
    layout = Layout(fetched)
    assert not layout.model_dir(EXPERIMENT).exists()
    (seed_folder,) = layout.resume_dir(EXPERIMENT).glob("seed-*")
    assert (seed_folder / "done" / "seed.json").is_file()  # the next train takes it as it is
    result = cli("train", EXPERIMENT)
    assert result.exit_code == 0 and "not trained again" in result.output


@pytest.fixture
def trained(fetched):
    assert cli("train", EXPERIMENT).exit_code == 0
    return fetched


def evaluate_failure_cases():
    from pipeline.tasks.parity import ParityTask

    return {
        "measuring": lambda mp: mp.setattr(ParityTask, "evaluate", boom),
        "logging into the training run": lambda mp: mp.setattr("pipeline.plumbing.tracking.log_metrics", boom),
        "logging into a new run (the training run deleted)": lambda mp: mp.setattr("mlflow.tracking.MlflowClient.log_artifacts", boom),
    }


@pytest.mark.parametrize("step", list(evaluate_failure_cases()))
def test_a_failure_at_each_step_of_evaluate_leaves_no_run_running_and_no_output(trained, monkeypatch, step):
    from mlflow.tracking import MlflowClient

    layout = Layout(trained)
    if "deleted" in step:
        (entry,) = json.loads(layout.run_file(EXPERIMENT).read_text())["seeds"].values()
        MlflowClient(tracking_uri=f"sqlite:///{trained / 'mlflow.db'}").delete_run(entry["run_id"])
    before = runs(trained)
    evaluate_failure_cases()[step](monkeypatch)
    result = cli("evaluate", EXPERIMENT)
    assert result.exit_code == 1, result.output
    after = runs(trained)
    assert "RUNNING" not in after.values()
    assert {k: v for k, v in after.items() if k in before} == before  # the training runs as they were
    if "deleted" in step:
        assert list(set(after) - set(before)) and all(after[k] == "FAILED" for k in set(after) - set(before))
    for output in (layout.metrics(EXPERIMENT), layout.plots(EXPERIMENT), layout.samples(EXPERIMENT)):
        assert not output.exists(), output


@pytest.mark.slow
def test_a_sigkilled_training_restored_from_the_run_cache_is_closed_as_killed_and_its_resume_folder_removed(tmp_path, monkeypatch):
    """The issue's case: ``dvc repro -f -s train@X`` killed, then ``dvc repro``, which restores
    X's outputs from the run-cache without training. Here: train, keep the outputs, train again
    (DVC removes the outputs first) and SIGKILL it after its first epoch, put the outputs back,
    and run no stage: ``zoo warm`` (``make repro``) closes the run once its command is done;
    ``zoo evaluate`` and ``zoo compare`` call the same ``leftovers.close_stale_runs``."""
    from test_faults import EXPERIMENT as KILLED_EXPERIMENT
    from test_faults import small_project, start_training, wait_for, zoo

    folder = small_project(tmp_path / "killed")
    layout = Layout(folder)
    monkeypatch.chdir(folder)  # the first training in this process; the killed one in its own
    monkeypatch.delenv("ZOO_ROOT", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert cli("fetch", "parity").exit_code == 0
    assert cli("train", KILLED_EXPERIMENT).exit_code == 0
    cache = tmp_path / "run-cache"
    shutil.copytree(layout.model_dir(KILLED_EXPERIMENT), cache)
    shutil.rmtree(layout.model_dir(KILLED_EXPERIMENT))

    proc = start_training(folder)
    (seed,) = json.loads((cache / "run.json").read_text())["seeds"]
    wait_for(layout.seed_resume_dir(KILLED_EXPERIMENT, int(seed)) / "last.ckpt", proc)
    proc.kill()
    proc.wait()
    killed = json.loads((layout.seed_resume_dir(KILLED_EXPERIMENT, int(seed)) / "resume.json").read_text())["run_id"]
    assert runs(folder)[killed] == "RUNNING"

    shutil.copytree(cache, layout.model_dir(KILLED_EXPERIMENT))  # the run-cache restore
    # DVC restores evaluate and compare as well: no stage runs, only `make repro`'s `zoo warm`
    swept = zoo(folder, "warm", "true")
    assert f"closed run {killed}" in swept.stdout
    statuses = runs(folder)
    assert statuses[killed] == "KILLED"
    assert "RUNNING" not in statuses.values()
    assert not layout.resume_dir(KILLED_EXPERIMENT).exists()


def test_close_stale_runs_leaves_a_live_process_alone_and_closes_a_dead_ones(trained):
    """A run whose process is alive on this machine is training right now (another ``zoo train``
    of the experiment): neither it nor the resume folder is touched; once the process is gone,
    ``zoo compare`` closes it."""
    import os
    import socket
    import subprocess

    from mlflow.tracking import MlflowClient

    from pipeline import config as config_mod
    from pipeline.plumbing import leftovers

    client = MlflowClient(tracking_uri=f"sqlite:///{trained / 'mlflow.db'}")
    layout = Layout(trained)
    experiment_id = json.loads(layout.run_file(EXPERIMENT).read_text())["experiment_id"]
    sleeper = subprocess.Popen(["sleep", "60"])
    tags = {"zoo.kind": "experiment", "zoo.experiment": EXPERIMENT, leftovers.TAG_HOST: socket.gethostname(), leftovers.TAG_PID: str(sleeper.pid)}
    live = client.create_run(experiment_id, tags=tags).info.run_id
    layout.seed_resume_dir(EXPERIMENT, 0).mkdir(parents=True)
    config = config_mod.load(trained / "params.yaml")
    try:
        assert leftovers.close_stale_runs(client, config, layout) == []
        assert client.get_run(live).info.status == "RUNNING" and layout.resume_dir(EXPERIMENT).exists()
        other_host = client.create_run(experiment_id, tags={**tags, leftovers.TAG_HOST: "elsewhere"}).info.run_id
    finally:
        sleeper.kill()
        sleeper.wait()
    assert os.path.exists(trained / "mlflow.db")
    assert cli("compare").exit_code == 0
    assert client.get_run(live).info.status == "KILLED"
    assert client.get_run(other_host).info.status == "RUNNING"  # another machine's process cannot be told dead
    assert layout.resume_dir(EXPERIMENT).exists()  # which may still train into it


def test_a_seed_process_killed_outright_has_its_run_closed_by_the_stage(project, small_params):
    """Seeds side by side (``seed_workers``): a forked seed process SIGKILLed in its first epoch
    cannot close its run; the stage that forked it does, and drops its empty resume folder, while
    the seeds beside it finish and keep their results for the next run."""
    import os
    import signal

    import pytorch_lightning as pl
    import torch

    class KillSeedTwo(pl.Callback):
        def on_train_batch_end(self, *args):
            if torch.initial_seed() == 2:  # pl.seed_everything(seed) in the seed's process
                os.kill(os.getpid(), signal.SIGKILL)

    params = dict(small_params, seed_workers=2)
    params["experiments"][EXPERIMENT].pop("seed", None)
    params["experiments"][EXPERIMENT]["seeds"] = [1, 2, 3]
    write_params(project, params)
    assert cli("fetch", "parity").exit_code == 0
    with pytest.MonkeyPatch.context() as injected:
        from pipeline.tasks.parity import ParityTask

        injected.setattr(ParityTask, "training_callbacks", lambda self, *a, **k: [KillSeedTwo()])
        result = cli("train", EXPERIMENT)
    assert result.exit_code == 1 and "seed 2 ended without a result" in result.output, result.output
    statuses = runs(project)
    assert sorted(statuses.values()) == ["FINISHED", "FINISHED", "KILLED"], statuses
    layout = Layout(project)
    assert not layout.seed_resume_dir(EXPERIMENT, 2).exists()
    assert all((layout.seed_resume_dir(EXPERIMENT, s) / "done" / "seed.json").is_file() for s in (1, 3))


@pytest.mark.parametrize("one_off", [True, False])
def test_compare_removes_an_interrupted_runs_folder_only_when_the_outputs_supersede_it(trained, one_off):
    """Ctrl-C in a second training of a trained experiment: with the current settings its
    checkpoint is superseded by the outputs and goes; with a one-off ``--set`` it stays for
    ``zoo train --set ...`` to resume."""
    params = yaml.safe_load((trained / "params.yaml").read_text())
    params["experiments"][EXPERIMENT]["trainer"]["max_epochs"] = 2
    write_params(trained, params)
    assert cli("train", EXPERIMENT).exit_code == 0  # the outputs: two epochs
    settings = ["--set", "experiments.parity-rnn.hidden_size=8"] if one_off else []
    with pytest.MonkeyPatch.context() as injected:
        inject_callback(injected, FailAt("on_train_epoch_start", epoch=1, exc=KeyboardInterrupt))
        assert cli("train", EXPERIMENT, *settings).exit_code == 130
    layout = Layout(trained)
    assert next(layout.resume_dir(EXPERIMENT).glob("seed-*/last.ckpt"))
    assert "RUNNING" not in runs(trained).values()

    assert cli("compare").exit_code == 0
    assert layout.resume_dir(EXPERIMENT).exists() == one_off
    if one_off:
        result = cli("train", EXPERIMENT, *settings)
        assert result.exit_code == 0 and "resuming" in result.output, result.output
