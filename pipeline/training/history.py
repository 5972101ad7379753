"""Training curves: what each epoch logged, as a DVC plot (``curves/<experiment>.csv``).

Every model logs its per-epoch means as ``train_<metric>`` and ``val_<metric>`` (loss,
accuracy, bits per character, the GANs' D and G losses, ...). ``EpochHistory`` collects them at
the end of each training epoch (after validation) into rows of the long form

    epoch, metric, split, value

so one Vega-Lite template (``.dvc/plots/training-curves.json``: a panel per metric, a line
per split) draws the curves of every family, whatever its metrics. The rows travel in the
resume checkpoint, so a resumed run has its whole history.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

from pytorch_lightning import Callback

from pipeline.plumbing.atomic import write_text

COLUMNS = ("epoch", "metric", "split", "value")
SPLITS = {"train": "train", "val": "validation"}


def epoch_rows(epoch: int, metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows for one epoch from ``trainer.callback_metrics``: ``train_loss`` becomes
    (metric ``loss``, split ``train``); keys without a split prefix (per-step diagnostics
    such as ``grad_norm``) and values that are not finite are left out."""
    rows = []
    for key in sorted(metrics):
        prefix, _, metric = key.partition("_")
        if prefix not in SPLITS or not metric:
            continue
        value = float(metrics[key])
        if math.isfinite(value):
            rows.append({"epoch": epoch, "metric": metric, "split": SPLITS[prefix], "value": round(value, 6)})
    return rows


def to_csv(rows: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def read_csv(path: Path) -> list[dict[str, Any]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return [{**row, "epoch": int(row["epoch"]), "value": float(row["value"])} for row in csv.DictReader(fh)]


class EpochHistory(Callback):
    """Collects the epoch means every model logs; ``write`` saves them as the curves file."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking:
            return
        epoch = trainer.current_epoch + 1
        # Lightning calls callbacks' hooks before the module's: ask a model that logs its
        # epoch means at the end of the epoch (lightning_modules.epoch_means) to log them now.
        log_epoch_means = getattr(pl_module, "log_epoch_means", None)
        if callable(log_epoch_means):
            log_epoch_means("train")
        self.rows = [r for r in self.rows if r["epoch"] != epoch] + epoch_rows(epoch, trainer.callback_metrics)

    def state_dict(self) -> dict[str, Any]:
        return {"rows": list(self.rows)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.rows = list(state_dict.get("rows", []))

    def write(self, path: Path) -> None:
        write_text(path, to_csv(self.rows))
