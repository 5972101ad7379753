"""The plateau rule's warm-up: patience counts only from epoch `warmup` on, so a model whose
monitor sits flat before it takes off (a 2-D GAN) is not stopped in that stretch. Its
ceiling: a monitor at its best possible value (an accuracy of 1.0) stops training there."""

from __future__ import annotations

import pytorch_lightning as pl
import torch

from pipeline.training.training_record import PlateauStopping

CURVE = [0, 0, 0, 0, 0, 0, 5, 10, 20, 20.5, 20.2, 20.4, 20.1, 20.3, 20.2, 20.0]  # the monitor per epoch


class Scripted(pl.LightningModule):
    """Logs CURVE[epoch] as its validation monitor; trains a single weight on nothing."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))

    def training_step(self, batch, batch_idx):
        return (self.w - 1).pow(2).sum()

    def validation_step(self, batch, batch_idx):
        self.log("val_score", float(CURVE[min(self.current_epoch, len(CURVE) - 1)]))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def epochs_run(**kwargs) -> tuple[int, int]:
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.zeros(2, 1)), batch_size=2)
    kwargs = {"patience": 3, **kwargs}
    stopper = PlateauStopping(monitor="val_score", mode="max", min_delta=1.0, **kwargs)
    trainer = pl.Trainer(max_epochs=len(CURVE), callbacks=[stopper], logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(Scripted(), data, data)
    return trainer.current_epoch, stopper.stopped_epoch


def test_without_warm_up_the_flat_start_ends_training_before_the_take_off():
    epochs, stopped = epochs_run()
    assert stopped == 3 and epochs == 4  # judged from epoch 0: three flat epochs, then stop


def test_with_warm_up_training_takes_off_and_stops_on_the_real_plateau():
    epochs, stopped = epochs_run(warmup=5)
    # judged from epoch 5 (value 0): improvements at 6, 7, 8; then 20.5 .. 20.0 are within
    # min_delta of 20: three epochs without improvement stop it at epoch 11
    assert stopped == 11 and epochs == 12


def test_a_monitor_at_its_ceiling_stops_training_at_once_on_its_plateau():
    # CURVE reaches 20 at epoch 8 (0-based): with the ceiling 20 that epoch is the last, warm-up or not
    for warmup in (0, 5, 10):
        epochs, stopped = epochs_run(warmup=warmup, ceiling=20.0, patience=50)
        assert stopped == 8 and epochs == 9, warmup
    # a ceiling never reached changes nothing
    assert epochs_run(warmup=5, ceiling=100.0) == epochs_run(warmup=5)


def test_a_ceiling_reached_in_the_first_epoch_is_recorded_as_a_plateau():
    from types import SimpleNamespace

    from pipeline.training.training_record import record

    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.zeros(2, 1)), batch_size=2)
    stopper = PlateauStopping(monitor="val_score", mode="max", patience=3, ceiling=0.0)
    trainer = pl.Trainer(max_epochs=len(CURVE), callbacks=[stopper], logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(Scripted(), data, data)
    assert trainer.current_epoch == 1 and stopper.stopped_epoch == 0 and stopper.reached_ceiling
    assert stopper.state_dict()["reached_ceiling"]
    monitor = SimpleNamespace(monitor="val_score", mode="max", epochs=1, best_epoch=1, best_score=0.0, epochs_to_target=None)
    norms = SimpleNamespace(summary=lambda: None)
    assert record(monitor, stopper, SimpleNamespace(diverged=None), norms)["stopped"] == "plateau"
    fresh = PlateauStopping(monitor="val_score", mode="max", ceiling=0.0)
    fresh.load_state_dict(stopper.state_dict())
    assert fresh.reached_ceiling


def _study():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "docs" / "plateau_study.py"
    spec = importlib.util.spec_from_file_location("plateau_study", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_replay_in_docs_stops_where_the_callback_does():
    study = _study()
    for warmup in (0, 5):
        _, stopped = epochs_run(warmup=warmup)
        assert study.stop_epoch(CURVE, patience=3, min_delta=1.0, warmup=warmup) == stopped + 1  # 1-based
    # a lull of 2 validations (20 .. 20.3 after 20) precedes nothing better: patience 3 suffices
    assert study.patience_needed(CURVE, min_delta=1.0, warmup=5) == 0
    lull = [0, 2, 2, 2, 2, 2, 9, 9]  # 4 validations without a gain of 1, then a jump
    assert study.patience_needed(lull, min_delta=1.0, warmup=0) == 4
    assert study.stop_epoch(lull, patience=4, min_delta=1.0, warmup=0) == 6
    assert study.stop_epoch(lull, patience=5, min_delta=1.0, warmup=0) == len(lull)
