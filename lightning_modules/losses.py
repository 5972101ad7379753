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


# ------------------------------------------------------------------ Wasserstein critics


def critic_loss_wasserstein(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """E[D(G(z))] − E[D(x)], minimised by the critic (Arjovsky et al. 2017, Algorithm 1): the
    negative of its estimate of the Wasserstein-1 distance. Scores are unbounded (no sigmoid)."""
    return fake_scores.mean() - real_scores.mean()


def generator_loss_wasserstein(fake_scores: torch.Tensor) -> torch.Tensor:
    """−E[D(G(z))], minimised by G."""
    return -fake_scores.mean()


def gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor, alpha: torch.Tensor | None = None) -> torch.Tensor:
    """E[(‖∇D(x̂)‖₂ − 1)²] on x̂ = αx + (1 − α)G(z), one α ~ U(0, 1) per sample (Gulrajani et
    al. 2017, Algorithm 1); multiply by λ outside. ``critic`` maps a batch to (N,) or (N, 1)
    scores; ``alpha`` (N,) may be given (tests). The graph is kept (create_graph) so the penalty
    trains the critic."""
    n = real.shape[0]
    if alpha is None:
        alpha = torch.rand(n, device=real.device, dtype=real.dtype)
    alpha = alpha.view(n, *([1] * (real.dim() - 1)))
    mixed = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    scores = critic(mixed)
    (grad,) = torch.autograd.grad(scores.sum(), mixed, create_graph=True)
    norms = grad.flatten(1).norm(2, dim=1)
    return ((norms - 1) ** 2).mean()


@torch.no_grad()
def clip_weights_(module: torch.nn.Module, c: float) -> None:
    """Clamp every parameter of the critic to [−c, c] in place (WGAN's crude Lipschitz bound)."""
    for p in module.parameters():
        p.clamp_(-c, c)


def classification_loss(class_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the auxiliary classifier's logits (AC-GAN, Odena et al. 2016, L_C)."""
    return F.cross_entropy(class_logits, labels.long())
