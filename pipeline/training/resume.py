"""Training that survives being killed: checkpoints, resumption and a guard against NaN.

An experiment trains each of its seeds in turn. While seed ``s`` trains,
``checkpoints/<experiment>/seed-<s>/`` holds
- ``last.ckpt``: Lightning's full training state (weights, optimisers, loop counters, the
  random number generators) at the end of an epoch, written atomically: after the first
  epoch, then at the first epoch end at least ``EpochCheckpoint.min_interval_s`` (30 s) after
  the previous one, so an experiment of many short epochs does not spend its time writing
  checkpoints; a run killed outright loses at most that much training (Ctrl-C saves first);
- ``resume.json``: the MLflow run id and a fingerprint of everything that decides the
  result (the experiment's settings, the trainer's, the seed and the dataset's hashes);
- ``best/best.ckpt``: the best checkpoint so far by the plateau monitor (the model kept);
- ``done/``: once the seed has finished, its outputs (model, curves, training record), kept
  until every seed of the experiment has finished, so a stage killed in a later seed does not
  train this one again.

``zoo train`` finds them, and when the fingerprint still matches it resumes from the
checkpoint and continues the same MLflow run; with other settings it starts afresh. The
folder is removed once the experiment's model folder is written. It lives outside
``models/`` because DVC deletes a stage's outputs before running the stage again.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback, ModelCheckpoint
from pytorch_lightning.plugins import TorchCheckpointIO

from pipeline.plumbing.atomic import atomic_path, write_json
from pipeline.plumbing.errors import TrainingError

CHECKPOINT = "last.ckpt"
META = "resume.json"
# Where the callbacks' states lie in a checkpoint; a checkpoint of another layout does not
# resume (2: each callback under its own key, no longer inside one group's).
CHECKPOINT_LAYOUT = 2


def fingerprint(config, name: str, manifest: dict, seed: int) -> str:
    """Hash of what decides one seed's training run: resuming with other settings would mix two
    runs. The experiment's list of seeds is left out: adding a seed keeps the others' runs."""
    exp = config.experiment(name)
    payload = {
        "seed": seed,
        "layout": CHECKPOINT_LAYOUT,
        "common": exp.common.model_dump(mode="json", exclude={"seed", "seeds"}),
        "settings": exp.settings.model_dump(mode="json"),
        "trainer": exp.trainer.model_dump(mode="json"),
        "data": manifest.get("files", manifest.get("sha256", manifest)),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True)
class ResumeState:
    folder: Path
    fingerprint: str

    @property
    def checkpoint(self) -> Path:
        return self.folder / CHECKPOINT

    @property
    def best(self) -> Path:
        """Where the best checkpoint by the plateau monitor is kept (``BestCheckpoint``)."""
        return self.folder / "best"

    @property
    def done(self) -> Path:
        """The finished seed's outputs (``pipeline.stages.train``)."""
        return self.folder / "done"

    def find(self, owner: bool = True) -> tuple[Path | None, str | None, str | None]:
        """(checkpoint to resume from, MLflow run id, why nothing is resumed) for this fingerprint.
        The ``owner`` (global rank zero) removes a stale state; other processes only read."""
        meta_file = self.folder / META
        if not meta_file.is_file():
            return None, None, None
        try:
            meta = json.loads(meta_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            meta = {}
        if meta.get("fingerprint") != self.fingerprint:
            if owner:
                self.clear()
            return None, None, "settings or data changed since the interrupted run: starting afresh"
        checkpoint = self.checkpoint if self.checkpoint.is_file() else None
        return checkpoint, meta.get("run_id"), None

    def start(self, run_id: str | None) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        write_json(self.folder / META, {"fingerprint": self.fingerprint, "run_id": run_id})

    def clear(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def checkpoint_step(path: Path) -> int:
    """Training steps done in a Lightning checkpoint."""
    state = torch.load(path, map_location="cpu", weights_only=False)
    return int(state.get("global_step", 0))


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer, writing to a temporary file next to the checkpoint and
    renaming it (``pipeline.plumbing.atomic``): a kill while writing leaves the previous checkpoint
    whole. (Lightning's own writer stages the file in the system's temporary folder, which may
    be on another file system, where the final move is a copy.) The train stage hands it to
    the ``Trainer`` (``plugins=``), so ``BestCheckpoint`` and every ``trainer.save_checkpoint``
    write this way."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        with atomic_path(Path(path)) as tmp:
            super().save_checkpoint(checkpoint, tmp, storage_options)


class BestCheckpoint(ModelCheckpoint):
    """The best checkpoint so far by the plateau monitor (``best.ckpt``; atomic with
    ``AtomicCheckpointIO``); its path and score travel in ``last.ckpt``, so a resumed run
    keeps comparing against it. Non-finite values never count as best (``ModelCheckpoint``
    reads them as the worst)."""

    def __init__(self, folder: Path, monitor: str, mode: str):
        super().__init__(dirpath=folder, filename="best", monitor=monitor, mode=mode, save_top_k=1, enable_version_counter=False)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.monitor in trainer.callback_metrics:  # a model that does not log it keeps its last weights
            super().on_train_epoch_end(trainer, pl_module)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.monitor in trainer.callback_metrics:
            super().on_validation_end(trainer, pl_module)


class EpochCheckpoint(Callback):
    """``last.ckpt`` in ``folder`` at the end of a training epoch, replaced atomically so a
    kill while writing leaves the previous one intact: after the first epoch, then at an
    epoch's end once ``min_interval_s`` have passed since the last save (every epoch when
    epochs are longer). On Ctrl-C the state at that moment is saved too. Before saving it has
    the loggers that batch their writes (``pipeline.training.batched_logger``) write what they hold, so
    MLflow has every metric the checkpoint has."""

    min_interval_s = 30.0

    def __init__(self, folder: Path, min_interval_s: float | None = None):
        if min_interval_s is not None:
            self.min_interval_s = min_interval_s
        self.folder = Path(folder)
        self.saved_at: float | None = None  # time.monotonic() of the last save
        self.saved_step = 0  # the global step saved last (0: none; nothing to save before a step)

    @property
    def path(self) -> Path:
        return self.folder / CHECKPOINT

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or trainer.fast_dev_run or trainer.global_step == self.saved_step:
            return
        due = self.saved_at is None or time.monotonic() - self.saved_at >= self.min_interval_s
        # saving is collective: every process must take rank zero's decision
        if trainer.strategy.broadcast(due):
            flush_loggers(trainer)
            save_atomically(trainer, self.path)
            self.saved_at = time.monotonic()
            self.saved_step = trainer.global_step

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        if isinstance(exception, KeyboardInterrupt) and trainer.global_step > 0 and trainer.world_size == 1:
            save_atomically(trainer, self.path)


def flush_loggers(trainer: pl.Trainer) -> None:
    """Loggers that batch their writes write what they hold now, and again after the next
    logging call: the metrics Lightning logs at the end of the epoch being checkpointed."""
    for logger in trainer.loggers:
        flush = getattr(logger, "flush", None)
        if callable(flush):
            flush(and_next_log=True)


def save_atomically(trainer: pl.Trainer, path: Path, weights_only: bool = False) -> None:
    """``trainer.save_checkpoint`` to a temporary name, then renamed. Every process calls it
    (it synchronises them); only global rank zero writes."""
    if not trainer.is_global_zero:
        trainer.save_checkpoint(path, weights_only)
        return
    with atomic_path(path) as tmp:
        trainer.save_checkpoint(tmp, weights_only)


class RandomState(Callback):
    """Carries the random number generators in the checkpoint (dropout masks, GAN noise), so a
    resumed run draws the same numbers as an uninterrupted one; and keeps the training
    loader's place in the epoch current, for checkpoints taken in the middle of one."""

    def state_dict(self) -> dict[str, Any]:
        # Plain tensors and tuples only: Lightning loads checkpoints with ``weights_only=True``.
        kind, keys, pos, has_gauss, cached = np.random.get_state()
        numpy_state = (kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached))
        state = {"torch": torch.get_rng_state(), "numpy": numpy_state, "python": random.getstate()}
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._set_position(trainer, 0)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._set_position(trainer, batch_idx + 1)

    @staticmethod
    def _set_position(trainer, batches: int) -> None:
        """Tell the training loader how far into the epoch training is (``ResumableLoader``)."""
        loader = trainer.train_dataloader
        if hasattr(loader, "position"):
            loader.position = batches

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        torch.set_rng_state(state_dict["torch"])
        kind, keys, pos, has_gauss, cached = state_dict["numpy"]
        np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
        random.setstate(state_dict["python"])
        if "cuda" in state_dict and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state_dict["cuda"])


class FiniteLoss(Callback):
    """Stops training at the first step whose loss is NaN or infinite, naming the experiment
    and the step. Reads the loss(es) a ``training_step`` returns: a tensor, or a dict of them;
    and, at each validation, the plateau ``monitor`` (a validation loss can diverge too).

    ``on_nonfinite="fail"`` (the default) raises ``TrainingError``: no model is written.
    ``"record"`` makes divergence a result: ``diverged`` records the first non-finite value
    (step, epoch, batch, key, value), training stops there (``trainer.should_stop``, so
    Lightning ends the epoch, validates and saves as usual) and the stage goes on.
    ``diverged["step"]`` counts training batches from 0 across epochs.

    On the CPU every step is checked as it ends. On a GPU, reading a loss back would make the
    host wait for the device at every step; there the first non-finite loss (its step and
    value) is recorded on the device and read every ``check_every`` steps (default 50) and at
    the end of each epoch, so training stops at most ``check_every - 1`` steps later, with the
    same message and the same recorded step."""

    DEFERRED_EVERY = 50

    def __init__(self, experiment: str, check_every: int | None = None, on_nonfinite: str = "fail", monitor: str | None = None):
        self.experiment = experiment
        self.check_every = check_every  # None: 1 on the CPU, DEFERRED_EVERY on an accelerator
        self.on_nonfinite = on_nonfinite
        self.monitor = monitor
        self.diverged: dict[str, Any] | None = None
        self._keys: list[str] = []
        self._first: torch.Tensor | None = None  # (step, epoch, batch, key, value); step -1: none yet

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.diverged is not None:
            return
        values = [(k, v) for k, v in (outputs.items() if isinstance(outputs, dict) else [("loss", outputs)]) if isinstance(v, torch.Tensor) and v.numel()]
        step = trainer.fit_loop.epoch_loop.total_batch_idx
        every = self.check_every or (1 if pl_module.device.type == "cpu" else self.DEFERRED_EVERY)
        if every == 1:
            for key, value in values:
                if not bool(torch.isfinite(value.detach()).all()):
                    self._stop(trainer, key, float(value.detach().float().flatten()[0]), step, trainer.current_epoch, batch_idx)
                    return
            return
        for key, value in values:
            if key not in self._keys:
                self._keys.append(key)
            value = value.detach()
            if self._first is None or self._first.device != value.device:
                self._first = value.new_full((5,), -1.0, dtype=torch.float64)
            # Built on the device (fills, not a copy from the host, which could wait for it too).
            where = [value.new_full((), float(x), dtype=torch.float64) for x in (step, trainer.current_epoch, batch_idx, self._keys.index(key))]
            here = torch.stack([*where, value.flatten()[0].double()])
            bad = ~torch.isfinite(value).all() & (self._first[0] < 0)
            self._first = torch.where(bad, here, self._first)
        if (step + 1) % every == 0:
            self._check_recorded(trainer)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self._check_recorded(trainer)

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking or self.diverged is not None or self.monitor is None:
            return
        value = trainer.callback_metrics.get(self.monitor)
        if value is not None and not math.isfinite(float(value)):
            step = trainer.fit_loop.epoch_loop.total_batch_idx
            self._stop(trainer, self.monitor, float(value), step, trainer.current_epoch, trainer.fit_loop.epoch_loop.batch_idx)

    def _check_recorded(self, trainer) -> None:
        if self._first is None or self.diverged is not None:
            return
        step, epoch, batch_idx, key, value = self._first.tolist()  # the one read-back
        if step >= 0:
            self._stop(trainer, self._keys[int(key)], value, int(step), int(epoch), int(batch_idx))

    def _stop(self, trainer, key: str, value: float, step: int, epoch: int, batch_idx: int) -> None:
        if self.on_nonfinite == "record":
            self.diverged = {"step": int(step), "epoch": int(epoch), "batch": int(batch_idx), "key": key, "value": value}
            trainer.should_stop = True
            return
        raise TrainingError(
            f"experiments.{self.experiment}: {key} became {value} at step {step} (epoch {epoch}, batch {batch_idx}); "
            "training stopped and no model written. Lower the learning rate, set trainer.gradient_clip_val, "
            "or set on_nonfinite_loss: record to keep divergence as a result"
        )

    def state_dict(self) -> dict[str, Any]:
        return {"diverged": dict(self.diverged) if self.diverged else None}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.diverged = state_dict.get("diverged")


class GracefulInterrupt(Callback):
    """Ctrl-C during training takes effect between training steps, not inside one: a
    KeyboardInterrupt raised in the middle of the MLflow logger's database write would leave
    the sqlite store locked. The first SIGINT sets a flag; a second one interrupts at once.

    The flag becomes the interrupt (Lightning then stops, and ``EpochCheckpoint`` saves) at the
    end of a training batch that is not the epoch's last, so the checkpoint is always "after
    batch k of the epoch, more to come", a state Lightning resumes exactly. After the epoch's
    last batch, during validation and in the epoch-end hooks it waits for the first batch of
    the next epoch: a checkpoint taken there resumed differently from an uninterrupted run
    (Lightning counts the epoch's batches done but not the rest of the epoch). An epoch of one
    batch has no such point; there the batch's end serves. A flag still set when training ends
    is the train stage's to honour (``requested``)."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def __enter__(self) -> "GracefulInterrupt":
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        import signal

        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.requested and (batch_idx + 1 < trainer.num_training_batches or trainer.num_training_batches == 1):
            raise KeyboardInterrupt
