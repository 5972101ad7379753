"""Generative adversarial network (Goodfellow et al. 2014) and DCGAN (Radford et al. 2015).

Discriminator D: x -> logit l(x), D(x) = σ(l(x)). Per batch (``gan_base.GANBase``):
    D step:  minimise −E_x[log D(x)] − E_z[log(1 − D(G(z)))]       (losses.discriminator_loss)
    G step:  ``generator_loss = "non-saturating"``: minimise −E_z[log D(G(z))]
             ``generator_loss = "minimax"``:        minimise  E_z[log(1 − D(G(z)))]
The minimax loss is the game as written; its gradient vanishes when D confidently rejects the
samples, which is the tutorial's "vanishing gradient strikes back" (REFERENCE.md claim 8).

``GAN`` uses MLPs on 2-D points; ``DCGAN`` is the same game with the DCGAN networks on images
and the paper's settings as defaults: weights N(0, 0.02), Adam lr 2e-4, β = (0.5, 0.999).
"""

from __future__ import annotations

from lightning_modules.gan_base import GANBase
from lightning_modules.losses import GENERATOR_LOSSES, discriminator_loss
from lightning_modules.settings import DCGANSettings, GANSettings


class GAN(GANBase):
    Settings = GANSettings

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.generator_objective = GENERATOR_LOSSES[self.settings.generator_loss]

    def adversarial_scores(self, scores):
        """The real/fake logit of D's output (AC-GAN's D also has class logits)."""
        return scores

    def critic_loss(self, real, labels, other):
        fake = self.generate(self.noise(real.shape[0]), labels).detach()
        real_logits = self.adversarial_scores(self.critic(real, labels))
        fake_logits = self.adversarial_scores(self.critic(fake, labels))
        return discriminator_loss(real_logits, fake_logits), {}

    def generator_loss(self, n, labels, other):
        fake_logits = self.adversarial_scores(self.critic(self.generate(self.noise(n), labels), labels))
        return self.generator_objective(fake_logits), {}


class DCGAN(GAN):
    Settings = DCGANSettings
