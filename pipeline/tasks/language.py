"""Next-character prediction on a character stream: ``charlm`` (real text) and ``xml``
(Jozefowicz et al. 2015's generated nested XML).

Training cuts the stream into windows of ``sequence_length`` + 1 characters (truncated
backpropagation through time), shuffled, each read from a zero state; with ``carry_state``
(recurrent models) each batch row instead reads its own contiguous stretch of the stream in
order and starts from the state its previous window ended in, the gradient stopping at the
window's start (``row_windows``; Zaremba et al. 2014's training), in validation as well, on 16
rows. Evaluation reads the whole test stream as 16 contiguous rows, carrying the recurrent
state from one window to the next, and reports bits per character = mean negative
log-likelihood / ln 2.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from pipeline.plumbing.progress import progress
from pipeline.training.loaders import batches
from pipeline.tasks.base import Column, Evaluation, Prepared, Task, load_split

EVAL_ROWS = 16


def windows(ids: np.ndarray, length: int, offset: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Non-overlapping (inputs, targets) windows of ``length`` from a stream."""
    ids = ids[offset:]
    n = (len(ids) - 1) // length
    if n < 1:
        raise ValueError(f"stream of {len(ids)} characters is shorter than one window of {length}")
    inputs = ids[: n * length].reshape(n, length)
    targets = ids[1 : n * length + 1].reshape(n, length)
    return inputs.astype(np.int64), targets.astype(np.int64)


def row_windows(ids: np.ndarray, length: int, rows: int, offset: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The stream cut into ``rows`` contiguous stretches, each into windows of ``length``,
    ordered window-major: batch k of ``rows`` (unshuffled) holds window k of every stretch, so
    a row of batch k + 1 continues exactly where the same row of batch k stopped."""
    ids = ids[offset:]
    per_row = (len(ids) - 1) // rows
    n = per_row // length
    if n < 1:
        raise ValueError(f"stream of {len(ids)} characters is too short for {rows} rows of one window of {length}")
    starts = (np.arange(n)[:, None] * length + np.arange(rows)[None, :] * per_row).reshape(-1)  # (n * rows,)
    inputs = ids[starts[:, None] + np.arange(length)[None, :]]
    targets = ids[starts[:, None] + 1 + np.arange(length)[None, :]]
    return inputs.astype(np.int64), targets.astype(np.int64)


def vocabulary(data_dir: Path) -> list[str]:
    return [str(c) for c in load_split(data_dir, "vocab")["chars"]]


def decode(ids, chars: list[str]) -> str:
    return "".join(chars[int(i)] for i in ids)


@torch.no_grad()
def stream_nll(model, ids: np.ndarray, length: int, extra_mask: np.ndarray | None = None):
    """Per-position NLL (nats) and argmax-correctness over a stream read as contiguous rows."""
    model.eval()
    n = (len(ids) - 1) // EVAL_ROWS
    rows_in = torch.from_numpy(ids[: n * EVAL_ROWS].astype(np.int64).reshape(EVAL_ROWS, n)).to(model.device)
    rows_out = torch.from_numpy(ids[1 : n * EVAL_ROWS + 1].astype(np.int64).reshape(EVAL_ROWS, n)).to(model.device)
    nll, correct, state = [], [], None
    starts = range(0, n, length)
    for start in progress(starts, len(starts), "bits per character", "chunk"):
        logits, state = model(rows_in[:, start : start + length], state)
        target = rows_out[:, start : start + length]
        nll.append(torch.nn.functional.cross_entropy(logits.transpose(1, 2), target, reduction="none").cpu())
        correct.append((logits.argmax(-1) == target).cpu())
    nll_t = torch.cat(nll, dim=1).numpy()  # (rows, n): position r * n + j predicts ids[r * n + j + 1]
    correct_t = torch.cat(correct, dim=1).numpy()
    return nll_t.reshape(-1), correct_t.reshape(-1), n * EVAL_ROWS


class StreamTask(Task):
    head = "language-model"
    sample_kind = "text"
    compare_curves = ("val_bpc",)
    primary = "test_bpc"
    higher_is_better = False
    ranking = (("test_bpc", False), ("test_accuracy", True))

    def prepare(self, data_dir, manifest, common, seed):
        train, val = load_split(data_dir, "train")["ids"], load_split(data_dir, "val")["ids"]
        offset = int(np.random.default_rng(seed).integers(0, common.sequence_length))
        model_args = {"vocab_size": len(vocabulary(data_dir))}
        if common.carry_state:  # batches in stream order, each row continuing the last batch's
            x, y = row_windows(train, common.sequence_length, common.batch_size, offset)
            vx, vy = row_windows(val, common.sequence_length, EVAL_ROWS)
            train_loader = batches([x, y, np.ones_like(x, dtype=np.float32)], common.batch_size, shuffle=False)
            val_loader = batches([vx, vy, np.ones_like(vx, dtype=np.float32)], EVAL_ROWS, shuffle=False)
            model_args["carry_state"] = True
        else:
            x, y = windows(train, common.sequence_length, offset)
            vx, vy = windows(val, min(common.sequence_length, len(val) - 1))
            train_loader = batches([x, y, np.ones_like(x, dtype=np.float32)], common.batch_size, shuffle=True, seed=seed)
            val_loader = batches([vx, vy, np.ones_like(vx, dtype=np.float32)], common.batch_size, shuffle=False)
        return Prepared(train=train_loader, val=val_loader, model_args=model_args)

    def gradient_flow_batch(self, data_dir, manifest, common):
        x, y = windows(load_split(data_dir, "test")["ids"], common.sequence_length)
        x, y = torch.from_numpy(x[:32]), torch.from_numpy(y[:32])
        return x, y, torch.ones_like(x, dtype=torch.float32)

    def bpc(self, model, ids, common) -> tuple[float, np.ndarray, np.ndarray, int]:
        nll, correct, n = stream_nll(model, ids, common.sequence_length)
        return float(nll.mean() / math.log(2)), nll, correct, n


class CharLMTask(StreamTask):
    name = "charlm"
    description = "next character of real text; bits per character on held-out text, sampled text as an artifact"
    sources = frozenset({"pydoc-topics", "python-stdlib", "tiny-shakespeare"})
    columns = (Column("test_bpc", "test bits/char"), Column("test_accuracy", "next-char accuracy"))

    def evaluate(self, model, data_dir, manifest, plots_dir, seed, title, common=None):
        test = load_split(data_dir, "test")["ids"]
        bpc, _, correct, _ = self.bpc(model, test, common)
        chars = vocabulary(data_dir)
        index = {c: i for i, c in enumerate(chars)}
        prompt = [index[c] for c in common.sampling.prompt if c in index] or [int(test[0])]
        generated = model.sample(prompt, common.sampling.length, common.sampling.temperature, torch.Generator().manual_seed(seed))
        text = (
            f"# {title}: {common.sampling.length} characters at temperature {common.sampling.temperature}, "
            f"prompt {common.sampling.prompt!r}\n\n{decode(prompt, chars)}{decode(generated, chars)}\n"
        )
        return Evaluation({"test_bpc": bpc, "test_accuracy": float(correct.mean())}, texts={"samples.txt": text})


class XMLTask(StreamTask):
    name = "xml"
    description = "next character of generated nested XML (Jozefowicz et al. 2015); closing tags need long memory"
    sources = frozenset({"xml"})
    columns = (
        Column("test_bpc", "test bits/char"),
        Column("excess_bpc", "above the floor"),
        Column("closing_bpc", "on closing tags"),
        Column("closing_tag_accuracy", "closing-tag accuracy"),
        Column("recall_accuracy", "closing after children"),
        Column("test_accuracy", "next-char accuracy"),
    )

    def evaluate(self, model, data_dir, manifest, plots_dir, seed, title, common=None):
        test = load_split(data_dir, "test")
        bpc, nll, correct, n = self.bpc(model, test["ids"], common)
        # Position p predicts character p + 1: score the predictions of closing-tag characters.
        closing = test["closing"][1 : n + 1].astype(bool)
        metrics = {
            "test_bpc": bpc,
            "test_accuracy": float(correct.mean()),
            "closing_tag_accuracy": float(correct[closing].mean()) if closing.any() else float("nan"),
            # The bits spent on characters that memory of the open elements predicts with
            # certainty, per character of the stream: the part of test_bpc only memory removes.
            "closing_bpc": float(nll[closing].sum() / n / math.log(2)),
        }
        if "bits" in test:  # data sets generated before the floor was recorded lack it
            floor = float(test["bits"][1 : n + 1].mean())
            metrics.update(floor_bpc=floor, excess_bpc=bpc - floor)
        if "recall" in test:
            # The first letter of a closing name after a subtree: memory of a stack of names.
            recall = test["recall"][1 : n + 1].astype(bool)
            metrics["recall_accuracy"] = float(correct[recall].mean()) if recall.any() else float("nan")
        return Evaluation(metrics)
