"""Coupled GAN (Liu & Tuzel 2016): two GANs, one per domain, that share weights.

G_a and G_b share their first layers (the DCGAN generator up to its last fractionally strided
convolution: the high-level structure of the image); each has its own last layer (the
domain's rendering). D_a and D_b have their own first convolution and share the rest. Trained
on unpaired batches (x_a from domain A, x_b from domain B, different images), the sharing
makes the same z give a corresponding pair, e.g. a digit and its negative. The loss is the
sum of the two GANs' losses (non-saturating by default). ``generate`` gives domain A,
``generate_pair`` both.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from lightning_modules import gan_networks as nets
from lightning_modules.gan import DCGAN
from lightning_modules.gan_base import Picture
from lightning_modules.losses import discriminator_loss


class CoGAN(DCGAN):
    def build_networks(self) -> None:
        s = self.settings
        if self.image_shape is None:
            raise ValueError("CoGAN generates images: the task must give image_shape")
        g = nets.conv_generator_layers(s.latent_dim, self.image_shape, s.width)
        d = nets.conv_critic_layers(self.image_shape, s.width, 1, batch_norm=self.critic_batch_norm)
        self.generator = nn.ModuleDict({
            "shared": nn.Sequential(*g[:-2]),
            "a": nn.Sequential(*g[-2:]),
            "b": copy.deepcopy(nn.Sequential(*g[-2:])),
        })
        self.discriminator = nn.ModuleDict({
            "a": nn.Sequential(*d[:2]),
            "b": copy.deepcopy(nn.Sequential(*d[:2])),
            "shared": nn.Sequential(*d[2:]),
        })
        nets.dcgan_init_(self)  # after the copies, so the two heads start different

    def generate_pair(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.generator["shared"](z)
        return self.generator["a"](h), self.generator["b"](h)

    def generate(self, z, labels=None):
        return self.generate_pair(z)[0]

    @torch.no_grad()
    def sample_domains(self, n, generator=None):
        a, b = self.generate_pair(self.noise(n, generator))
        return {"A": a, "B": b}

    def extra_pictures(self, z):
        a, b = self.generate_pair(z[:16])
        return [Picture("pairs.png", torch.cat([a, b]), 2, "the same 16 noise vectors in domain A (top) and B (bottom)", ["A", "B"])]

    def domain_critic(self, domain: str, x: torch.Tensor) -> torch.Tensor:
        return self.discriminator["shared"](self.discriminator[domain](x)).squeeze(1)

    def critic_loss(self, real, labels, other):
        if other is None:
            raise ValueError("CoGAN needs batches (x, label, x_other) with a second domain")
        fake_a, fake_b = (f.detach() for f in self.generate_pair(self.noise(real.shape[0])))
        loss_a = discriminator_loss(self.domain_critic("a", real), self.domain_critic("a", fake_a))
        loss_b = discriminator_loss(self.domain_critic("b", other), self.domain_critic("b", fake_b))
        return loss_a + loss_b, {"d_loss_a": loss_a.detach(), "d_loss_b": loss_b.detach()}

    def generator_loss(self, n, labels, other):
        fake_a, fake_b = self.generate_pair(self.noise(n))
        loss_a = self.generator_objective(self.domain_critic("a", fake_a))
        loss_b = self.generator_objective(self.domain_critic("b", fake_b))
        return loss_a + loss_b, {}
