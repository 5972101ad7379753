"""Addition and subtraction read with distractors (Jozefowicz et al. 2015), as a language
model: the network reads ``a±b`` with letters inserted, then ``^``, and writes the result
character by character up to ``$``. Training: teacher forcing, loss on the answer only.
Evaluation: greedy decoding; exact match and per-character accuracy, on the test split and
on ``test_long`` (operands longer than any seen in training)."""

from __future__ import annotations

import numpy as np
import torch

from pipeline.training.loaders import batches
from pipeline.tasks.base import Column, Evaluation, Prepared, Task, load_split

PAD, START, END = 0, 1, 2  # pipeline.datasets.arithmetic's vocabulary


def sequences(split: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(inputs, targets, mask) for teacher forcing: seq = input ^ answer $, predict seq[p+1]."""
    n = len(split["inputs"])
    lin, lt = split["input_lengths"].astype(int), split["target_lengths"].astype(int)
    total = lin + lt + 2
    seq = np.zeros((n, int(total.max())), dtype=np.int64)
    mask = np.zeros((n, int(total.max()) - 1), dtype=np.float32)
    for i in range(n):
        a, b = lin[i], lt[i]
        seq[i, :a] = split["inputs"][i, :a]
        seq[i, a] = START
        seq[i, a + 1 : a + 1 + b] = split["targets"][i, :b]
        seq[i, a + 1 + b] = END
        mask[i, a : a + b + 1] = 1.0  # predictions of the answer's characters and of $
    return seq[:, :-1], seq[:, 1:], mask


class ArithmeticTask(Task):
    name = "arithmetic"
    description = "digits of a±b read with distractor letters -> digits of the result (Jozefowicz et al. 2015)"
    sources = frozenset({"arithmetic"})
    head = "language-model"
    sample_kind = "answer"  # a language model that answers: reads a±b, writes the result
    primary = "exact_match"
    ranking = (("exact_match", True), ("exact_match_long", True), ("char_accuracy", True))
    columns = (
        Column("exact_match", "exact match"),
        Column("char_accuracy", "per-char accuracy"),
        Column("exact_match_long", "exact match (longer numbers)"),
    )

    def prepare(self, data_dir, manifest, common, seed):
        x, y, m = sequences(load_split(data_dir, "train"))
        vx, vy, vm = sequences(load_split(data_dir, "val"))
        return Prepared(
            train=batches([x, y, m], common.batch_size, shuffle=True, seed=seed),
            val=batches([vx, vy, vm], common.batch_size, shuffle=False),
            model_args={"vocab_size": len(load_split(data_dir, "vocab")["chars"])},
        )

    @staticmethod
    def score(model, split: dict[str, np.ndarray]) -> tuple[float, float]:
        lin, lt = split["input_lengths"].astype(np.int64), split["target_lengths"].astype(np.int64)
        prompts = np.zeros((len(lin), int(lin.max()) + 1), dtype=np.int64)
        prompts[:, : split["inputs"].shape[1]] = split["inputs"]
        prompts[np.arange(len(lin)), lin] = START
        width = split["targets"].shape[1] + 1
        exact, char_hits, chars = 0, 0, 0
        for start in range(0, len(lin), 512):
            sl = slice(start, start + 512)
            out = model.greedy_answers(
                torch.from_numpy(prompts[sl]).to(model.device), torch.from_numpy(lin[sl] + 1).to(model.device), width
            ).cpu().numpy()
            for row, target, n in zip(out, split["targets"][sl], lt[sl]):
                want = np.append(target[:n], END)
                got = row[: n + 1]
                exact += bool(np.array_equal(got, want))
                char_hits += int((got[:n] == want[:n]).sum())
                chars += int(n)
        return exact / len(lin), char_hits / max(chars, 1)

    def evaluate(self, model, data_dir, manifest, plots_dir, seed, title, common=None):
        model.eval()
        exact, per_char = self.score(model, load_split(data_dir, "test"))
        metrics = {"exact_match": exact, "char_accuracy": per_char}
        if (data_dir / "test_long.npz").is_file():
            metrics["exact_match_long"], metrics["char_accuracy_long"] = self.score(model, load_split(data_dir, "test_long"))
        return Evaluation(metrics)

    def gradient_flow_batch(self, data_dir, manifest, common):
        split = load_split(data_dir, "test")
        x, y, m = sequences(split)
        total = split["input_lengths"].astype(int) + split["target_lengths"].astype(int) + 1
        pick = np.flatnonzero(total == total.max())[:32]
        return torch.from_numpy(x[pick]), torch.from_numpy(y[pick]), torch.from_numpy(m[pick])
