"""The two pieces the zoo keeps beside stock Lightning, each against its stock replacement.

    python benchmarks/kept_pieces.py [--repeat 5] [--epochs 4] [--batches 60]

1. Epoch means: ``ZooModule.accumulate`` (a running sum per name, logged once an epoch)
   against ``self.log(name, value, on_step=False, on_epoch=True, batch_size=n)`` at every step.
2. The MLflow logger: ``BatchedMLFlowLogger`` (one ``log_batch`` every few seconds) against
   Lightning's ``MLFlowLogger`` with ``synchronous=False`` (MLflow's asynchronous logging), on
   a sqlite store, with a metric logged at every step as the pipeline logs the gradient norm.

The same small LSTM classifier (parity's size: hidden 64, sequences of 20, batches of 64) is
fitted for ``--epochs`` epochs of ``--batches`` (60) batches each way; a repeat runs both ways in a shuffled
order, ``--repeat`` times, in one process, so both see the same minutes of this noisy machine.
Prints, per piece, the median fit time of each way, the ratio stock / kept, and the lowest and
highest ratio of single repeats: a piece pays only where the lowest ratio is above 1.
"""

from __future__ import annotations

import argparse
import logging
import random
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the package, not this folder's pipeline.py

from lightning_modules.base import ZooModule
from pipeline.training.batched_logger import BatchedMLFlowLogger

BATCHES, BATCH, LENGTH, HIDDEN = 60, 64, 20, 64


class Classifier(ZooModule):
    """An LSTM reading a bit string, two classes; ``stock`` logs with ``self.log`` per step."""

    def __init__(self, stock: bool):
        super().__init__()
        self.stock = stock
        self.embed = nn.Embedding(2, 16)
        self.lstm = nn.LSTM(16, HIDDEN, batch_first=True)
        self.head = nn.Linear(HIDDEN, 2)

    def step(self, batch, stage: str):
        x, y = batch
        logits = self.head(self.lstm(self.embed(x))[0][:, -1])
        loss = nn.functional.cross_entropy(logits, y)
        accuracy = (logits.argmax(-1) == y).float().mean()
        for name, value in ((f"{stage}_loss", loss), (f"{stage}_accuracy", accuracy)):
            if self.stock:
                self.log(name, value.detach(), on_step=False, on_epoch=True, batch_size=len(y))
            else:
                self.accumulate(name, value, len(y))
        return loss

    def training_step(self, batch, batch_idx):
        loss = self.step(batch, "train")
        self.log("grad_norm", loss.detach(), on_step=True, on_epoch=False)  # a per-step metric, as the pipeline's
        return loss

    def validation_step(self, batch, batch_idx):
        self.step(batch, "val")

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-3)


def loaders(batches: int) -> tuple[DataLoader, DataLoader]:
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 2, (batches * BATCH, LENGTH), generator=g)
    y = x.sum(1) % 2
    train = DataLoader(TensorDataset(x, y), batch_size=BATCH)
    val = DataLoader(TensorDataset(x[: min(batches, 10) * BATCH], y[: min(batches, 10) * BATCH]), batch_size=BATCH)
    return train, val


def fit_seconds(stock_means: bool, logger, epochs: int, batches: int = BATCHES) -> float:
    torch.manual_seed(0)
    model = Classifier(stock_means)
    trainer = pl.Trainer(
        max_epochs=epochs, logger=logger if logger is not None else False, log_every_n_steps=1,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, accelerator="cpu",
    )
    train, val = loaders(batches)
    started = time.perf_counter()
    trainer.fit(model, train, val)
    return time.perf_counter() - started


def make_logger(kind: str, store: Path):
    from pytorch_lightning.loggers import MLFlowLogger

    uri = f"sqlite:///{store / 'mlflow.db'}"
    if kind == "kept":
        return BatchedMLFlowLogger(experiment_name="bench", tracking_uri=uri)
    return MLFlowLogger(experiment_name="bench", tracking_uri=uri, synchronous=False)


def compare(name: str, run, repeat: int) -> None:
    times: dict[str, list[float]] = {"kept": [], "stock": []}
    for _ in range(repeat):
        order = ["kept", "stock"]
        random.shuffle(order)
        for way in order:
            times[way].append(run(way))
    ratios = [s / k for s, k in zip(times["stock"], times["kept"])]
    kept, stock = statistics.median(times["kept"]), statistics.median(times["stock"])
    print(f"| {name} | {kept:.2f} s | {stock:.2f} s | {stock / kept:.2f} | {min(ratios):.2f}–{max(ratios):.2f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batches", type=int, default=BATCHES, help="training batches an epoch (the tests' smoke run uses a few)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    random.seed(0)
    fit_seconds(False, None, 1, args.batches)  # warm-up: first-call costs out of the measurements
    print("| piece | kept (median fit) | stock | stock / kept | single repeats |")
    print("|---|---|---|---|---|")
    compare("epoch means (`accumulate` vs `self.log(on_epoch=True)`)",
            lambda way: fit_seconds(way == "stock", None, args.epochs, args.batches), args.repeat)
    with tempfile.TemporaryDirectory() as folder:
        compare("MLflow logger (`BatchedMLFlowLogger` vs `MLFlowLogger(synchronous=False)`)",
                lambda way: fit_seconds(False, make_logger(way, Path(folder)), args.epochs, args.batches), args.repeat)


if __name__ == "__main__":
    main()
