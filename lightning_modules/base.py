"""The base class of every model in the zoo.

``ZooModule`` is a ``LightningModule`` with ``EpochMeans`` (``lightning_modules.epoch_means``):
``accumulate`` per batch, the epoch means logged once at the epoch's end and carried in a
checkpoint taken in the middle of an epoch. A model family subclasses it instead of listing
the mixins itself.
"""

from __future__ import annotations

import pytorch_lightning as pl

from lightning_modules.epoch_means import EpochMeans


class ZooModule(EpochMeans, pl.LightningModule):
    """A ``LightningModule`` with the zoo's epoch means."""
