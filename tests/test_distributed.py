"""Scale-out on Lightning's own engine: one experiment trained with ``strategy: ddp`` in two
CPU processes (gloo), as ``zoo train --set`` runs it. Only rank zero tracks and writes."""

from __future__ import annotations

import json
import math

import pytest

from test_faults import env, mlflow_runs, small_project, zoo

pytestmark = pytest.mark.slow


def test_ddp_on_two_cpu_processes_gives_one_run_and_one_model(tmp_path):
    folder = small_project(tmp_path / "ddp", ("parity-rnn",), max_epochs=2, limit_train_batches=8)
    zoo(folder, "fetch", "parity")
    trained = zoo(
        folder, "train", "parity-rnn",
        "--set", "trainer.strategy=ddp", "--set", "trainer.devices=2", "--set", "trainer.accelerator=cpu",
    )
    assert "GLOBAL_RANK: 1" in trained.stderr + trained.stdout  # really two processes
    assert trained.stdout.count("trained parity-rnn (") == 1  # one report, from rank zero
    assert sorted(p.name for p in (folder / "models").iterdir()) == ["parity-rnn"]
    assert not (folder / "checkpoints" / "parity-rnn").exists()

    zoo(folder, "evaluate", "parity-rnn")
    metrics = json.loads((folder / "metrics" / "parity-rnn.json").read_text())
    assert 0.0 <= metrics["accuracy"] <= 1.0 and math.isfinite(metrics["grad_log10_decay"])

    client, runs = mlflow_runs(folder)
    assert len(runs) == 1
    run = runs[0]
    assert run.info.status == "FINISHED"
    assert run.data.params["trainer.strategy"] == "ddp" and run.data.params["trainer.devices"] == "2"
    assert len(client.get_metric_history(run.info.run_id, "val_loss")) == 2  # both epochs, logged once each
