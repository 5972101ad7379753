"""IMDb movie reviews (Maas et al. 2011) for the many-to-one ``sentiment`` task: text → positive
or negative.

The archive at ``url`` is downloaded and checked against ``md5`` (the published checksum,
REFERENCE.md), then read in place: ``aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt``
(25,000 + 25,000 reviews; the unlabelled ``unsup`` reviews are ignored). Reviews are sorted by
path and shuffled with the seed; ``val`` is the first ``val_fraction`` of the shuffled training
reviews, ``max_examples_per_split`` (None: all) then keeps the first reviews of each split.

Tokens: the text lower-cased, ``<br />`` line breaks replaced by spaces, then words
(``[^\\W_]+`` letters and digits, with inner apostrophes as in "don't") and the marks ``!`` and
``?``; other punctuation is dropped. The vocabulary is the ``vocab_size`` most frequent tokens
of the training split (ties broken alphabetically), after id 0 = ``<pad>`` and 1 = ``<unk>``.
A review keeps its first ``max_length`` tokens.

Arrays per split: ``tokens`` (int32, N x L zero-padded, L = the split's longest review after
truncation), ``lengths`` (int16), ``labels`` (int8, 1 = positive), ``ratings`` (int8, the
reviewer's 1..10 score from the file name). Split ``vocab``: ``words`` (index = token id).
"""

from __future__ import annotations

import re
import tarfile
from collections import Counter
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from pipeline.datasets.text import scratch_folder
from pipeline.plumbing.download import download
from pipeline.plumbing.errors import DataError

IMDB_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
IMDB_MD5 = "7c2ac02c03563afcf9b574c7e56c153a"
PAD, UNK = "<pad>", "<unk>"
MEMBER = re.compile(r"^(?:\./)?aclImdb/(train|test)/(pos|neg)/([^/]+_(\d+))\.txt$")
BREAK = re.compile(r"<br\s*/?>")
TOKEN = re.compile(r"[^\W_]+(?:'[^\W_]+)*|[!?]")

Review = tuple[str, int, int, str]  # path, label, rating, text


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = IMDB_URL
    md5: str | None = Field(IMDB_MD5, pattern=r"^[0-9a-fA-F]{32}$")
    vocab_size: int = Field(20000, ge=1)
    max_length: int = Field(400, ge=1, le=32767)
    val_fraction: float = Field(0.1, gt=0, lt=1)
    max_examples_per_split: int | None = Field(None, ge=1)


def tokenize(text: str) -> list[str]:
    return TOKEN.findall(BREAK.sub(" ", text.lower()))


def read_reviews(archive: Path, url: str) -> dict[str, list[Review]]:
    """The labelled reviews of an aclImdb archive, by split, sorted by path."""
    reviews: dict[str, list[Review]] = {"train": [], "test": []}
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                match = MEMBER.match(member.name)
                if not match or not member.isfile():
                    continue
                split, polarity, _, rating = match.groups()
                text = tar.extractfile(member).read().decode("utf-8", errors="replace")
                reviews[split].append((member.name, int(polarity == "pos"), int(rating), text))
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise DataError(f"dataset 'imdb': the archive from {url} cannot be read ({exc}); check the url and md5 settings") from None
    for split, found in reviews.items():
        if not found:
            raise DataError(f"dataset 'imdb': the archive from {url} has no aclImdb/{split}/{{pos,neg}}/*.txt reviews; check the url setting")
        found.sort()
    return reviews


def build_vocabulary(texts: list[str], vocab_size: int) -> list[str]:
    counts: Counter[str] = Counter()
    for text in texts:  # token lists are not kept: 25,000 of them would take about a gigabyte
        counts.update(tokenize(text))
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [PAD, UNK, *(word for word, _ in ranked[:vocab_size])]


def encode(reviews: list[Review], index: dict[str, int], max_length: int) -> dict[str, np.ndarray]:
    ids = [[index.get(t, 1) for t in tokenize(r[3])[:max_length]] for r in reviews]
    lengths = np.array([len(x) for x in ids], dtype=np.int16)
    tokens = np.zeros((len(ids), max(1, int(lengths.max()))), dtype=np.int32)
    for row, x in zip(tokens, ids):
        row[: len(x)] = x
    return {
        "tokens": tokens,
        "lengths": lengths,
        "labels": np.array([r[1] for r in reviews], dtype=np.int8),
        "ratings": np.array([r[2] for r in reviews], dtype=np.int8),
    }


def generate(settings: Settings, seed: int, scratch: Path | None = None) -> dict[str, dict[str, np.ndarray]]:
    with scratch_folder(scratch) as folder:
        archive = download(settings.url, folder, md5=settings.md5, name="aclImdb_v1.tar.gz")
        reviews = read_reviews(archive, settings.url)
    rng = np.random.default_rng(seed)
    train = [reviews["train"][i] for i in rng.permutation(len(reviews["train"]))]
    test = [reviews["test"][i] for i in rng.permutation(len(reviews["test"]))]
    n_val = round(len(train) * settings.val_fraction)
    if not 1 <= n_val < len(train):
        raise DataError(f"dataset 'imdb': val_fraction {settings.val_fraction} of {len(train)} training reviews leaves an empty split")
    splits = {"train": train[n_val:], "val": train[:n_val], "test": test}
    if settings.max_examples_per_split is not None:
        splits = {name: found[: settings.max_examples_per_split] for name, found in splits.items()}
    words = build_vocabulary([r[3] for r in splits["train"]], settings.vocab_size)
    index = {word: i for i, word in enumerate(words)}
    out = {name: encode(found, index, settings.max_length) for name, found in splits.items()}
    out["vocab"] = {"words": np.array(words)}
    return out
