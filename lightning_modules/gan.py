"""Generative adversarial network on low-dimensional data (Goodfellow et al. 2014), with MLP
generator G: z -> x and discriminator D: x -> logit.

Training alternates, per batch (manual optimisation, as in Lightning's GAN example):
    D step:  minimise −E_x[log D(x)] − E_z[log(1 − D(G(z)))]      (losses.discriminator_loss)
    G step:  ``generator_loss = "non-saturating"``: minimise −E_z[log D(G(z))]
             ``generator_loss = "minimax"``:        minimise  E_z[log(1 − D(G(z)))]
``d_steps`` discriminator steps precede each generator step. ``generator_steps`` counts the
generator's own updates (Lightning's ``global_step`` counts every optimiser step).
"""

from __future__ import annotations

from typing import Literal

import pytorch_lightning as pl
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from lightning_modules.losses import GENERATOR_LOSSES, discriminator_loss


def mlp(sizes: list[int], activation: type[nn.Module], **kwargs) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(activation(**kwargs))
    return nn.Sequential(*layers)


class GAN(pl.LightningModule):
    class Settings(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True)

        latent_dim: int = Field(16, ge=1)
        generator_hidden: int = Field(128, ge=1)
        generator_layers: int = Field(3, ge=1, description="hidden layers")
        discriminator_hidden: int = Field(128, ge=1)
        discriminator_layers: int = Field(3, ge=1, description="hidden layers")
        generator_loss: Literal["non-saturating", "minimax"] = "non-saturating"
        d_steps: int = Field(1, ge=1, description="discriminator steps per generator step")
        lr_generator: float = Field(1e-3, gt=0)
        lr_discriminator: float = Field(1e-3, gt=0)
        beta1: float = Field(0.5, ge=0, lt=1)
        beta2: float = Field(0.999, ge=0, lt=1)

    def __init__(
        self,
        *,
        data_dim: int,
        latent_dim: int = 16,
        generator_hidden: int = 128,
        generator_layers: int = 3,
        discriminator_hidden: int = 128,
        discriminator_layers: int = 3,
        generator_loss: str = "non-saturating",
        d_steps: int = 1,
        lr_generator: float = 1e-3,
        lr_discriminator: float = 1e-3,
        beta1: float = 0.5,
        beta2: float = 0.999,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.automatic_optimization = False
        self.generator = mlp([latent_dim] + [generator_hidden] * generator_layers + [data_dim], nn.ReLU)
        self.discriminator = mlp(
            [data_dim] + [discriminator_hidden] * discriminator_layers + [1], nn.LeakyReLU, negative_slope=0.2
        )
        self.generator_objective = GENERATOR_LOSSES[generator_loss]
        self.register_buffer("generator_steps", torch.zeros((), dtype=torch.long))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """z (N, latent_dim) -> samples (N, data_dim)."""
        return self.generator(z)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        z = torch.randn(n, self.hparams.latent_dim, generator=generator).to(self.device)
        return self(z)

    def _noise(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.hparams.latent_dim, device=self.device)

    def training_step(self, batch, batch_idx):
        (real,) = batch
        opt_g, opt_d = self.optimizers()
        n = real.shape[0]

        self.toggle_optimizer(opt_d)
        fake = self(self._noise(n)).detach()
        d_loss = discriminator_loss(self.discriminator(real).squeeze(1), self.discriminator(fake).squeeze(1))
        opt_d.zero_grad(set_to_none=True)
        self.manual_backward(d_loss)
        opt_d.step()
        self.untoggle_optimizer(opt_d)
        self.log("train_d_loss", d_loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=n)

        if (batch_idx + 1) % self.hparams.d_steps == 0:
            self.toggle_optimizer(opt_g)
            g_loss = self.generator_objective(self.discriminator(self(self._noise(n))).squeeze(1))
            opt_g.zero_grad(set_to_none=True)
            self.manual_backward(g_loss)
            opt_g.step()
            self.untoggle_optimizer(opt_g)
            self.generator_steps += 1
            self.log("train_g_loss", g_loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=n)

    def on_train_epoch_end(self):
        self.log("generator_steps", self.generator_steps.float(), on_step=False, on_epoch=True)

    def validation_step(self, batch, batch_idx):
        (real,) = batch
        n = real.shape[0]
        gen = torch.Generator().manual_seed(batch_idx)  # same noise every epoch: comparable numbers
        fake_logits = self.discriminator(self.sample(n, generator=gen)).squeeze(1)
        d_loss = discriminator_loss(self.discriminator(real).squeeze(1), fake_logits)
        g_loss = self.generator_objective(fake_logits)
        self.log("val_d_loss", d_loss, on_step=False, on_epoch=True, batch_size=n)
        self.log("val_g_loss", g_loss, on_step=False, on_epoch=True, batch_size=n)

    def configure_optimizers(self):
        betas = (self.hparams.beta1, self.hparams.beta2)
        opt_g = torch.optim.Adam(self.generator.parameters(), lr=self.hparams.lr_generator, betas=betas)
        opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=self.hparams.lr_discriminator, betas=betas)
        return opt_g, opt_d
