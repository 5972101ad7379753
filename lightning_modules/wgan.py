"""Wasserstein GAN (Arjovsky et al. 2017) and WGAN with gradient penalty (Gulrajani et al. 2017).

The critic D has no sigmoid; per batch (``gan_base.GANBase``):
    critic step:     minimise E_z[D(G(z))] − E_x[D(x)]           (losses.critic_loss_wasserstein)
      WGAN:          then clip every critic weight to ±``clip`` (losses.clip_weights_)
      WGAN-GP:       plus λ·E[(‖∇D(x̂)‖₂ − 1)²], x̂ = αx + (1 − α)G(z), α ~ U(0,1) per sample
                     (losses.gradient_penalty); no batch norm in the critic (the penalty is
                     per sample, batch norm couples the samples)
    generator step:  every ``critic_steps`` (n_critic = 5) batches, minimise −E_z[D(G(z))]
Defaults are the papers': WGAN RMSprop lr 5e-5, c = 0.01; WGAN-GP Adam lr 1e-4, β = (0.5, 0.9),
λ = 10 (the paper's 2-D toy experiments use λ = 0.1: params.yaml sets it there).
"""

from __future__ import annotations

import torch

from lightning_modules.gan_base import GANBase
from lightning_modules.losses import clip_weights_, critic_loss_wasserstein, generator_loss_wasserstein, gradient_penalty
from lightning_modules.settings import WGANGPSettings, WGANSettings


class WGAN(GANBase):
    Settings = WGANSettings

    def critic_loss(self, real, labels, other):
        fake = self.generate(self.noise(real.shape[0]), labels).detach()
        real_scores, fake_scores = self.critic(real, labels), self.critic(fake, labels)
        loss = critic_loss_wasserstein(real_scores, fake_scores)
        return loss, {"wasserstein_estimate": -loss.detach()}

    def generator_loss(self, n, labels, other):
        return generator_loss_wasserstein(self.critic(self.generate(self.noise(n), labels), labels)), {}

    def after_critic_step(self) -> None:
        clip_weights_(self.discriminator, self.settings.clip)

    def make_optimizer(self, params, lr: float) -> torch.optim.Optimizer:
        return torch.optim.RMSprop(params, lr=lr)


class WGANGP(WGAN):
    Settings = WGANGPSettings  # GANBase's settings and the penalty's: no clip

    critic_batch_norm = False

    def critic_loss(self, real, labels, other):
        fake = self.generate(self.noise(real.shape[0]), labels).detach()
        real_scores, fake_scores = self.critic(real, labels), self.critic(fake, labels)
        wasserstein = critic_loss_wasserstein(real_scores, fake_scores)
        penalty = gradient_penalty(lambda x: self.critic(x, labels), real, fake)
        loss = wasserstein + self.settings.penalty_weight * penalty
        return loss, {"wasserstein_estimate": -wasserstein.detach(), "gradient_penalty": penalty.detach()}

    def after_critic_step(self) -> None:
        pass  # the penalty replaces clipping

    def make_optimizer(self, params, lr: float) -> torch.optim.Optimizer:
        return GANBase.make_optimizer(self, params, lr)
