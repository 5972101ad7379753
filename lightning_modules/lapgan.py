"""LAPGAN (Denton et al. 2015): a Laplacian pyramid of GANs.

For an image x of side S and ``levels`` = L, the Gaussian pyramid g_0 = x, g_{i+1} = down(g_i)
(2×2 average pooling) has sides S, S/2, ..., s = S/2^(L−1). Level 0 (the coarsest) is a plain
GAN on g_{L−1} (MLPs on the flattened s×s image). Each finer level k generates the Laplacian
coefficient h = g − up(g_coarser) (bilinear up-sampling ×2) conditioned on l = up(g_coarser):
G_k(noise plane, l) -> h (three 3×3 convolutions, linear output), D_k(h, l) -> logit (a DCGAN
discriminator with l as extra channels). The levels are trained independently, each on real
coarser images: the loss below is the sum of the levels' GAN losses, and since no parameter is
shared, one Adam over all of them is the same as one Adam per level. Sampling runs the
pyramid: x_0 = G_0(z); x_k = up(x_{k−1}) + G_k(noise, up(x_{k−1})).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from lightning_modules import gan_networks as nets
from lightning_modules.gan import GAN
from lightning_modules.gan_base import Picture
from lightning_modules.losses import discriminator_loss
from lightning_modules.settings import LAPGANSettings


def down(x: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(x, 2)


def up(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


class LAPGAN(GAN):
    Settings = LAPGANSettings

    def build_networks(self) -> None:
        s = self.settings
        if self.image_shape is None:
            raise ValueError("LAPGAN generates images: the task must give image_shape")
        c, side, _ = self.image_shape
        self.sides = [side // 2 ** (s.levels - 1 - k) for k in range(s.levels)]  # coarse to fine
        if self.sides[0] * 2 ** (s.levels - 1) != side or self.sides[1] < 8:
            raise ValueError(f"LAPGAN with {s.levels} levels needs a side divisible by 2^{s.levels - 1} with the second level at least 8 (got {side})")
        flat = c * self.sides[0] ** 2
        gens: list[nn.Module] = [nn.Sequential(nets.mlp([s.latent_dim] + [s.generator_hidden] * 2 + [flat], nn.ReLU), nn.Tanh(), nets.Reshape(c, self.sides[0], self.sides[0]))]
        discs: list[nn.Module] = [nn.Sequential(nn.Flatten(), nets.mlp([flat] + [s.discriminator_hidden] * 2 + [1], nn.LeakyReLU, negative_slope=0.2))]
        for level_side in self.sides[1:]:
            gens.append(nn.Sequential(
                nn.Conv2d(c + 1, s.width, 3, padding=1), nn.BatchNorm2d(s.width), nn.ReLU(),
                nn.Conv2d(s.width, s.width, 3, padding=1), nn.BatchNorm2d(s.width), nn.ReLU(),
                nn.Conv2d(s.width, c, 3, padding=1),
            ))
            discs.append(nn.Sequential(*nets.conv_critic_layers((c, level_side, level_side), s.width, 1, in_extra=c)))
        self.generator = nn.ModuleList(gens)
        self.discriminator = nn.ModuleList(discs)
        for level in (*gens[1:], *discs[1:]):  # DCGAN's N(0, 0.02) for the convolutional levels;
            nets.dcgan_init_(level)  # it would all but silence the coarsest level's 128-wide MLPs

    def level_generate(self, k: int, z: torch.Tensor, condition: torch.Tensor | None, generator: torch.Generator | None = None) -> torch.Tensor:
        if k == 0:
            return self.generator[0](z)
        noise_plane = torch.randn(condition.shape[0], 1, *condition.shape[2:], generator=generator).to(condition.device)
        return self.generator[k](torch.cat([noise_plane, condition], dim=1))

    def level_critic(self, k: int, x: torch.Tensor, condition: torch.Tensor | None) -> torch.Tensor:
        if k == 0:
            return self.discriminator[0](x).squeeze(1)
        return self.discriminator[k](torch.cat([x, condition], dim=1)).squeeze(1)

    def pyramid(self, z: torch.Tensor, generator: torch.Generator | None = None) -> list[torch.Tensor]:
        """The sample at every level, coarse to fine (the last is the image). The finer levels'
        noise planes come from ``generator``; by default from seed 0, so that the image is a
        function of z alone (the fixed noise batch gives comparable pictures)."""
        generator = generator if generator is not None else torch.Generator().manual_seed(0)
        images = [self.level_generate(0, z, None)]
        for k in range(1, len(self.sides)):
            condition = up(images[-1])
            images.append((condition + self.level_generate(k, z, condition, generator)).clamp(-1, 1))
        return images

    def generate(self, z, labels=None):
        return self.pyramid(z)[-1]

    def extra_pictures(self, z):
        levels = self.pyramid(z[:8])
        side = levels[-1].shape[-1]
        shown = torch.cat([F.interpolate(level, size=side, mode="nearest") for level in levels])
        return [Picture("pyramid.png", shown, len(levels), "pyramid levels, coarse (top) to fine", [f"{lv.shape[-1]}×{lv.shape[-1]}" for lv in levels])]

    @torch.no_grad()
    def sample(self, n, generator=None, labels=None):
        return self.pyramid(self.noise(n, generator), generator)[-1]

    def real_levels(self, real: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
        """(target, condition) per level, coarse to fine: g_coarsest; then (g_k − up(g_{k−1}), up(g_{k−1}))."""
        gaussian = [real]
        for _ in range(len(self.sides) - 1):
            gaussian.append(down(gaussian[-1]))
        gaussian = gaussian[::-1]  # coarse to fine
        out = [(gaussian[0], None)]
        for k in range(1, len(gaussian)):
            condition = up(gaussian[k - 1])
            out.append((gaussian[k] - condition, condition))
        return out

    def critic_loss(self, real, labels, other):
        total, logs = 0.0, {}
        for k, (target, condition) in enumerate(self.real_levels(real)):
            fake = self.level_generate(k, self.noise(real.shape[0]), condition).detach()
            loss = discriminator_loss(self.level_critic(k, target, condition), self.level_critic(k, fake, condition))
            logs[f"d_loss_level{k}"] = loss.detach()
            total = total + loss
        return total, logs

    def generator_loss(self, n, labels, other):
        # the conditions come from the real batch the critic just saw: kept from critic_loss
        total, logs = 0.0, {}
        for k, (_, condition) in enumerate(self._levels_for_generator):
            loss = self.generator_objective(self.level_critic(k, self.level_generate(k, self.noise(n), condition), condition))
            logs[f"g_loss_level{k}"] = loss.detach()
            total = total + loss
        return total, logs

    def training_step(self, batch, batch_idx):
        self._levels_for_generator = self.real_levels(batch[0])
        return super().training_step(batch, batch_idx)

    def validation_step(self, batch, batch_idx):
        self._levels_for_generator = self.real_levels(batch[0])
        return super().validation_step(batch, batch_idx)
