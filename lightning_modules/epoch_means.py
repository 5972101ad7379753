"""Epoch means of per-batch values, logged once per epoch instead of once per batch.

Every model reports the per-epoch mean of its batch losses and accuracies (``train_loss``,
``val_accuracy``, ``train_d_loss``, ...). ``self.log(name, value, on_epoch=True,
batch_size=n)`` at every step would compute that mean too, but each call costs about a
millisecond of Python on the CPU (Lightning moves its result store to the value's device and
re-checks the metadata every time): two or three calls a step took a fifth (an LSTM classifier)
to two fifths (a 2-D GAN) of a small model's whole training step (``benchmarks/training_loop.py``).

``EpochMeans.accumulate`` keeps a running batch-size-weighted sum per name, as tensors on the
value's device (no host synchronisation, so nothing waits for a GPU either), and the epoch-end
hooks log each mean once, under the same name: the same number ``self.log`` would have
reduced to, in the same place (``trainer.callback_metrics``, the progress bar, the loggers).
Every model has it through ``lightning_modules.base.ZooModule``. Subclasses that override ``on_train_epoch_end``, ``on_validation_epoch_end`` or the
checkpoint hooks call ``super()``.
"""

from __future__ import annotations

from typing import Any, Union

import torch
from torch import Tensor


class EpochMeans:
    """``accumulate`` per batch; ``log_epoch_means(stage)`` logs and clears a stage's means."""

    def _epoch_sums(self) -> dict[str, list[Any]]:
        sums = self.__dict__.get("_epoch_means")
        if sums is None:
            sums = self.__dict__["_epoch_means"] = {}
        return sums

    def accumulate(self, name: str, value: Tensor, n: Union[int, Tensor], prog_bar: bool = False) -> None:
        """Add a batch's mean ``value`` over ``n`` items (an int or a tensor: a token count
        need not be read back to the host) to ``name``'s epoch mean."""
        value = value.detach().float()
        weight = n.detach().to(value.device, torch.float32) if isinstance(n, Tensor) else float(n)
        entry = self._epoch_sums().get(name)
        if entry is None:
            self._epoch_sums()[name] = [value * weight, weight, prog_bar]
        else:
            entry[0] = entry[0].to(value.device) + value * weight  # .to: sums restored from a checkpoint are on the CPU
            entry[1] = entry[1].to(value.device) + weight if isinstance(entry[1], Tensor) else entry[1] + weight

    def log_epoch_means(self, stage: str) -> None:
        """Log the mean of every name that starts with ``<stage>_``, then forget them. Called
        by the epoch-end hooks; a callback that reads ``callback_metrics`` at the end of a
        training epoch (``pipeline.training.history.EpochHistory``) may call it first, as Lightning runs
        callbacks' hooks before the module's. A second call in the same epoch logs nothing."""
        sums = self._epoch_sums()
        for name in [k for k in sums if k.startswith(f"{stage}_")]:
            total, weight, prog_bar = sums.pop(name)
            mean = total / (weight.clamp_min(1e-12) if isinstance(weight, Tensor) else max(weight, 1e-12))
            self.log(name, mean, on_step=False, on_epoch=True, prog_bar=prog_bar, batch_size=1, sync_dist=True)

    def on_train_epoch_end(self) -> None:
        self.log_epoch_means("train")
        super().on_train_epoch_end()

    def on_validation_epoch_end(self) -> None:
        self.log_epoch_means("val")
        super().on_validation_epoch_end()

    # A checkpoint taken in the middle of an epoch (Ctrl-C) carries the sums so far: the
    # resumed epoch reports the mean over all its batches, as an uninterrupted one does.
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        super().on_save_checkpoint(checkpoint)
        sums = self._epoch_sums()
        if sums:
            checkpoint["epoch_means"] = {k: [v[0], torch.as_tensor(v[1]), v[2]] for k, v in sums.items()}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        super().on_load_checkpoint(checkpoint)
        self._epoch_sums().clear()
        for name, (total, weight, prog_bar) in checkpoint.get("epoch_means", {}).items():
            self._epoch_sums()[name] = [total, weight, bool(prog_bar)]
