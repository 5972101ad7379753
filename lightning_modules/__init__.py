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

from lightning_modules.captioning import ShowAttendTell, ShowTell
from lightning_modules.cells import CELL_NAMES
from lightning_modules.cgan import ACGAN, CGAN
from lightning_modules.cogan import CoGAN
from lightning_modules.gan import DCGAN, GAN
from lightning_modules.gan_mbd import MinibatchDiscriminationGAN
from lightning_modules.language_model import LanguageModel
from lightning_modules.lapgan import LAPGAN
from lightning_modules.recurrent import SequenceClassifier
from lightning_modules.seq2seq import Bahdanau, Luong, Seq2Seq
from lightning_modules.transformer import Transformer, TransformerLM
from lightning_modules.wgan import WGAN, WGANGP


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
        # --- GANs (heads: sampler-2d for ring/grid, sampler-image for digits/MNIST/CIFAR-10)
        ModelEntry("dcgan", "gan", {"sampler-image": DCGAN}, {}, "DCGAN, convolutional G and D (Radford et al. 2015)"),
        ModelEntry("gan-mbd", "gan", {"sampler-2d": MinibatchDiscriminationGAN}, {}, "GAN with minibatch discrimination (Salimans et al. 2016)"),
        ModelEntry("wgan", "gan", {"sampler-2d": WGAN, "sampler-image": WGAN}, {}, "Wasserstein GAN, weight clipping (Arjovsky et al. 2017)"),
        ModelEntry("wgan-gp", "gan", {"sampler-2d": WGANGP, "sampler-image": WGANGP}, {}, "WGAN with gradient penalty (Gulrajani et al. 2017)"),
        ModelEntry("cgan", "gan", {"sampler-image": CGAN}, {}, "conditional GAN, label to G and D (Mirza & Osindero 2014)"),
        ModelEntry("acgan", "gan", {"sampler-image": ACGAN}, {}, "auxiliary-classifier GAN (Odena et al. 2016)"),
        ModelEntry("lapgan", "gan", {"sampler-image": LAPGAN}, {}, "Laplacian pyramid of GANs (Denton et al. 2015)"),
        ModelEntry("cogan", "gan", {"sampler-image": CoGAN}, {}, "coupled GANs, two domains, shared weights (Liu & Tuzel 2016)"),
        # --- sequence to sequence (heads: seq2seq for dates/translation, captioner, language-model)
        ModelEntry("seq2seq", "seq2seq", {"seq2seq": Seq2Seq}, {}, "encoder-decoder, final state only (Sutskever et al. 2014)"),
        ModelEntry("seq2seq-bahdanau", "seq2seq", {"seq2seq": Bahdanau}, {}, "encoder-decoder, additive attention (Bahdanau et al. 2015)"),
        ModelEntry("seq2seq-luong", "seq2seq", {"seq2seq": Luong}, {}, "encoder-decoder, global attention, input feeding (Luong et al. 2015)"),
        ModelEntry("transformer", "seq2seq", {"seq2seq": Transformer, "language-model": TransformerLM}, {}, "Transformer (Vaswani et al. 2017); its decoder alone as a language model"),
        ModelEntry("show-tell", "captioning", {"captioner": ShowTell}, {}, "CNN features start an LSTM decoder (Vinyals et al. 2015)"),
        ModelEntry("show-attend-tell", "captioning", {"captioner": ShowAttendTell}, {}, "LSTM decoder attends over a CNN feature grid (Xu et al. 2015)"),
    ]
}
