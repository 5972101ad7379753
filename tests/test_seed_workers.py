"""An experiment's seeds trained side by side in forked processes (``seed_workers``): the same
models as training them in turn with as many threads, every seed's MLflow run finished, and a
failure in one seed fails the stage with that seed's message and exit code."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import torch
import yaml

from conftest import write_params


def zoo(project, *args, threads=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ZOO_", "MLFLOW_"))}
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=project, env=env, capture_output=True, text=True, timeout=600)


def prepare(project, small_params, workers, **changes):
    params = dict(small_params, seed_workers=workers)
    params["experiments"]["parity-rnn"].pop("seed", None)
    params["experiments"]["parity-rnn"].update(seeds=[1, 2, 3], **changes)
    params["experiments"]["parity-rnn"]["trainer"]["max_epochs"] = 2
    write_params(project, params)
    out = zoo(project, "fetch", "parity")
    assert out.returncode == 0, out.stderr


def weights(project, seed):
    return torch.load(project / "models" / "parity-rnn" / f"seed-{seed}" / "model.ckpt", weights_only=False)["state_dict"]


def test_seeds_side_by_side_give_the_models_of_seeds_in_turn(project, small_params, tmp_path):
    prepare(project, small_params, workers=2)
    out = zoo(project, "train", "parity-rnn")
    assert out.returncode == 0, out.stderr
    side_by_side = {seed: weights(project, seed) for seed in (1, 2, 3)}
    run = json.loads((project / "models" / "parity-rnn" / "run.json").read_text())
    assert list(run["seeds"]) == ["1", "2", "3"]
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    assert {client.get_run(s["run_id"]).info.status for s in run["seeds"].values()} == {"FINISHED"}

    # in turn, one thread each (as each forked process has on two cores): the same weights
    params = yaml.safe_load((project / "params.yaml").read_text())
    write_params(project, dict(params, seed_workers=1))
    out = zoo(project, "train", "parity-rnn", threads=max(1, (os.cpu_count() or 1) // 2))
    assert out.returncode == 0, out.stderr
    for seed in (1, 2, 3):
        in_turn = weights(project, seed)
        assert all(torch.equal(side_by_side[seed][k], in_turn[k]) for k in in_turn), seed


def test_a_failing_seed_fails_the_stage_with_its_exit_code_and_message(project, small_params):
    # a NaN loss under on_nonfinite_loss: fail is a TrainingError (exit code 5) in every seed
    prepare(project, small_params, workers=2, optimizer="sgd", init_scale=20.0, lr=1e35)
    out = zoo(project, "train", "parity-rnn")
    assert out.returncode == 5, (out.returncode, out.stderr[-2000:])
    assert "parity-rnn" in out.stderr and "Traceback" not in out.stderr.splitlines()[-1]
    assert not (project / "models" / "parity-rnn").exists()


def test_auto_trains_every_seed_at_once_up_to_one_and_a_half_processes_a_core(project, small_params, monkeypatch):
    from pipeline.config import load
    from pipeline.stages import train

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # auto trains in turn on a GPU
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    write_params(project, dict(small_params, seed_workers="auto"))
    config = load(project / "params.yaml")
    exp = config.experiment("parity-rnn")
    for cores, seeds, expected in ((2, 3, 3), (2, 5, 3), (4, 3, 3), (4, 8, 6), (1, 3, 1), (2, 1, 1)):
        monkeypatch.setattr(train.os, "cpu_count", lambda cores=cores: cores)
        assert train.seed_workers(config, exp, seeds) == expected, (cores, seeds)
