"""What one seed's training did, as a record a researcher can cite (``run.json``'s "training").

    {"monitor": "val_loss", "mode": "min", "stopped": "plateau" | "cap" | "diverged",
     "epochs": 7, "best_epoch": 4, "best_score": 0.21, "epochs_to_target": 3 | null,
     "diverged_step": 812 | null, "grad_norm": {"max", "p50", "p90", "p99"}}

- ``stopped``: "plateau" when EarlyStopping ended training (the monitor stopped improving for
  ``plateau.patience`` validations), "diverged" when a loss became NaN or infinite under
  ``on_nonfinite_loss: record``, else "cap" (``max_epochs`` reached);
- ``epochs``: epochs run, the last one counted even when divergence cut it short;
- ``best_epoch`` / ``best_score``: the validation (1-based epoch) with the best finite monitor
  value, the kept checkpoint's (null when no validation gave a finite value, or the model does
  not log the task's default monitor: then no plateau stopping, the last weights are kept, and
  the stage says so; a monitor set in ``plateau.monitor`` that is not logged is a ConfigError);
- ``epochs_to_target``: the first epoch whose monitor reached ``plateau.target`` (<= for mode
  min, >= for max); null when never, or no target;
- ``grad_norm``: the global L2 norm of the gradients at every optimiser step, before clipping
  (``GradientNorms``); models that optimise manually (the GANs) have none.

``MonitorRecord`` and ``GradientNorms`` are Lightning callbacks; their state travels in the
resume checkpoint, so a resumed run's record covers the whole run.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import pytorch_lightning as pl
from pytorch_lightning import Callback
from pytorch_lightning.callbacks import EarlyStopping

from pipeline.plumbing.errors import ConfigError


class MonitorRecord(Callback):
    """Best value and epoch of the plateau monitor, the first epoch it reaches a target, and the
    number of epochs run. Reads the monitor at the end of each validation (after every
    callback and the model have logged their validation metrics)."""

    def __init__(self, experiment: str, monitor: str, mode: str, target: float | None = None, required: bool = True):
        self.experiment, self.monitor, self.mode, self.target = experiment, monitor, mode, target
        self.required = required  # False: the task's default monitor, which a model may not log
        self.missing = False
        self.best_score: float | None = None
        self.best_epoch: int | None = None
        self.epochs_to_target: int | None = None
        self.epochs = 0
        self.validations = 0

    def _better(self, value: float, than: float) -> bool:
        return value < than if self.mode == "min" else value > than

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get(self.monitor)
        if value is None:
            if self.validations == 0 and not self.missing:
                logged = sorted(k for k in trainer.callback_metrics if k.startswith("val"))
                if self.required:
                    raise ConfigError(
                        f"experiments.{self.experiment}.plateau.monitor",
                        f"'{self.monitor}' is not logged at validation; choose from: {', '.join(logged) or '(none logged)'}",
                    )
                # The task's default, which this model does not log: no plateau, no best checkpoint.
                self.missing = True
                if trainer.is_global_zero:
                    print(
                        f"{self.experiment}: the task's monitor '{self.monitor}' is not logged by this model "
                        f"(it logs {', '.join(logged) or 'nothing'}); training runs to max_epochs and keeps the last weights. "
                        f"Set experiments.{self.experiment}.plateau.monitor to stop on a plateau"
                    )
            return
        self.validations += 1
        value = float(value)
        epoch = trainer.current_epoch + 1
        if not math.isfinite(value):
            return
        if self.best_score is None or self._better(value, self.best_score):
            self.best_score, self.best_epoch = value, epoch
        if self.target is not None and self.epochs_to_target is None and not self._better(self.target, value):
            self.epochs_to_target = epoch

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.epochs = trainer.current_epoch + 1

    def state_dict(self) -> dict[str, Any]:
        return {
            "best_score": self.best_score, "best_epoch": self.best_epoch, "epochs_to_target": self.epochs_to_target,
            "epochs": self.epochs, "validations": self.validations, "missing": self.missing,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        for key, value in state_dict.items():
            setattr(self, key, value)


class GradientNorms(Callback):
    """The global L2 norm of all gradients at every optimiser step, before clipping (Lightning
    calls ``on_before_optimizer_step`` before it clips). Kept on the model's device and read
    back once an epoch, so a GPU does not wait for the host at every step. Models that
    optimise manually (GANs) are skipped: their players' gradients are not one quantity."""

    def __init__(self) -> None:
        self.norms: list[float] = []
        self._pending: list[torch.Tensor] = []

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        if not pl_module.automatic_optimization:
            return
        grads = [p.grad for p in pl_module.parameters() if p.grad is not None]
        if grads:
            self._pending.append(torch.nn.utils.get_total_norm(grads, 2.0).detach())

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self._collect()

    def _collect(self) -> None:
        if self._pending:
            self.norms.extend(torch.stack(self._pending).double().cpu().tolist())
            self._pending = []

    def summary(self) -> dict[str, float | None] | None:
        """{"max", "p50", "p90", "p99"} over the finite norms; None when no step was measured."""
        self._collect()
        if not self.norms:
            return None
        values = np.asarray(self.norms, dtype=np.float64)
        values = values[np.isfinite(values)]
        if not len(values):
            return {"max": None, "p50": None, "p90": None, "p99": None}
        p50, p90, p99 = np.percentile(values, [50, 90, 99])
        return {"max": float(values.max()), "p50": float(p50), "p90": float(p90), "p99": float(p99)}

    def state_dict(self) -> dict[str, Any]:
        self._collect()
        return {"norms": torch.tensor(self.norms, dtype=torch.float64)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.norms = [float(x) for x in state_dict.get("norms", torch.zeros(0)).tolist()]
        self._pending = []


def record(monitor: MonitorRecord, stopper, finite, norms: GradientNorms) -> dict[str, Any]:
    """One seed's training record from its callbacks (EarlyStopping ``stopper``, ``FiniteLoss``)."""
    if finite.diverged is not None:
        stopped = "diverged"
    elif stopper.stopped_epoch > 0 or getattr(stopper, "reached_ceiling", False):  # a ceiling can stop epoch 0
        stopped = "plateau"
    else:
        stopped = "cap"
    out: dict[str, Any] = {
        "monitor": monitor.monitor,
        "mode": monitor.mode,
        "stopped": stopped,
        "epochs": int(monitor.epochs),
        "best_epoch": monitor.best_epoch,
        "best_score": monitor.best_score,
        "epochs_to_target": monitor.epochs_to_target,
        "diverged_step": finite.diverged["step"] if finite.diverged else None,
    }
    summary = norms.summary()
    if summary is not None:
        out["grad_norm"] = summary
    return out


def record_metrics(training: dict[str, Any]) -> dict[str, float | None]:
    """The record as flat metrics (``metrics/<experiment>.json``'s per-seed entries)."""
    out: dict[str, float | None] = {
        "plateau": 1.0 if training.get("stopped") == "plateau" else 0.0,
        "diverged": 1.0 if training.get("stopped") == "diverged" else 0.0,
        "epochs": training.get("epochs"),
        "best_epoch": training.get("best_epoch"),
        "diverged_step": training.get("diverged_step"),
        "epochs_to_target": training.get("epochs_to_target"),
    }
    for key, value in (training.get("grad_norm") or {}).items():
        out[f"grad_norm_{key}"] = value
    return out


class PlateauStopping(EarlyStopping):
    """Lightning's ``EarlyStopping``, judging only from epoch ``warmup`` on. A 2-D GAN's
    monitor sits near zero for its first thousands of generator steps and then takes off:
    patience counted over that stretch would stop it before it learns. (The Trainer's
    ``min_epochs`` does not do this: it only postpones a stop already decided, even when the
    monitor has improved since.)

    ``ceiling``: the monitor's best possible value. A seed that reaches it (≥ for ``max``, ≤
    for ``min``) has reached its plateau and stops at the end of that epoch, warm-up or not:
    no later epoch can beat it, so the kept (first best) model is the one patience would keep.
    (``stopping_threshold`` compares strictly, so an accuracy of exactly 1.0 would not stop it.)"""

    def __init__(self, warmup: int = 0, ceiling: float | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.warmup, self.ceiling = warmup, ceiling
        self.reached_ceiling = False

    def on_validation_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        if trainer.current_epoch >= self.warmup:
            super().on_validation_end(trainer, pl_module)
        if self.ceiling is not None and not trainer.sanity_checking and self._at_ceiling(trainer.callback_metrics.get(self.monitor)):
            trainer.should_stop = self.reached_ceiling = True
            self.stopped_epoch = trainer.current_epoch

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "reached_ceiling": self.reached_ceiling}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self.reached_ceiling = state_dict.get("reached_ceiling", False)

    def _at_ceiling(self, value) -> bool:
        if value is None or not torch.isfinite(torch.as_tensor(value)):
            return False
        value = float(value)
        return value >= self.ceiling if self.mode == "max" else value <= self.ceiling

    def on_train_epoch_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        if trainer.current_epoch >= self.warmup:
            super().on_train_epoch_end(trainer, pl_module)
