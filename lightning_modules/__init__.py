"""The models. Each is a LightningModule in a small file, with a pydantic ``Settings``
class whose fields are its hyper-parameters (validated by the pipeline, defaults as the
paper publishes them). Nothing here knows of DVC, MLflow or the project's file layout:
a model can be built and trained in a notebook with a plain ``Trainer``.

Adding a model: one file, one entry in ``MODELS``, one experiment block in ``params.yaml``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from lightning_modules.gan import GAN
from lightning_modules.recurrent import SequenceClassifier


@dataclass(frozen=True)
class ModelEntry:
    name: str
    family: str  # which tasks it fits: "recurrent" (sequence in), "gan-2d" (2-D samples out)
    cls: type
    fixed: dict[str, Any] = field(default_factory=dict)  # constructor arguments the name implies
    description: str = ""

    @property
    def Settings(self) -> type[BaseModel]:
        return self.cls.Settings

    def build(self, settings: BaseModel, **task_args: Any):
        return self.cls(**self.fixed, **task_args, **settings.model_dump())


MODELS: dict[str, ModelEntry] = {
    entry.name: entry
    for entry in [
        ModelEntry("rnn", "recurrent", SequenceClassifier, {"cell": "rnn"}, "Elman RNN, tanh"),
        ModelEntry("lstm", "recurrent", SequenceClassifier, {"cell": "lstm"}, "LSTM without peepholes (Hochreiter & Schmidhuber; Gers)"),
        ModelEntry("gan", "gan-2d", GAN, {}, "GAN with MLP generator and discriminator (Goodfellow et al. 2014)"),
    ]
}
