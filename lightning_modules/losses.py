"""GAN losses as pure functions of the discriminator's logits, shared by every GAN so a sign
is written once. With D(x) = σ(l(x)) and V(D, G) = E_x[log D(x)] + E_z[log(1 − D(G(z)))]
(Goodfellow et al. 2014); log σ(l) and log(1 − σ(l)) are computed from logits for stability.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """−V(D, G): −E[log D(x)] − E[log(1 − D(G(z)))]; D ascends V."""
    real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return real + fake


def generator_loss_minimax(fake_logits: torch.Tensor) -> torch.Tensor:
    """E[log(1 − D(G(z)))], minimised by G: the game as written; its gradient vanishes when D
    confidently rejects the samples (log(1 − σ(l)) = −softplus(l))."""
    return -F.softplus(fake_logits).mean()


def generator_loss_non_saturating(fake_logits: torch.Tensor) -> torch.Tensor:
    """−E[log D(G(z))], minimised by G: the same fixed point, strong gradients early on."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


GENERATOR_LOSSES = {
    "minimax": generator_loss_minimax,
    "non-saturating": generator_loss_non_saturating,
}
