"""The models. Each is a LightningModule in a small file, with a pydantic ``Settings``
class whose fields are its hyper-parameters (validated by the pipeline, defaults as the
paper publishes them). Nothing here knows of DVC, MLflow or the project's file layout:
a model can be built and trained in a notebook with a plain ``Trainer``.

A model name (``lstm``, ``gan``) picks the network; the task picks the head it is trained
with (``classifier``, ``language-model``, ``sampler-2d``). Adding a model: one file, one
entry in ``MODELS``, one experiment block in ``params.yaml``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from lightning_modules.cells import CELL_NAMES
from lightning_modules.gan import GAN
from lightning_modules.language_model import LanguageModel
from lightning_modules.recurrent import SequenceClassifier


@dataclass(frozen=True)
class ModelEntry:
    name: str
    family: str
    heads: dict[str, type]  # task head -> LightningModule class
    fixed: dict[str, Any] = field(default_factory=dict)  # constructor arguments the name implies
    description: str = ""

    def cls_for(self, head: str) -> type:
        return self.heads[head]

    def settings_for(self, head: str) -> type[BaseModel]:
        return self.heads[head].Settings

    def build(self, head: str, settings: BaseModel, **task_args: Any):
        return self.heads[head](**self.fixed, **task_args, **settings.model_dump())


CELL_DESCRIPTIONS = {
    "rnn": "Elman RNN, tanh",
    "lstm": "LSTM, no peepholes",
    "lstm-peephole": "LSTM with peepholes (Greff's vanilla)",
    "lstm-nig": "Greff NIG: no input gate",
    "lstm-nfg": "Greff NFG: no forget gate",
    "lstm-nog": "Greff NOG: no output gate",
    "lstm-niaf": "Greff NIAF: no input activation",
    "lstm-noaf": "Greff NOAF: no output activation",
    "lstm-np": "Greff NP: no peepholes",
    "lstm-cifg": "Greff CIFG: coupled input and forget gate",
    "lstm-fgr": "Greff FGR: full gate recurrence",
    "gru": "GRU (Cho et al. 2014)",
    "mut1": "MUT1 (Jozefowicz et al. 2015)",
    "mut2": "MUT2 (Jozefowicz et al. 2015)",
    "mut3": "MUT3 (Jozefowicz et al. 2015)",
}

RECURRENT_HEADS = {"classifier": SequenceClassifier, "language-model": LanguageModel}

MODELS: dict[str, ModelEntry] = {
    entry.name: entry
    for entry in [
        *(ModelEntry(cell, "recurrent", RECURRENT_HEADS, {"cell": cell}, CELL_DESCRIPTIONS[cell]) for cell in CELL_NAMES),
        ModelEntry("gan", "gan", {"sampler-2d": GAN}, {}, "GAN, MLP generator and discriminator (Goodfellow et al. 2014)"),
    ]
}
