"""Character-level language-model corpora (the ``charlm`` task: bits per character, samples).

Three sources, each a plain text turned into three contiguous character streams:

- ``pydoc_topics``: CPython's bundled help text, ``pydoc_data.topics.topics`` (about 465,000
  characters of English), the entries concatenated in sorted key order. Offline.
- ``python_stdlib``: the standard library's own ``.py`` files (a code corpus, as char-rnn used
  the Linux sources): every file under ``sysconfig.get_paths()['stdlib']``, sorted by relative
  path, skipping ``site-packages``/``dist-packages``, test folders (``test``, ``tests``,
  ``idle_test``) and ``__pycache__``; read with their declared encoding, concatenated. Offline.
  Both offline corpora are those of the Python that runs the fetch (the manifest's hashes pin it).
- ``tiny_shakespeare``: Karpathy's char-rnn corpus, downloaded from ``url`` and checked against
  ``sha256`` (REFERENCE.md's data table).

Shared settings: ``max_chars`` keeps only the first characters (None: all), ``val_fraction`` and
``test_fraction`` cut the text into train | val | test in that order (contiguous, as char-rnn
does, so no window straddles two splits), and ``min_char_count``: a character seen fewer times
than this in the *training* part (or not at all) becomes the unknown character, id 0 (shown as
U+FFFD); with the default of 1 only characters absent from the training text are unknown.
The seed is unused: a real corpus is split the same way every time.

Arrays: ``train``/``val``/``test`` hold ``ids`` (int16 stream); ``vocab`` holds ``chars``
('<U1', index = id, 0 = unknown; streams need no padding id).
"""

from __future__ import annotations

import contextlib
import os
import sysconfig
import tempfile
import tokenize
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from pipeline.plumbing.download import download
from pipeline.plumbing.errors import DataError

UNKNOWN = "\ufffd"
SHAKESPEARE_URL = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
SHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
STDLIB_SKIP = {"site-packages", "dist-packages", "test", "tests", "idle_test", "__pycache__"}


class CorpusSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    max_chars: int | None = Field(None, ge=3)
    val_fraction: float = Field(0.05, gt=0, lt=1)
    test_fraction: float = Field(0.05, gt=0, lt=1)
    min_char_count: int = Field(1, ge=1)

    @model_validator(mode="after")
    def _fractions_leave_training_text(self) -> "CorpusSettings":
        if self.val_fraction + self.test_fraction >= 1:
            raise ValueError("val_fraction + test_fraction must be below 1")
        return self


class StdlibSettings(CorpusSettings):
    max_chars: int | None = Field(5_000_000, ge=3)


class ShakespeareSettings(CorpusSettings):
    url: str = SHAKESPEARE_URL
    sha256: str | None = Field(SHAKESPEARE_SHA256, pattern=r"^[0-9a-fA-F]{64}$")


def char_streams(text: str, settings: CorpusSettings, name: str) -> dict[str, dict[str, np.ndarray]]:
    """Cut ``text`` into contiguous train | val | test streams of character ids plus the vocabulary."""
    if settings.max_chars is not None:
        text = text[: settings.max_chars]
    n = len(text)
    n_val, n_test = round(n * settings.val_fraction), round(n * settings.test_fraction)
    n_train = n - n_val - n_test
    if min(n_train, n_val, n_test) < 1:
        raise DataError(f"dataset '{name}': {n} characters are too few to split (raise max_chars or the fractions)")
    parts = {"train": text[:n_train], "val": text[n_train : n_train + n_val], "test": text[n_train + n_val :]}
    counts = Counter(parts["train"])
    kept = sorted(c for c, k in counts.items() if k >= settings.min_char_count and c != UNKNOWN)
    if len(kept) + 1 > np.iinfo(np.int16).max:
        raise DataError(f"dataset '{name}': {len(kept)} distinct characters do not fit int16 ids (raise min_char_count)")
    code_points = np.array([ord(c) for c in kept], dtype=np.uint32)  # sorted, so searchsorted finds ids
    out: dict[str, dict[str, np.ndarray]] = {}
    for split, part in parts.items():
        cps = np.frombuffer(part.encode("utf-32-le"), dtype=np.uint32)
        pos = np.searchsorted(code_points, cps)
        found = pos < len(kept)
        found[found] = code_points[pos[found]] == cps[found]
        out[split] = {"ids": np.where(found, pos + 1, 0).astype(np.int16)}
    out["vocab"] = {"chars": np.array([UNKNOWN, *kept], dtype="<U1")}
    return out


def decode(ids: np.ndarray, chars: np.ndarray) -> str:
    return "".join(chars[ids].tolist())


# ------------------------------------------------------------------------------ pydoc topics


def pydoc_text() -> str:
    try:
        from pydoc_data.topics import topics
    except ImportError:
        raise DataError(
            "dataset 'pydoc-topics': this Python has no pydoc_data module (some distributions strip it): "
            "use python-stdlib or tiny-shakespeare instead"
        ) from None
    return "".join(topics[key] for key in sorted(topics))


def generate_pydoc(settings: CorpusSettings, seed: int, scratch: Path | None = None) -> dict[str, dict[str, np.ndarray]]:
    return char_streams(pydoc_text(), settings, "pydoc-topics")


# ------------------------------------------------------------------------- standard library


def stdlib_files(root: Path | None = None) -> list[Path]:
    """The standard library's ``.py`` files in sorted relative-path order (links not followed)."""
    root = Path(root or sysconfig.get_paths()["stdlib"])
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in STDLIB_SKIP)
        found.extend(Path(folder) / f for f in files if f.endswith(".py"))
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def stdlib_text(max_chars: int | None, root: Path | None = None) -> str:
    pieces, total = [], 0
    for path in stdlib_files(root):
        try:
            with tokenize.open(path) as fh:  # honours PEP 263 coding declarations
                source = fh.read()
        except (OSError, SyntaxError, UnicodeDecodeError):
            continue  # an unreadable file is skipped the same way every time
        if source and not source.endswith("\n"):
            source += "\n"
        pieces.append(source)
        total += len(source)
        if max_chars is not None and total >= max_chars:
            break
    if not pieces:
        raise DataError(f"dataset 'python-stdlib': no readable .py files under {root or sysconfig.get_paths()['stdlib']}")
    return "".join(pieces)


def generate_stdlib(settings: StdlibSettings, seed: int, scratch: Path | None = None) -> dict[str, dict[str, np.ndarray]]:
    return char_streams(stdlib_text(settings.max_chars), settings, "python-stdlib")


# -------------------------------------------------------------------------- tiny shakespeare


@contextlib.contextmanager
def scratch_folder(scratch: Path | None):
    """``scratch`` when the fetch stage gives one, else a temporary folder removed afterwards."""
    if scratch is not None:
        yield Path(scratch)
    else:
        with tempfile.TemporaryDirectory(prefix="zoo-download-") as tmp:
            yield Path(tmp)


def generate_shakespeare(settings: ShakespeareSettings, seed: int, scratch: Path | None = None) -> dict[str, dict[str, np.ndarray]]:
    with scratch_folder(scratch) as folder:
        path = download(settings.url, folder, sha256=settings.sha256, name="input.txt")
        try:
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DataError(f"dataset 'tiny-shakespeare': {settings.url} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    return char_streams(text, settings, "tiny-shakespeare")


pydoc_topics = SimpleNamespace(Settings=CorpusSettings, generate=generate_pydoc)
python_stdlib = SimpleNamespace(Settings=StdlibSettings, generate=generate_stdlib)
tiny_shakespeare = SimpleNamespace(Settings=ShakespeareSettings, generate=generate_shakespeare)
