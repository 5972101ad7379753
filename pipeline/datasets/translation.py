"""English -> Dutch sentence pairs (the tutorial's quiz): the Tatoeba pairs that manythings.org
publishes for Anki, ``nld-eng.zip`` holding ``nld.txt`` with one tab-separated pair a line:
English, Dutch, attribution. Online.

No checksum is published and the file is refreshed over time, so ``sha256`` is None by default
and the SHA-256 of what was fetched is stored with the data (split ``vocab``, array
``fetched_sha256``; the manifest pins it in turn); set ``sha256`` to insist on one version.

Both sides are lower-cased and tokenised with the Moses tokeniser (sacremoses, the languages'
own rules for punctuation, clitics and numbers). Pairs with more than ``max_tokens`` tokens
on either side are dropped; the rest are shuffled with the seed and cut into ``n_test``,
``n_val`` and up to ``n_train`` pairs (None: all that remain). A vocabulary per language keeps
the tokens seen at least ``min_count`` times in the training pairs (others become <unk>).

Arrays as ``pipeline.datasets.dates``: ``source``/``target`` ids, their lengths; ``vocab`` has
``source_tokens``, ``target_tokens`` (ids 0-3 <pad>, <s>, </s>, <unk>), ``joiner`` (a space).
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from pipeline.datasets.dates import SPECIALS
from pipeline.datasets.text import scratch_folder
from pipeline.plumbing.download import download
from pipeline.plumbing.errors import DataError

URL = "https://www.manythings.org/anki/nld-eng.zip"


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = URL
    sha256: str | None = Field(None, pattern=r"^[0-9a-fA-F]{64}$")
    max_tokens: int = Field(10, ge=1)
    min_count: int = Field(2, ge=1)
    n_train: int | None = Field(None, ge=1)
    n_val: int = Field(1000, ge=1)
    n_test: int = Field(2000, ge=1)


def read_pairs(data: bytes, url: str) -> list[tuple[str, str]]:
    """(English, Dutch) pairs from the zip's ``*.txt`` member (or from plain text)."""
    if data[:2] == b"PK":
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                names = [n for n in archive.namelist() if n.endswith(".txt") and not n.startswith("_")]
                if not names:
                    raise DataError(f"dataset 'translation': {url} holds no .txt file of pairs")
                data = archive.read(sorted(names, key=lambda n: n != "nld.txt")[0])
        except zipfile.BadZipFile as exc:
            raise DataError(f"dataset 'translation': {url} is not a readable zip file ({exc})") from None
    pairs = []
    for line in data.decode("utf-8").splitlines():
        fields = line.split("\t")
        if len(fields) >= 2 and fields[0].strip() and fields[1].strip():
            pairs.append((fields[0].strip(), fields[1].strip()))
    if not pairs:
        raise DataError(f"dataset 'translation': {url} has no tab-separated sentence pairs")
    return pairs


def vocabulary(sentences: list[list[str]], min_count: int) -> list[str]:
    counts = Counter(t for s in sentences for t in s)
    return SPECIALS + sorted(t for t, k in counts.items() if k >= min_count)


def encode(sentences: list[list[str]], tokens: list[str]) -> tuple[np.ndarray, np.ndarray]:
    index = {t: i for i, t in enumerate(tokens)}
    lengths = np.array([len(s) for s in sentences], dtype=np.int16)
    ids = np.zeros((len(sentences), max(1, int(lengths.max()))), dtype=np.int16)
    for i, s in enumerate(sentences):
        ids[i, : len(s)] = [index.get(t, 3) for t in s]
    return ids, lengths


def generate(settings: Settings, seed: int, scratch: Path | None = None) -> dict[str, dict[str, np.ndarray]]:
    from sacremoses import MosesTokenizer

    with scratch_folder(scratch) as folder:
        path = download(settings.url, folder, sha256=settings.sha256)
        data = path.read_bytes()
    fetched = hashlib.sha256(data).hexdigest()
    english, dutch = MosesTokenizer(lang="en"), MosesTokenizer(lang="nl")
    pairs = []
    for en, nl in dict.fromkeys(read_pairs(data, settings.url)):  # drop repeated pairs
        src = english.tokenize(en.lower(), escape=False)
        tgt = dutch.tokenize(nl.lower(), escape=False)
        if 0 < len(src) <= settings.max_tokens and 0 < len(tgt) <= settings.max_tokens:
            pairs.append((src, tgt))
    order = np.random.default_rng(seed).permutation(len(pairs))
    n_test, n_val = settings.n_test, settings.n_val
    if len(pairs) < n_test + n_val + 1:
        raise DataError(f"dataset 'translation': {len(pairs)} pairs of at most {settings.max_tokens} tokens are too few for n_test + n_val + 1 training pair")
    cut = {"test": order[:n_test], "val": order[n_test : n_test + n_val], "train": order[n_test + n_val :][: settings.n_train]}
    train = [pairs[i] for i in cut["train"]]
    source_tokens = vocabulary([p[0] for p in train], settings.min_count)
    target_tokens = vocabulary([p[1] for p in train], settings.min_count)
    splits = {}
    for split, rows in cut.items():
        chosen = [pairs[i] for i in rows]
        source, source_lengths = encode([p[0] for p in chosen], source_tokens)
        target, target_lengths = encode([p[1] for p in chosen], target_tokens)
        splits[split] = {"source": source, "source_lengths": source_lengths, "target": target, "target_lengths": target_lengths}
    splits["vocab"] = {
        "source_tokens": np.array(source_tokens),
        "target_tokens": np.array(target_tokens),
        "joiner": np.array([" "]),
        "fetched_sha256": np.array([fetched]),
    }
    return splits
