"""Randomly generated nested XML: the second benchmark of Jozefowicz, Zaremba and Sutskever
(2015), a next-character task whose closing tags need long memory.

A fixed vocabulary of ``n_tags`` distinct random lowercase names (length ``min_tag_length`` ..
``max_tag_length``) is drawn from the seed once. A document is one element; every element takes
a name uniformly from the vocabulary and, below ``max_depth`` (the root is depth 1), a number of
children uniform in 0 .. ``max_children``, rendered in order with no whitespace or text:
``<ab><cde></cde><ab></ab></ab>``. Documents are concatenated, each followed by a newline,
until a split holds at least ``n_<split>_chars`` characters (whole documents only).

Arrays per split: ``ids`` (int16, the character stream) and ``closing`` (bool, same length):
True on the characters of a closing tag that memory alone predicts, the tag name and the ``>``
after ``</``. The ``<`` and ``/`` are left out on purpose: *when* an element closes is random,
*which* element closes is not. ``bits`` (float32, same length): each character's information
under the generating process itself, -log2 p(character | everything before it), for a reader
that knows the tag vocabulary and the rules and remembers every open element (``true_bits``).
Its mean is the floor of bits per character that no model can beat on average; a model's
excess over it is what it has not learnt, and remembering which element is open is part of it.
``recall`` (bool, same length): True on the first letter of the closing name of an element that
has children. That letter needs the name read before the whole subtree of its children (a
stack of open names); a leaf's closing only copies the name just read. It is the character that
tells a model with long memory from one without.
Split ``vocab``: ``chars`` ('<U1', index = id; a stream needs no padding id) and ``tags`` (the
tag vocabulary).
"""

from __future__ import annotations

import math
import string
from collections import Counter
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

CHARS = sorted("<>/\n" + string.ascii_lowercase)
ID_OF_BYTE = np.zeros(256, dtype=np.int16)
ID_OF_BYTE[[ord(c) for c in CHARS]] = np.arange(len(CHARS), dtype=np.int16)

Tree = tuple[str, list["Tree"]]


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    n_tags: int = Field(50, ge=1, le=500)
    min_tag_length: int = Field(2, ge=2)
    max_tag_length: int = Field(6, ge=2, le=32)
    max_depth: int = Field(6, ge=1, le=100)
    max_children: int = Field(3, ge=1)
    n_train_chars: int = Field(1_000_000, ge=1)
    n_val_chars: int = Field(100_000, ge=1)
    n_test_chars: int = Field(100_000, ge=1)

    @model_validator(mode="after")
    def _lengths_ordered(self) -> "Settings":
        if self.max_tag_length < self.min_tag_length:
            raise ValueError("max_tag_length must be at least min_tag_length")
        return self


def tag_vocabulary(settings: Settings, rng: np.random.Generator) -> list[str]:
    """``n_tags`` distinct random names (at least 26**2 = 676 exist, n_tags <= 500)."""
    names: dict[str, None] = {}
    while len(names) < settings.n_tags:
        length = int(rng.integers(settings.min_tag_length, settings.max_tag_length + 1))
        names.setdefault("".join(rng.choice(list(string.ascii_lowercase), size=length).tolist()))
    return list(names)


def random_tree(tags: list[str], settings: Settings, rng: np.random.Generator, depth: int = 1) -> Tree:
    name = tags[int(rng.integers(len(tags)))]
    n_children = int(rng.integers(0, settings.max_children + 1)) if depth < settings.max_depth else 0
    return name, [random_tree(tags, settings, rng, depth + 1) for _ in range(n_children)]


def render(tree: Tree, text: list[str] | None = None, closing: list[bool] | None = None) -> tuple[str, list[bool]]:
    """The element as text, and for each character whether it is memory-predictable closing."""
    top = text is None
    text = [] if text is None else text
    closing = [] if closing is None else closing
    name, children = tree
    text.append(f"<{name}>")
    closing.extend([False] * (len(name) + 2))
    for child in children:
        render(child, text, closing)
    text.append(f"</{name}>")
    closing.extend([False, False] + [True] * (len(name) + 1))
    return ("".join(text) if top else "", closing)


def stream(n_chars: int, tags: list[str], settings: Settings, rng: np.random.Generator) -> dict[str, np.ndarray]:
    pieces: list[str] = []
    closing: list[bool] = []
    total = 0
    while total < n_chars:
        text, mask = render(random_tree(tags, settings, rng))
        pieces.append(text + "\n")
        closing.extend(mask + [False])
        total += len(text) + 1
    text = "".join(pieces)
    ids = ID_OF_BYTE[np.frombuffer(text.encode("ascii"), dtype=np.uint8)]
    return {
        "ids": ids,
        "closing": np.array(closing, dtype=bool),
        "bits": true_bits(text, tags, settings),
        "recall": recall_positions(text),
    }


def recall_positions(text: str) -> np.ndarray:
    """True on the first letter of each closing name whose element has children."""
    recall = np.zeros(len(text), dtype=bool)
    had_children: list[bool] = []
    i = text.find("<")
    while i != -1:
        if text[i + 1] == "/":
            if had_children.pop():
                recall[i + 2] = True
        else:
            if had_children:
                had_children[-1] = True
            had_children.append(False)
        i = text.find("<", i + 1)
    return recall


def true_bits(text: str, tags: list[str], settings: Settings) -> np.ndarray:
    """-log2 p(c_i | c_<i) of every character of a stream of whole documents, under the
    generator: names uniform over ``tags`` (so a prefix q continues with c with probability
    N(qc) / N(q), N = the number of names starting with that prefix, and ends with ``>`` with
    probability [q is a name] / N(q)); an element below ``max_depth`` has k ~ U{0..max_children}
    children, so after j of them the next ``<`` is a closing one with probability
    1 / (max_children + 1 - j), and always at ``max_depth``. Everything else (``<``, ``>``, the
    closing name, the newline) is certain. Parsed from the text alone, independently of ``render``."""
    prefixes = Counter(name[:i] for name in tags for i in range(len(name) + 1))
    names = set(tags)
    bits = np.zeros(len(text), dtype=np.float64)
    stack: list[list] = []  # [name, children so far]
    i = 0
    while i < len(text):
        if text[i] != "<":  # the newline after a document: certain
            i += 1
            continue
        if stack:
            depth, children = len(stack), stack[-1][1]
            p_close = 1.0 if depth >= settings.max_depth else 1.0 / (settings.max_children + 1 - children)
        else:
            p_close = 0.0  # a document starts with its root
        if text[i + 1] == "/":
            bits[i + 1] = -math.log2(p_close)
            end = text.index(">", i)
            stack.pop()
            i = end + 1
            continue
        end = text.index(">", i)
        name = text[i + 1 : end]
        bits[i + 1] = -math.log2(1.0 - p_close)
        for j in range(len(name)):
            bits[i + 1 + j] += -math.log2(prefixes[name[: j + 1]] / prefixes[name[:j]])
        bits[end] = -math.log2((name in names) / prefixes[name])
        if stack:
            stack[-1][1] += 1
        stack.append([name, 0])
        i = end + 1
    return bits.astype(np.float32)


def decode(ids: np.ndarray) -> str:
    return "".join(np.array(CHARS)[ids].tolist())


def generate(settings: Settings, seed: int, scratch: Path | None = None) -> dict[str, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    tags = tag_vocabulary(settings, rng)
    return {
        "train": stream(settings.n_train_chars, tags, settings, rng),
        "val": stream(settings.n_val_chars, tags, settings, rng),
        "test": stream(settings.n_test_chars, tags, settings, rng),
        "vocab": {"chars": np.array(CHARS, dtype="<U1"), "tags": np.array(tags)},
    }
