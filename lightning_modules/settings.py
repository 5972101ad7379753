"""Every model's hyper-parameters as a pydantic ``Settings`` class, and the cell names: what
validating ``params.yaml`` needs of the models, without torch or Lightning.

Each LightningModule sets its own ``Settings = XSettings`` (``cls.Settings`` keeps working);
``lightning_modules.MODELS`` names a model's classes by import path and holds these classes
directly, so validation imports this module only and a model's file is imported when the
model is built or loaded. Defaults are the papers'; a field's ``description`` says what it is.
Keep this module free of torch (``tests/test_imports.py`` checks).
"""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# The cells of ``cells.py``, in its order (cells.py imports this list).
CELL_NAMES = [
    "rnn",
    "lstm",
    "lstm-peephole",
    "lstm-nig",
    "lstm-nfg",
    "lstm-nog",
    "lstm-niaf",
    "lstm-noaf",
    "lstm-np",
    "lstm-cifg",
    "lstm-fgr",
    "gru",
    "mut1",
    "mut2",
    "mut3",
]


# --------------------------------------------------------------------------------------- recurrent


class RecurrentSettings(BaseModel):
    """Shared by the recurrent classifier and language model (``recurrent.RecurrentModel``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    embedding_dim: int = Field(16, ge=1)
    hidden_size: int = Field(64, ge=1)
    num_layers: int = Field(1, ge=1)
    dropout: float = Field(0.0, ge=0, lt=1, description="between stacked layers")
    forget_bias: float = Field(1.0, description="LSTM family: initial forget-gate bias")
    init_scale: Optional[float] = Field(None, gt=0, description="multiplies the initial recurrent weights")
    fused: bool = Field(True, description="rnn and lstm: torch's fused layers (same equations, faster)")
    lr: float = Field(3e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    optimizer: Literal["adam", "sgd"] = Field(
        "adam", description="sgd: plain stochastic gradient descent, as Pascanu et al. 2013 train their RNNs (claim 3)"
    )
    momentum: float = Field(0.0, ge=0, lt=1, description="sgd only: heavy-ball momentum; 0 = plain SGD")
    lr_halving_patience: Optional[int] = Field(
        None,
        ge=0,
        description="halve the learning rate once val_loss has not improved for this many epochs "
        "(torch's ReduceLROnPlateau, factor 0.5); none: constant. Keep the plateau's patience above it",
    )

    @model_validator(mode="after")
    def _momentum_needs_sgd(self) -> "RecurrentSettings":
        if self.momentum and self.optimizer != "sgd":
            raise ValueError("momentum applies to optimizer 'sgd' only")
        return self


class SequenceClassifierSettings(RecurrentSettings):
    bidirectional: bool = False


class LanguageModelSettings(RecurrentSettings):
    pass  # reads left to right: no bidirectional setting


# --------------------------------------------------------------------------------------- GANs


class GANBaseSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    latent_dim: int = Field(16, ge=1)
    generator_hidden: int = Field(128, ge=1, description="MLP (2-D data) width")
    generator_layers: int = Field(3, ge=1, description="MLP hidden layers")
    discriminator_hidden: int = Field(128, ge=1)
    discriminator_layers: int = Field(3, ge=1)
    width: int = Field(32, ge=1, description="conv nets (images): channels of D's first / G's last hidden layer")
    critic_steps: int = Field(1, ge=1, description="discriminator (critic) steps per generator step")
    lr_generator: float = Field(1e-3, gt=0)
    lr_discriminator: float = Field(1e-3, gt=0)
    beta1: float = Field(0.5, ge=0, lt=1)
    beta2: float = Field(0.999, ge=0, lt=1)
    lr_decay_epochs: Optional[int] = Field(
        None, ge=1, description="both learning rates fall linearly to 0 over this many epochs, as in Gulrajani et al.'s CIFAR-10 code; none: constant"
    )


class GANSettings(GANBaseSettings):
    generator_loss: Literal["non-saturating", "minimax"] = "non-saturating"


class DCGANSettings(GANSettings):
    """Also CGAN's, AC-GAN's and CoGAN's (they inherit DCGAN's)."""

    latent_dim: int = Field(100, ge=1)
    lr_generator: float = Field(2e-4, gt=0)
    lr_discriminator: float = Field(2e-4, gt=0)
    beta1: float = Field(0.5, ge=0, lt=1)
    beta2: float = Field(0.999, ge=0, lt=1)


class MinibatchDiscriminationGANSettings(GANSettings):
    mbd_kernels: int = Field(5, ge=1, description="B, the number of minibatch kernels")
    mbd_kernel_dim: int = Field(3, ge=1, description="C, the dimension of each kernel")


class LAPGANSettings(GANSettings):
    levels: int = Field(3, ge=2, description="pyramid levels; the coarsest has side S / 2^(levels-1)")
    lr_generator: float = Field(2e-4, gt=0)
    lr_discriminator: float = Field(2e-4, gt=0)


class WGANSettings(GANBaseSettings):
    critic_steps: int = Field(5, ge=1, description="n_critic: critic steps per generator step")
    lr_generator: float = Field(5e-5, gt=0)
    lr_discriminator: float = Field(5e-5, gt=0)
    clip: float = Field(0.01, gt=0, description="critic weights are clipped to [-clip, clip]")


class WGANGPSettings(GANBaseSettings):
    """GANBase's, not WGAN's: the penalty replaces clipping, so there is no ``clip``."""

    critic_steps: int = Field(5, ge=1, description="n_critic: critic steps per generator step")
    lr_generator: float = Field(1e-4, gt=0)
    lr_discriminator: float = Field(1e-4, gt=0)
    beta1: float = Field(0.5, ge=0, lt=1)
    beta2: float = Field(0.9, ge=0, lt=1)
    penalty_weight: float = Field(10.0, ge=0, description="λ of the gradient penalty")


# --------------------------------------------------------------------------------------- seq2seq


class Seq2SeqSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    cell: str = Field("lstm", description="any of cells.CELL_NAMES, for encoder and decoder")
    embedding_dim: int = Field(32, ge=1)
    hidden_size: int = Field(128, ge=1)
    num_layers: int = Field(1, ge=1)
    dropout: float = Field(0.0, ge=0, lt=1, description="between stacked layers")
    bidirectional: bool = Field(False, description="encoder reads both ways")
    reverse_source: bool = Field(True, description="Sutskever et al. 2014: feed the source reversed")
    forget_bias: float = Field(1.0, description="LSTM family: initial forget-gate bias")
    teacher_forcing: float = Field(1.0, ge=0, le=1, description="chance the decoder reads the reference (else its own argmax) while training")
    beam_width: int = Field(4, ge=1, description="beam search at evaluation")
    lr: float = Field(3e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)

    @field_validator("cell")
    @classmethod
    def _known_cell(cls, value: str) -> str:
        if value not in CELL_NAMES:
            raise ValueError(f"unknown cell {value!r}; choose one of {', '.join(CELL_NAMES)}")
        return value


class BahdanauSettings(Seq2SeqSettings):
    bidirectional: bool = Field(True, description="the paper's encoder reads both ways")
    reverse_source: bool = False
    attention_size: int = Field(128, ge=1, description="width of W_a s + U_a h")


class LuongSettings(Seq2SeqSettings):
    reverse_source: bool = False
    score: Literal["dot", "general"] = Field("general", description="s_tᵀ h̄ or s_tᵀ W_a h̄")

    @model_validator(mode="after")
    def _dot_needs_equal_sizes(self) -> "LuongSettings":
        if self.score == "dot" and self.bidirectional:
            raise ValueError("score 'dot' needs encoder outputs as wide as the decoder: use score 'general' with a bidirectional encoder")
        return self


class TransformerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    d_model: int = Field(64, ge=2)
    heads: int = Field(4, ge=1)
    encoder_layers: int = Field(2, ge=1)
    decoder_layers: int = Field(2, ge=1)
    ff_size: int = Field(256, ge=1)
    dropout: float = Field(0.1, ge=0, lt=1)
    warmup_steps: int = Field(200, ge=1)
    teacher_forcing: float = Field(1.0, ge=0, le=1)
    beam_width: int = Field(4, ge=1, description="beam search at evaluation")
    lr: float = Field(1e-3, gt=0, description="peak learning rate")
    weight_decay: float = Field(0.0, ge=0)

    @model_validator(mode="after")
    def _heads_divide(self):
        if self.d_model % self.heads or (self.d_model // self.heads) % 2:
            raise ValueError("d_model must be an even multiple of heads (d_k = d_model / heads, even for the encodings)")
        return self


class TransformerLMSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    d_model: int = Field(128, ge=2)
    heads: int = Field(4, ge=1)
    layers: int = Field(2, ge=1)
    ff_size: int = Field(512, ge=1)
    dropout: float = Field(0.1, ge=0, lt=1)
    context_length: int = Field(128, ge=2, description="characters a prediction may see, its own window included")
    warmup_steps: int = Field(200, ge=1)
    lr: float = Field(1e-3, gt=0, description="peak learning rate")
    weight_decay: float = Field(0.0, ge=0)

    @model_validator(mode="after")
    def _heads_divide(self):
        if self.d_model % self.heads or (self.d_model // self.heads) % 2:
            raise ValueError("d_model must be an even multiple of heads")
        return self


# --------------------------------------------------------------------------------------- captioning


class CaptionerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    channels: int = Field(64, ge=1, description="features per grid cell (D)")
    embedding_dim: int = Field(32, ge=1)
    hidden_size: int = Field(128, ge=1)
    forget_bias: float = Field(1.0)
    teacher_forcing: float = Field(1.0, ge=0, le=1)
    beam_width: int = Field(3, ge=1, description="beam search at evaluation")
    lr: float = Field(3e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)


class AttentionSettings(CaptionerSettings):
    attention_size: int = Field(64, ge=1)
