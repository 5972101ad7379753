"""Training curves (pipeline/training/history.py): the rows every family's logged metrics become."""

from __future__ import annotations

import math

import torch

from pipeline.training.history import EpochHistory, epoch_rows, read_csv, to_csv


def test_epoch_rows_split_the_prefix_and_drop_diagnostics_and_non_finite_values():
    metrics = {
        "train_loss": torch.tensor(0.5),
        "val_loss": torch.tensor(0.25),
        "val_bpc": 0.36,
        "train_d_loss": 1.2,
        "grad_norm": 3.0,  # per-step diagnostic: no split
        "generator_steps": 40.0,
        "val_accuracy": float("nan"),
    }
    rows = epoch_rows(3, metrics)
    assert {(r["metric"], r["split"]) for r in rows} == {("loss", "train"), ("loss", "validation"), ("bpc", "validation"), ("d_loss", "train")}
    assert all(r["epoch"] == 3 and math.isfinite(r["value"]) for r in rows)


def test_history_survives_a_checkpoint_round_trip_and_a_repeated_epoch(tmp_path):
    class FakeTrainer:
        sanity_checking = False
        current_epoch = 0
        callback_metrics = {"train_loss": torch.tensor(1.0)}

    history = EpochHistory()
    trainer = FakeTrainer()
    history.on_train_epoch_end(trainer, None)
    restored = EpochHistory()
    restored.load_state_dict(history.state_dict())
    trainer.current_epoch, trainer.callback_metrics = 1, {"train_loss": torch.tensor(0.5)}
    restored.on_train_epoch_end(trainer, None)
    restored.on_train_epoch_end(trainer, None)  # the same epoch again (a resumed run) replaces it
    restored.write(tmp_path / "curves.csv")
    rows = read_csv(tmp_path / "curves.csv")
    assert [(r["epoch"], r["value"]) for r in rows] == [(1, 1.0), (2, 0.5)]
    assert to_csv(rows).splitlines()[0] == "epoch,metric,split,value"
