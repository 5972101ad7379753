"""Tiny files in the publishers' own formats, for the download code to fetch from a local HTTP
server instead of the real addresses: MNIST's gzipped IDX files, CIFAR-10's python pickles,
IMDb's aclImdb archive, the Tatoeba English-Dutch zip and a tiny-shakespeare text.

The dataset tests check each source's parsing against them; ``write_all`` lays out one of each
for the paper profile's rehearsal and returns the settings that point its datasets there, the
checksums replaced by the test files' own."""

from __future__ import annotations

import gzip
import hashlib
import io
import pickle
import struct
import tarfile
import zipfile
from pathlib import Path

import numpy as np


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


# -------------------------------------------------------------------------------------- MNIST

def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", n) for n in array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes())


def write_mnist(www: Path, n_train: int = 30, n_test: int = 12) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """The four IDX files under ``www/mnist/``: (arrays by file name, md5 by file name)."""
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (n_train, 28, 28)),
        "train-labels-idx1-ubyte.gz": np.arange(n_train) % 10,
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (n_test, 28, 28)),
        "t10k-labels-idx1-ubyte.gz": (np.arange(n_test) + 3) % 10,
    }
    sums = {}
    (www / "mnist").mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        data = idx_bytes(array)
        (www / "mnist" / name).write_bytes(data)
        sums[name] = md5(data)
    return arrays, sums


# ----------------------------------------------------------------------------------- CIFAR-10

def cifar_archive(n_per_batch: int = 6) -> tuple[bytes, dict]:
    """cifar-10-python.tar.gz's layout: five training batches and a test batch of pickled dicts."""
    rng = np.random.default_rng(1)
    buffer, parts = io.BytesIO(), {}
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
            data = rng.integers(0, 256, (n_per_batch, 3072), dtype=np.uint8)
            labels = list(rng.integers(0, 10, n_per_batch))
            parts[name] = (data, labels)
            payload = pickle.dumps({b"data": data, b"labels": labels, b"batch_label": name.encode()})
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return buffer.getvalue(), parts


# --------------------------------------------------------------------------------------- IMDb

POOLS = {1: ["great", "wonderful", "loved"], 0: ["awful", "boring", "hated"]}


def review(label: int, k: int) -> tuple[str, list[str]]:
    """A review's raw text (capitals, commas, line breaks) and the tokens it must give."""
    word, mark = POOLS[label][k % 3], "!" if label else "?"
    raw = "The " + "MOVIE, " * (k + 1) + f"{word}.<br /><br />Don't{mark}"
    return raw, ["the", *["movie"] * (k + 1), word, "don't", mark]


def aclimdb_archive(path: Path, n_train: int, n_test: int) -> dict[tuple[str, ...], tuple[str, int, int]]:
    """A tiny archive in the aclImdb layout; returns expected tokens → (folder split, label, rating)."""
    expected = {}
    with tarfile.open(path, "w:gz") as tar:
        for split, n in (("train", n_train), ("test", n_test)):
            for label, polarity in ((1, "pos"), (0, "neg")):
                for k in range(n):
                    rating = 7 + k % 4 if label else 1 + k % 4
                    raw, tokens = review(label, k)
                    data = raw.encode()
                    info = tarfile.TarInfo(f"aclImdb/{split}/{polarity}/{k}_{rating}.txt")
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
                    expected[(split, *tokens)] = (split, label, rating)
        unsup = b"unlabelled, must be ignored"
        info = tarfile.TarInfo("aclImdb/train/unsup/0_0.txt")
        info.size = len(unsup)
        tar.addfile(info, io.BytesIO(unsup))
    return expected


# ----------------------------------------------------------------------- English-Dutch pairs

PAIRS = [
    ("Go.", "Lopen!"), ("Hi.", "Hoi."), ("Run!", "Ren!"), ("Who?", "Wie?"), ("Wow!", "Da's niet niks!"),
    ("I won.", "Ik heb gewonnen."), ("I'm OK.", "Het gaat goed met me."), ("Help me.", "Help me."),
    ("Tom ran.", "Tom rende."), ("I see Tom.", "Ik zie Tom."), ("Tom is here.", "Tom is hier."),
    ("I like cats.", "Ik hou van katten."), ("It's raining.", "Het regent."), ("We're home.", "We zijn thuis."),
]


def tatoeba_zip(lines: list[str]) -> bytes:
    """nld-eng.zip's layout: ``nld.txt`` (English, Dutch, attribution; tab-separated) and ``_about.txt``."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("nld.txt", "\n".join(lines) + "\n")
        archive.writestr("_about.txt", "about the file")
    return buffer.getvalue()


# --------------------------------------------------------------------------- tiny-shakespeare

SHAKESPEARE = (
    "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n\n"
    "First Citizen:\nYou are all resolved rather to die than to famish?\n\nAll:\nResolved. resolved.\n"
) * 5


# ------------------------------------------------------------------------ all of them at once

def write_all(www: Path, base: str, *, images: int = 700, reviews: int = 60, pairs: int = 300) -> dict[str, dict]:
    """One file set of every online source under ``www`` (served at ``base``, ending in /):
    the dataset settings, by source, that fetch them there and check them against their own
    checksums. ``images`` training images (MNIST; CIFAR-10 a fifth of them per batch), ``reviews``
    per split and polarity, ``pairs`` sentence pairs."""
    _, sums = write_mnist(www, n_train=images, n_test=images // 5)
    cifar, _ = cifar_archive(n_per_batch=images // 5)
    (www / "cifar-10-python.tar.gz").write_bytes(cifar)
    aclimdb_archive(www / "aclImdb_v1.tar.gz", n_train=reviews, n_test=reviews)
    lines = [f"{en}\t{nl}\tattribution {i}" for i, (en, nl) in enumerate(PAIRS)]
    lines += [f"Tom saw {i} cats.\tTom zag {i} katten.\tx" for i in range(pairs - len(PAIRS))]
    (www / "nld-eng.zip").write_bytes(tatoeba_zip(lines))
    text = SHAKESPEARE * 40
    (www / "input.txt").write_text(text, encoding="utf-8")
    return {
        "mnist": {"url": base + "mnist/", "md5": sums},
        "cifar10": {"url": base + "cifar-10-python.tar.gz", "md5": md5(cifar)},
        "imdb": {"url": base + "aclImdb_v1.tar.gz", "md5": md5((www / "aclImdb_v1.tar.gz").read_bytes())},
        "translation": {"url": base + "nld-eng.zip", "sha256": hashlib.sha256((www / "nld-eng.zip").read_bytes()).hexdigest()},
        "tiny-shakespeare": {"url": base + "input.txt", "sha256": hashlib.sha256(text.encode()).hexdigest()},
    }
