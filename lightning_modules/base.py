"""The base class of every model in the zoo.

``ZooModule`` is a ``LightningModule`` with ``EpochMeans`` (``lightning_modules.epoch_means``):
``accumulate`` per batch, the epoch means logged once at the epoch's end and carried in a
checkpoint taken in the middle of an epoch. A model family subclasses it instead of listing
the mixins itself.

A model's constructor takes its shape arguments (what the task's data decides: vocabulary
sizes, image shape) by name and its hyper-parameters as ``**settings``, which
``save_settings`` validates through the class's ``Settings`` (``lightning_modules.settings``):
the defaults are written there only. Every setting, defaults included, is saved as a
hyper-parameter, so a checkpoint loads with the values it was trained with.
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl

from lightning_modules.epoch_means import EpochMeans


class ZooModule(EpochMeans, pl.LightningModule):
    """A ``LightningModule`` with the zoo's epoch means."""

    Settings: type  # the model's pydantic settings (lightning_modules.settings)

    def save_settings(self, shape: dict[str, Any], settings: dict[str, Any]):
        """``settings`` validated through ``type(self).Settings`` (its defaults fill what is not
        given; an unknown or invalid one raises), saved with the ``shape`` arguments as the
        model's hyper-parameters; returns the validated settings."""
        validated = type(self).Settings(**settings)
        self.save_hyperparameters({**shape, **validated.model_dump()})
        return validated
