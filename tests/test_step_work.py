"""The work done at every training step, kept off the host: epoch means logged once per epoch
(``lightning_modules.epoch_means``) are the numbers ``self.log(..., on_epoch=True,
batch_size=n)`` at every step would have reduced to; the GANs' loss history is read back once;
the NaN guard, when its checks are deferred (as on a GPU), still names the first bad step."""

from __future__ import annotations

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from torch.nn import functional as F

from lightning_modules import MODELS
from pipeline.training.history import EpochHistory
from pipeline.training.loaders import batches

pytestmark = [
    pytest.mark.filterwarnings("ignore:.*does not have many workers.*"),
    pytest.mark.filterwarnings("ignore:.*number of training batches.*"),
    pytest.mark.filterwarnings("ignore:.*isinstance\\(treespec, LeafSpec\\).*"),
]


def trainer(tmp_path, **kwargs) -> pl.Trainer:
    return pl.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                      accelerator="cpu", devices=1, default_root_dir=tmp_path, **kwargs)


def classifier():
    entry = MODELS["lstm"]
    settings = entry.settings_for("classifier")(embedding_dim=4, hidden_size=8)
    return entry.build("classifier", settings, vocab_size=3, n_classes=2)


def parity_arrays(n: int, length: int = 6):
    rng = np.random.default_rng(0)
    tokens = rng.integers(1, 3, size=(n, length)).astype(np.int64)
    lengths = rng.integers(1, length + 1, size=n).astype(np.int64)
    labels = np.array([int((t[:k] == 2).sum() % 2) for t, k in zip(tokens, lengths)], dtype=np.int64)
    return [tokens, lengths, labels]


def test_validation_means_are_batch_size_weighted_means(tmp_path):
    pl.seed_everything(0)
    model = classifier()
    arrays = parity_arrays(70)  # batches of 32, 32 and 6: an unweighted mean would differ
    loader = batches(arrays, batch_size=32, shuffle=False)
    metrics = trainer(tmp_path).validate(model, loader, verbose=False)[0]

    model.eval()
    losses, hits, n = 0.0, 0.0, 0
    with torch.no_grad():
        for tokens, lengths, labels in loader:
            logits = model(tokens, lengths)
            losses += float(F.cross_entropy(logits, labels.long())) * len(labels)
            hits += float((logits.argmax(1) == labels).sum())
            n += len(labels)
    assert metrics["val_loss"] == pytest.approx(losses / n, rel=1e-5)
    assert metrics["val_accuracy"] == pytest.approx(hits / n, rel=1e-5)


class CountingLog:
    def __init__(self, model):
        self.names: list[str] = []
        self._log = model.log
        model.log = self

    def __call__(self, name, *args, **kwargs):
        self.names.append(name)
        return self._log(name, *args, **kwargs)


def test_each_mean_is_logged_once_per_epoch_and_reaches_the_history(tmp_path):
    pl.seed_everything(0)
    model = classifier()
    calls = CountingLog(model)
    arrays = parity_arrays(96)
    history = EpochHistory()
    t = trainer(tmp_path, max_epochs=2, num_sanity_val_steps=0, log_every_n_steps=1000, callbacks=[history])
    t.fit(model, batches(arrays, batch_size=16, shuffle=True, seed=0), batches(arrays, batch_size=32, shuffle=False))
    # 6 training and 3 validation batches per epoch; grad_norm only on the steps the loggers record
    assert sorted(calls.names) == sorted(["train_loss", "train_accuracy", "val_loss", "val_accuracy"] * 2)
    rows = {(r["epoch"], r["metric"], r["split"]) for r in history.rows}
    assert rows == {(e, m, s) for e in (1, 2) for m in ("loss", "accuracy") for s in ("train", "validation")}
    assert not model._epoch_sums()  # nothing left over for the next epoch


def test_sums_of_an_unfinished_epoch_travel_in_the_checkpoint():
    model, restored = classifier(), classifier()
    model.accumulate("train_loss", torch.tensor(2.0), 3)
    model.accumulate("train_loss", torch.tensor(4.0), 1)
    model.accumulate("val_bpc", torch.tensor(1.5), torch.tensor(10))
    checkpoint: dict = {}
    model.on_save_checkpoint(checkpoint)
    restored.on_load_checkpoint(checkpoint)
    restored.accumulate("train_loss", torch.tensor(1.0), 4)
    sums = restored._epoch_sums()
    assert float(sums["train_loss"][0] / sums["train_loss"][1]) == pytest.approx((6 + 4 + 4) / 8)
    assert float(sums["val_bpc"][0] / sums["val_bpc"][1]) == pytest.approx(1.5)


def test_gan_loss_history_is_read_back_per_generator_step(tmp_path):
    pl.seed_everything(0)
    entry = MODELS["gan"]
    settings = entry.settings_for("sampler-2d")(latent_dim=3, generator_hidden=8, generator_layers=2,
                                                discriminator_hidden=8, discriminator_layers=2, critic_steps=2)
    model = entry.build("sampler-2d", settings, data_dim=2)
    x = np.random.default_rng(0).normal(size=(64, 2)).astype(np.float32)
    trainer(tmp_path, max_epochs=2).fit(model, batches([x], batch_size=16, shuffle=False))
    history = model.loss_history
    assert [step for step, _, _ in history] == [1, 2, 3, 4]  # 4 batches an epoch, a G step every 2nd
    assert all(isinstance(d, float) and isinstance(g, float) for _, d, g in history)
    checkpoint: dict = {}
    model.on_save_checkpoint(checkpoint)
    assert checkpoint["loss_history"] == [list(row) for row in history]


@pytest.mark.parametrize("check_every, poisoned_from, batches_per_epoch, raised_at", [
    (1, 2, 6, 2),   # the CPU's default: checked at every step
    (3, 1, 6, 2),   # deferred (a GPU's way): recorded at step 1, read at step 2
    (50, 4, 6, 5),  # deferred past the epoch: read at the epoch's end
])
def test_a_non_finite_loss_is_reported_at_its_first_step_when_checks_are_deferred(tmp_path, check_every, poisoned_from, batches_per_epoch, raised_at):
    from lightning_modules.recurrent import SequenceClassifier
    from pipeline.plumbing.errors import TrainingError
    from pipeline.training.resume import FiniteLoss

    class Poisoned(SequenceClassifier):
        def training_step(self, batch, batch_idx):
            loss = super().training_step(batch, batch_idx)
            self.steps_run = self.global_step + 1
            return loss * float("nan") if self.global_step >= poisoned_from else loss

    pl.seed_everything(0)
    entry = MODELS["lstm"]
    model = Poisoned(cell="lstm", vocab_size=3, n_classes=2, **entry.settings_for("classifier")(embedding_dim=4, hidden_size=8).model_dump())
    guard = FiniteLoss("parity-lstm", check_every=check_every)
    t = trainer(tmp_path, max_epochs=3, callbacks=[guard])
    with pytest.raises(TrainingError, match=rf"experiments\.parity-lstm: loss became nan at step {poisoned_from} \(epoch 0, batch {poisoned_from}\)"):
        t.fit(model, batches(parity_arrays(16 * batches_per_epoch), batch_size=16, shuffle=False))
    assert model.steps_run == raised_at + 1  # training went on until the check read it


# ------------------------------------------------ MLflow writes in batches, checkpoints by time


def mlflow_run(tmp_path):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    run = client.create_run(client.create_experiment("batched"))
    return client, run.info.run_id


def history(client, run_id, key):
    return [(m.step, m.value) for m in sorted(client.get_metric_history(run_id, key), key=lambda m: m.step)]


def test_batched_logger_writes_when_due_on_request_and_at_the_end(tmp_path):
    from pipeline.training.batched_logger import BatchedMLFlowLogger

    client, run_id = mlflow_run(tmp_path)
    logger = BatchedMLFlowLogger(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", run_id=run_id, flush_every_s=3600)
    for step in range(3):
        logger.log_metrics({"loss": 1.0 / (step + 1), "bad key!": 2.0}, step=step)
    assert logger.pending == 6 and history(client, run_id, "loss") == []  # not due yet

    logger.flush(and_next_log=True)
    assert logger.pending == 0 and [s for s, _ in history(client, run_id, "loss")] == [0, 1, 2]
    logger.log_metrics({"loss": 0.25}, step=3)  # the next log is written at once...
    assert logger.pending == 0 and history(client, run_id, "loss")[-1] == (3, 0.25)
    logger.log_metrics({"loss": 0.2}, step=4)  # ...and only that one
    assert logger.pending == 1

    logger.finalize("success")
    assert history(client, run_id, "loss") == [(0, 1.0), (1, 0.5), (2, pytest.approx(1 / 3)), (3, 0.25), (4, 0.2)]
    assert [s for s, _ in history(client, run_id, "bad key")] == [0, 1, 2]  # sanitised as MLFlowLogger does
    assert client.get_run(run_id).info.status == "FINISHED"


def test_batched_logger_splits_large_batches_and_writes_every_call_when_the_interval_is_zero(tmp_path):
    from mlflow.utils.validation import MAX_METRICS_PER_BATCH

    from pipeline.training.batched_logger import BatchedMLFlowLogger

    client, run_id = mlflow_run(tmp_path)
    logger = BatchedMLFlowLogger(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", run_id=run_id, flush_every_s=3600)
    for step in range(MAX_METRICS_PER_BATCH // 2 + 1):
        logger.log_metrics({"a": float(step), "b": -float(step)}, step=step)
    logger.flush()  # more than MLflow takes in one request
    assert len(history(client, run_id, "a")) == len(history(client, run_id, "b")) == MAX_METRICS_PER_BATCH // 2 + 1

    logger.flush_every_s = 0
    logger.log_metrics({"c": 1.0}, step=0)
    assert logger.pending == 0 and history(client, run_id, "c") == [(0, 1.0)]


def test_checkpoints_are_taken_after_the_first_epoch_then_by_time_and_mlflow_holds_what_they_hold(tmp_path):
    from pipeline.training.batched_logger import BatchedMLFlowLogger
    from pipeline.training.resume import EpochCheckpoint

    def in_mlflow() -> tuple[list[int], int]:
        """The epochs MLflow has metrics of, and how many epochs' training loss (logged at the
        epoch's end, after the checkpoint). Lightning logs "epoch" with the validation metrics
        and again with the training ones; MLflow keeps one of two identical values logged in
        the same millisecond, so epochs are counted, not rows."""
        return sorted({int(v) for _, v in history(client, run_id, "epoch")}), len(history(client, run_id, "train_loss"))

    class Watch(pl.Callback):
        """At each epoch's start: the checkpoint's epoch, and what MLflow holds by then."""

        def __init__(self):
            self.seen = []

        def on_train_epoch_start(self, trainer, pl_module):
            ckpt = tmp_path / "ck" / "last.ckpt"
            epoch = torch.load(ckpt, weights_only=False)["epoch"] if ckpt.is_file() else None
            self.seen.append((epoch, *in_mlflow()))

    client, run_id = mlflow_run(tmp_path)
    for min_interval_s, expected_last in ((3600, 0), (0, 3)):
        pl.seed_everything(0)
        (tmp_path / "ck").mkdir(exist_ok=True)
        for f in (tmp_path / "ck").iterdir():
            f.unlink()
        run_id = client.create_run(client.get_experiment_by_name("batched").experiment_id).info.run_id
        logger = BatchedMLFlowLogger(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", run_id=run_id, flush_every_s=3600)
        watch = Watch()
        t = pl.Trainer(logger=logger, callbacks=[EpochCheckpoint(tmp_path / "ck", min_interval_s=min_interval_s), watch],
                       max_epochs=4, enable_progress_bar=False, enable_model_summary=False, accelerator="cpu", devices=1,
                       default_root_dir=tmp_path, num_sanity_val_steps=0, log_every_n_steps=1000)
        t.fit(classifier(), batches(parity_arrays(64), batch_size=32, shuffle=True, seed=0), batches(parity_arrays(32), batch_size=32, shuffle=False))
        assert torch.load(tmp_path / "ck" / "last.ckpt", weights_only=False)["epoch"] == expected_last
        if min_interval_s:  # one checkpoint, after epoch 0; MLflow holds epoch 0 (the metrics it logged after it too)
            assert watch.seen == [(None, [], 0), (0, [0], 1), (0, [0], 1), (0, [0], 1)]
        else:  # a checkpoint every epoch, and MLflow as far as each
            assert watch.seen == [(None, [], 0), (0, [0], 1), (1, [0, 1], 2), (2, [0, 1, 2], 3)]
        assert in_mlflow() == ([0, 1, 2, 3], 4)  # all, at the end


def test_the_training_bar_is_drawn_only_on_a_terminal_and_not_at_every_step(monkeypatch):
    import sys

    from pytorch_lightning.callbacks import TQDMProgressBar

    from pipeline.plumbing.progress import TRAINING_BAR_REFRESH_STEPS, training_bar

    monkeypatch.setattr(sys.stdout, "isatty", lambda: False)
    assert training_bar(True) == (False, [])  # a log file: no redraws in it
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert training_bar(False) == (False, [])  # switched off in params.yaml
    enabled, callbacks = training_bar(True)
    assert enabled and len(callbacks) == 1 and isinstance(callbacks[0], TQDMProgressBar)
    assert callbacks[0].refresh_rate == TRAINING_BAR_REFRESH_STEPS > 1


def test_the_train_stage_profiles_only_when_asked(tmp_path, monkeypatch):
    from pytorch_lightning.profilers import PassThroughProfiler

    from pipeline import config as config_mod
    from pipeline.plumbing.paths import Layout
    from pipeline.stages.fetch import fetch
    from pipeline.stages.train import train
    from tests.test_faults import small_project

    profilers = []
    init = pl.Trainer.__init__

    def recording_init(self, *args, **kwargs):
        init(self, *args, **kwargs)
        profilers.append(self.profiler)

    monkeypatch.setattr(pl.Trainer, "__init__", recording_init)
    for name, extra in (("plain", {}), ("profiled", {"profiler": "simple"})):
        folder = small_project(tmp_path / name, ("parity-rnn",), max_epochs=1, limit_train_batches=3, **extra)
        config, layout = config_mod.load(folder / "params.yaml"), Layout(folder)
        fetch(config, layout, "parity")
        train(config, layout, "parity-rnn")
    plain, profiled = profilers
    assert type(plain) is PassThroughProfiler  # Lightning's default: records nothing
    assert type(profiled).__name__ == "SimpleProfiler"
    assert "run_training_batch" in profiled.recorded_durations  # it did record the fit
