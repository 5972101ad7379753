"""The models. Each is a LightningModule in a small file; its hyper-parameters are a pydantic
``Settings`` class (validated by the pipeline, defaults as the paper publishes them) kept in
``lightning_modules.settings``, and the model class sets ``Settings = ThatClass``. Nothing
here knows of DVC, MLflow or the project's file layout: a model can be built and trained in a
notebook with a plain ``Trainer``.

A model name (``lstm``, ``gan``) picks the network; the task picks the head it is trained
with (``classifier``, ``language-model``, ``sampler-2d``). Adding a model: one file, its
``Settings`` in ``settings.py``, one entry in ``MODELS``, one experiment block in ``params.yaml``.

Importing this package (``MODELS``, ``CELL_NAMES``, every ``Settings``) does not import torch
or Lightning: validating ``params.yaml`` needs only the settings, and every ``zoo`` command
validates it first. ``MODELS`` names each head's class by its import path, ``"module:Class"``;
the model's file is imported the first time the class is asked for (``ModelEntry.cls_for``,
``build``, ``heads[head]``), so a stage that trains one model imports only that one.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from lightning_modules import settings as S
from lightning_modules.settings import CELL_NAMES


@dataclass(frozen=True)
class Head:
    """One head of a model: its LightningModule, named ``"module:Class"`` and imported on first
    use, and that class's ``Settings`` (held here so that validation needs no import)."""

    target: str
    settings: type[BaseModel]

    def load(self) -> type:
        module_name, _, class_name = self.target.partition(":")
        cls = getattr(importlib.import_module(module_name), class_name)
        if getattr(cls, "Settings", None) is not self.settings:
            raise TypeError(f"{self.target}.Settings is not {self.settings.__module__}.{self.settings.__qualname__}, as lightning_modules.MODELS says")
        return cls


class Heads(Mapping[str, type]):
    """Task head -> LightningModule class. Membership, iteration and ``settings`` need no import;
    looking a class up imports its module (once)."""

    def __init__(self, heads: Mapping[str, Head]):
        self._heads = dict(heads)
        self._classes: dict[str, type] = {}

    def __getitem__(self, head: str) -> type:
        if head not in self._classes:
            self._classes[head] = self._heads[head].load()
        return self._classes[head]

    def __iter__(self) -> Iterator[str]:
        return iter(self._heads)

    def __len__(self) -> int:
        return len(self._heads)

    def __contains__(self, head: object) -> bool:
        return head in self._heads

    def head(self, head: str) -> Head:
        return self._heads[head]

    def settings(self, head: str) -> type[BaseModel]:
        return self._heads[head].settings

    def __eq__(self, other: object) -> bool:  # Mapping's would import every class
        return isinstance(other, Heads) and self._heads == other._heads

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Heads({ {name: h.target for name, h in self._heads.items()} })"


@dataclass(frozen=True)
class ModelEntry:
    name: str
    family: str
    heads: Heads  # task head -> LightningModule class (imported on first lookup); a dict of Head is accepted
    fixed: dict[str, Any] = field(default_factory=dict)  # constructor arguments the name implies
    description: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.heads, Heads):
            object.__setattr__(self, "heads", Heads(self.heads))

    def cls_for(self, head: str) -> type:
        return self.heads[head]

    def settings_for(self, head: str) -> type[BaseModel]:
        return self.heads.settings(head)

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

_M = "lightning_modules"
_GAN = Head(f"{_M}.gan:GAN", S.GANSettings)
_DCGAN = Head(f"{_M}.gan:DCGAN", S.DCGANSettings)
_WGAN = Head(f"{_M}.wgan:WGAN", S.WGANSettings)
_WGANGP = Head(f"{_M}.wgan:WGANGP", S.WGANGPSettings)

# One Heads for all the cells: each head's class is imported once, whichever cell asks first.
RECURRENT_HEADS = Heads({
    "classifier": Head(f"{_M}.recurrent:SequenceClassifier", S.SequenceClassifierSettings),
    "language-model": Head(f"{_M}.language_model:LanguageModel", S.LanguageModelSettings),
})

MODELS: dict[str, ModelEntry] = {
    entry.name: entry
    for entry in [
        *(ModelEntry(cell, "recurrent", RECURRENT_HEADS, {"cell": cell}, CELL_DESCRIPTIONS[cell]) for cell in CELL_NAMES),
        ModelEntry("gan", "gan", {"sampler-2d": _GAN}, {}, "GAN, MLP generator and discriminator (Goodfellow et al. 2014)"),
        # --- GANs (heads: sampler-2d for ring/grid, sampler-image for digits/MNIST/CIFAR-10)
        ModelEntry("dcgan", "gan", {"sampler-image": _DCGAN}, {}, "DCGAN, convolutional G and D (Radford et al. 2015)"),
        ModelEntry("gan-mbd", "gan", {"sampler-2d": Head(f"{_M}.gan_mbd:MinibatchDiscriminationGAN", S.MinibatchDiscriminationGANSettings)}, {}, "GAN with minibatch discrimination (Salimans et al. 2016)"),
        ModelEntry("wgan", "gan", {"sampler-2d": _WGAN, "sampler-image": _WGAN}, {}, "Wasserstein GAN, weight clipping (Arjovsky et al. 2017)"),
        ModelEntry("wgan-gp", "gan", {"sampler-2d": _WGANGP, "sampler-image": _WGANGP}, {}, "WGAN with gradient penalty (Gulrajani et al. 2017)"),
        ModelEntry("cgan", "gan", {"sampler-image": Head(f"{_M}.cgan:CGAN", S.DCGANSettings)}, {}, "conditional GAN, label to G and D (Mirza & Osindero 2014)"),
        ModelEntry("acgan", "gan", {"sampler-image": Head(f"{_M}.cgan:ACGAN", S.DCGANSettings)}, {}, "auxiliary-classifier GAN (Odena et al. 2016)"),
        ModelEntry("lapgan", "gan", {"sampler-image": Head(f"{_M}.lapgan:LAPGAN", S.LAPGANSettings)}, {}, "Laplacian pyramid of GANs (Denton et al. 2015)"),
        ModelEntry("cogan", "gan", {"sampler-image": Head(f"{_M}.cogan:CoGAN", S.DCGANSettings)}, {}, "coupled GANs, two domains, shared weights (Liu & Tuzel 2016)"),
        # --- sequence to sequence (heads: seq2seq for dates/translation, captioner, language-model)
        ModelEntry("seq2seq", "seq2seq", {"seq2seq": Head(f"{_M}.seq2seq:Seq2Seq", S.Seq2SeqSettings)}, {}, "encoder-decoder, final state only (Sutskever et al. 2014)"),
        ModelEntry("seq2seq-bahdanau", "seq2seq", {"seq2seq": Head(f"{_M}.seq2seq:Bahdanau", S.BahdanauSettings)}, {}, "encoder-decoder, additive attention (Bahdanau et al. 2015)"),
        ModelEntry("seq2seq-luong", "seq2seq", {"seq2seq": Head(f"{_M}.seq2seq:Luong", S.LuongSettings)}, {}, "encoder-decoder, global attention, input feeding (Luong et al. 2015)"),
        ModelEntry("transformer", "seq2seq", {"seq2seq": Head(f"{_M}.transformer:Transformer", S.TransformerSettings), "language-model": Head(f"{_M}.transformer:TransformerLM", S.TransformerLMSettings)}, {}, "Transformer (Vaswani et al. 2017); its decoder alone as a language model"),
        ModelEntry("show-tell", "captioning", {"captioner": Head(f"{_M}.captioning:ShowTell", S.CaptionerSettings)}, {}, "CNN features start an LSTM decoder (Vinyals et al. 2015)"),
        ModelEntry("show-attend-tell", "captioning", {"captioner": Head(f"{_M}.captioning:ShowAttendTell", S.AttentionSettings)}, {}, "LSTM decoder attends over a CNN feature grid (Xu et al. 2015)"),
    ]
}


def __getattr__(name: str) -> type:
    """``lightning_modules.GAN`` and the like (the classes this package used to import): imported
    on first use."""
    for entry in MODELS.values():
        for head in entry.heads:
            if entry.heads.head(head).target.endswith(f":{name}"):
                return entry.heads[head]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
