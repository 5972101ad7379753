"""Addition and subtraction with distractors: the first benchmark of Jozefowicz, Zaremba and
Sutskever (2015). The network reads "a±b" with random lowercase letters inserted, e.g.
``3e36d9-h1h39f94eeh43keg3c`` (3369 - 13994433), and writes the exact result, ``-13991064``.

Each operand has a number of digits drawn uniformly from 1 .. ``max_digits``, then uniform
digits (no leading zero unless the operand is a single digit); the operator is ``+`` or ``-``
with equal chance. Distractors: before every character of the clean string and at its end a
run of letters is inserted whose length k has P(k) = (1 - p) p^k, p = ``distractor_prob``
(geometric: another letter follows with probability p), each letter uniform over a..z. The
target is the exact integer result with its sign, as Python computes it.

Splits ``train``, ``val``, ``test`` share that distribution; ``test_long`` (``n_test_long``
examples, 0 for none) has both operands with ``max_digits + 1 .. test_long_max_digits`` digits,
to measure generalisation to longer numbers.

Arrays per split: ``inputs`` (int16, N x S, zero-padded to the split's longest input),
``input_lengths`` (int16), ``targets`` (int16, N x U, zero-padded), ``target_lengths`` (int16).
Split ``vocab`` holds ``chars`` ('<U1', index = token id): 0 is padding (stored as the empty
string), 1 ``^`` a start marker and 2 ``$`` an end marker for the decoder (never stored in
``inputs`` or ``targets``; a seq2seq task feeds 1 first and appends 2 when it needs them),
then ``+``, ``-``, the digits and the letters.
"""

from __future__ import annotations

import string
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

PAD, START, END = 0, 1, 2
CHARS = ["", "^", "$", "+", "-", *string.digits, *string.ascii_lowercase]
CHAR_ID = {c: i for i, c in enumerate(CHARS)}
LETTERS = np.array(list(string.ascii_lowercase))


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_digits: int = Field(8, ge=1, le=64)
    distractor_prob: float = Field(0.3, ge=0, le=0.9)
    n_train: int = Field(100000, ge=1)
    n_val: int = Field(5000, ge=1)
    n_test: int = Field(5000, ge=1)
    n_test_long: int = Field(2000, ge=0)
    test_long_max_digits: int = Field(10, ge=2, le=64)

    @model_validator(mode="after")
    def _long_is_longer(self) -> "Settings":
        if self.n_test_long and self.test_long_max_digits <= self.max_digits:
            raise ValueError("test_long_max_digits must exceed max_digits (or set n_test_long: 0)")
        return self


def operands(n: int, min_digits: int, max_digits: int, rng: np.random.Generator) -> list[str]:
    """``n`` decimal numbers with a digit count uniform in min_digits .. max_digits."""
    counts = rng.integers(min_digits, max_digits + 1, size=n)
    digits = rng.integers(0, 10, size=(n, max_digits), dtype=np.uint8)
    leading = rng.integers(1, 10, size=n, dtype=np.uint8)
    digits[:, 0] = np.where(counts > 1, leading, digits[:, 0])
    text = (digits + ord("0")).tobytes().decode("ascii")
    return [text[i * max_digits : i * max_digits + k] for i, k in enumerate(counts.tolist())]


def with_distractors(clean: list[str], p: float, rng: np.random.Generator) -> list[str]:
    """Insert a geometric run of random letters before each character and at the end."""
    if p == 0:
        return list(clean)
    slots = max(len(s) for s in clean) + 1
    runs = rng.geometric(1 - p, size=(len(clean), slots)) - 1  # failures before a success
    letters = "".join(LETTERS[rng.integers(0, 26, size=int(runs.sum()))].tolist())
    out, pos = [], 0
    for s, row in zip(clean, runs.tolist()):
        pieces = []
        for j in range(len(s) + 1):
            k = row[j]
            pieces.append(letters[pos : pos + k])
            pos += k
            if j < len(s):
                pieces.append(s[j])
        pos += sum(row[len(s) + 1 :])  # drawn for unused slots: skip, keeps the stream aligned
        out.append("".join(pieces))
    return out


def encode(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    lengths = np.array([len(t) for t in texts], dtype=np.int16)
    ids = np.zeros((len(texts), int(lengths.max())), dtype=np.int16)
    for i, t in enumerate(texts):
        ids[i, : len(t)] = [CHAR_ID[c] for c in t]
    return ids, lengths


def decode(ids: np.ndarray, length: int | None = None) -> str:
    return "".join(CHARS[i] for i in ids[: length if length is not None else len(ids)])


def problems(n: int, min_digits: int, max_digits: int, p: float, rng: np.random.Generator) -> dict[str, np.ndarray]:
    a = operands(n, min_digits, max_digits, rng)
    b = operands(n, min_digits, max_digits, rng)
    minus = rng.integers(0, 2, size=n).astype(bool).tolist()
    clean = [f"{x}{'-' if m else '+'}{y}" for x, y, m in zip(a, b, minus)]
    results = [str(int(x) - int(y) if m else int(x) + int(y)) for x, y, m in zip(a, b, minus)]
    inputs, input_lengths = encode(with_distractors(clean, p, rng))
    targets, target_lengths = encode(results)
    return {"inputs": inputs, "input_lengths": input_lengths, "targets": targets, "target_lengths": target_lengths}


def generate(settings: Settings, seed: int, scratch: Path | None = None) -> dict[str, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    d, p = settings.max_digits, settings.distractor_prob
    splits = {
        "train": problems(settings.n_train, 1, d, p, rng),
        "val": problems(settings.n_val, 1, d, p, rng),
        "test": problems(settings.n_test, 1, d, p, rng),
    }
    if settings.n_test_long:
        splits["test_long"] = problems(settings.n_test_long, d + 1, settings.test_long_max_digits, p, rng)
    splits["vocab"] = {"chars": np.array(CHARS, dtype="<U1")}
    return splits
