"""Lightning's MLflow logger, writing metrics in batches instead of once per logging call.

Each write to MLflow's sqlite store is a transaction of several SQLAlchemy statements, about
7 ms of Python on this project's 2-core machine: more than a small model's whole training
step. Lightning's ``MLFlowLogger`` writes once per logging call (every epoch, and every
``log_every_n_steps`` steps for models that log per step), so for a GAN on ``digits``, whose
epochs are 20 steps of ~8 ms, the epoch-end write alone was 5% of training time.

``BatchedMLFlowLogger`` keeps each metric with the time it was logged and writes what has
gathered in one ``log_batch``
- at most every ``flush_every_s`` seconds (10 by default: the dashboard lags that much),
- when a checkpoint is saved (``pipeline.training.resume.EpochCheckpoint`` asks: the store then holds
  at least what the checkpoint does, so a run resumed after a kill has a whole history), and
  again right after the metrics that Lightning logs at the same epoch's end,
- when training ends, fails or is interrupted (Lightning calls ``finalize``).
A process killed outright loses at most the metrics since the last write; the run resumed
from the checkpoint logs them again.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any, Optional

from lightning_utilities.core.rank_zero import rank_zero_only
from pytorch_lightning.loggers import MLFlowLogger

_BAD_KEY_CHARS = re.compile(r"[^a-zA-Z0-9_/. -]+")  # as MLFlowLogger: MLflow allows only these


class BatchedMLFlowLogger(MLFlowLogger):
    """``MLFlowLogger`` with ``log_metrics`` gathering and ``flush`` writing. Its own copies of
    the ``prefix`` and ``synchronous`` arguments build the keys and the writes as
    ``MLFlowLogger`` does, without reading its private attributes."""

    def __init__(self, *args: Any, flush_every_s: float = 10.0, prefix: str = "", synchronous: Optional[bool] = None, **kwargs: Any):
        super().__init__(*args, prefix=prefix, synchronous=synchronous, **kwargs)
        self.flush_every_s = flush_every_s
        self.prefix = prefix
        self.log_batch_kwargs: dict[str, Any] = {} if synchronous is None else {"synchronous": synchronous}
        self._pending: list = []
        self._flushed_at = time.monotonic()
        self._flush_next = False

    @rank_zero_only
    def log_metrics(self, metrics: Mapping[str, float], step: Optional[int] = None) -> None:
        from mlflow.entities import Metric

        timestamp_ms = int(time.time() * 1000)
        for key, value in metrics.items():
            if isinstance(value, str):
                continue  # MLFlowLogger discards these too (with a warning)
            key = _BAD_KEY_CHARS.sub("", f"{self.prefix}{self.LOGGER_JOIN_CHAR}{key}" if self.prefix else key)
            self._pending.append(Metric(key=key, value=float(value), timestamp=timestamp_ms, step=step or 0))
        if self._flush_next or time.monotonic() - self._flushed_at >= self.flush_every_s:
            self.flush()

    @rank_zero_only
    def flush(self, and_next_log: bool = False) -> None:
        """Write every pending metric now; with ``and_next_log``, also right after the next
        logging call (the epoch's own metrics, which Lightning logs after the checkpoint)."""
        from mlflow.utils.validation import MAX_METRICS_PER_BATCH

        while self._pending:
            chunk = self._pending[:MAX_METRICS_PER_BATCH]
            self.experiment.log_batch(run_id=self.run_id, metrics=chunk, **self.log_batch_kwargs)
            del self._pending[: len(chunk)]
        self._flushed_at = time.monotonic()
        self._flush_next = and_next_log

    @property
    def pending(self) -> int:
        """Metrics logged but not yet written."""
        return len(self._pending)

    @rank_zero_only
    def finalize(self, status: str = "success") -> None:
        if self._pending:
            self.flush()
        super().finalize(status)
