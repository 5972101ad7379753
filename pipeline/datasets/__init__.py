"""Data sources: each turns its settings into files under ``data/raw/<dataset>/``.

A source is a module-level object with a pydantic ``Settings`` class and a
``generate(settings, seed, scratch) -> {split: {array name: np.ndarray}}`` function;
``scratch`` is an empty folder for downloads, removed once the arrays are written. Registering one is
a line in ``SOURCES``. ``pipeline.stages.fetch`` writes the splits as ``<split>.npz`` plus a
``manifest.json`` with the settings, counts and SHA-256 of every file.
"""

from __future__ import annotations

from pipeline.datasets import arithmetic, imdb, mixture, parity, text, xml

SOURCES = {
    "parity": parity,
    "ring": mixture.ring,
    "arithmetic": arithmetic,
    "xml": xml,
    "pydoc-topics": text.pydoc_topics,
    "python-stdlib": text.python_stdlib,
    "tiny-shakespeare": text.tiny_shakespeare,  # online
    "imdb": imdb,  # online
}
