"""Conditional GAN (Mirza & Osindero 2014) and AC-GAN (Odena et al. 2016), on DCGAN networks.

- ``CGAN``: G(z, y) and D(x, y) both receive the label y: one-hot, concatenated to z for G and
  as constant planes to the image channels for D (``GANBase.critic``). The losses are GAN's.
- ``ACGAN``: G(z, y) as above; D(x) sees no label but outputs the real/fake logit and class
  logits. With L_S the GAN loss and L_C the cross-entropy of the class logits
  (losses.classification_loss), D minimises L_S + L_C(real, y) + L_C(fake, y) and G minimises
  its GAN loss + L_C(fake, y): both players are rewarded when fakes are recognisable as y.
The generator's labels are those of the real batch (the data's class frequencies).
"""

from __future__ import annotations

from lightning_modules.gan import DCGAN
from lightning_modules.losses import classification_loss, discriminator_loss


class CGAN(DCGAN):
    conditional = True


class ACGAN(DCGAN):
    conditional = True
    critic_sees_label = False

    @property
    def critic_outputs(self) -> int:
        return 1 + self.n_classes

    def adversarial_scores(self, scores):
        return scores[:, 0]

    def critic_loss(self, real, labels, other):
        fake = self.generate(self.noise(real.shape[0]), labels).detach()
        real_out, fake_out = self.critic(real), self.critic(fake)
        adversarial = discriminator_loss(real_out[:, 0], fake_out[:, 0])
        classes = classification_loss(real_out[:, 1:], labels) + classification_loss(fake_out[:, 1:], labels)
        return adversarial + classes, {"d_class_loss": classes.detach()}

    def generator_loss(self, n, labels, other):
        out = self.critic(self.generate(self.noise(n), labels))
        classes = classification_loss(out[:, 1:], labels)
        return self.generator_objective(out[:, 0]) + classes, {"g_class_loss": classes.detach()}
