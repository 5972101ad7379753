"""GAN with minibatch discrimination (Salimans et al. 2016, §3.2).

The discriminator's last hidden features f(x_i) pass through ``MinibatchDiscrimination``,
which appends, per learned kernel b, o_b(x_i) = Σ_{j≠i} exp(−‖M_{i,b} − M_{j,b}‖₁): how close
x_i is to the rest of its batch. A collapsed generator makes every batch of fakes unusually
self-similar, which D can now see; the real and fake batches go through D separately, so the
statistics compare a sample with its own kind. Everything else is ``GAN``.
"""

from __future__ import annotations

from torch import nn

from lightning_modules import gan_networks as nets
from lightning_modules.gan import GAN
from lightning_modules.settings import MinibatchDiscriminationGANSettings


class MinibatchDiscriminationGAN(GAN):
    Settings = MinibatchDiscriminationGANSettings

    def mlp_discriminator(self) -> nn.Module:
        s = self.settings
        body = nets.mlp([self.data_dim + self.critic_label_dim] + [s.discriminator_hidden] * s.discriminator_layers, nn.LeakyReLU, negative_slope=0.2)
        return nn.Sequential(
            *body,
            nn.LeakyReLU(0.2),
            nets.MinibatchDiscrimination(s.discriminator_hidden, s.mbd_kernels, s.mbd_kernel_dim),
            nn.Linear(s.discriminator_hidden + s.mbd_kernels, self.critic_outputs),
        )
