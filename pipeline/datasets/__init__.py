"""Data sources: each turns its settings into files under ``data/raw/<dataset>/``.

A source is a module-level object with a pydantic ``Settings`` class and a
``generate(settings, seed, scratch) -> {split: {array name: np.ndarray}}`` function;
``scratch`` is an empty folder for downloads, removed once the arrays are written. Registering one is
a line in ``SOURCES``. ``pipeline.stages.fetch`` writes the splits as ``<split>.npz`` plus a
``manifest.json`` with the settings, counts and SHA-256 of every file.
"""

from __future__ import annotations

from pipeline.datasets import arithmetic, imdb, mixture, parity, text, xml
from pipeline.datasets import captions, dates, translation
from pipeline.datasets import images

SOURCES = {
    "parity": parity,
    "ring": mixture.ring,
    "grid": mixture.grid,
    "digits": images.digits,
    "mnist": images.mnist,  # online
    "cifar10": images.cifar10,  # online
    "arithmetic": arithmetic,
    "xml": xml,
    "pydoc-topics": text.pydoc_topics,
    "python-stdlib": text.python_stdlib,
    "tiny-shakespeare": text.tiny_shakespeare,  # online
    "imdb": imdb,  # online
    "dates": dates,
    "translation": translation,  # online
    "captions": captions,
}
