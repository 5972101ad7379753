"""Generator and discriminator networks shared by the GAN family.

- 2-D data: MLPs (ReLU in G, LeakyReLU(0.2) in D), as in the mixture experiments of
  PacGAN / VEEGAN.
- Images of side S = 4·2^k: DCGAN (Radford et al. 2015). G: z -> linear -> (w·2^(k−1), 4, 4)
  -> k fractionally strided convolutions (kernel 4, stride 2) doubling the side and halving
  the channels, batch norm + ReLU between, tanh on the output (no batch norm there).
  D: k strided convolutions (kernel 4, stride 2) halving the side down to 4×4 and doubling the
  channels from w, LeakyReLU(0.2), batch norm except on the input layer (and nowhere when
  ``batch_norm=False``: WGAN-GP's critic), then a linear layer to ``out_dim`` scores.
  On the 8×8 digits (k = 1) each network has a single convolution.
- ``MinibatchDiscrimination`` (Salimans et al. 2016, §3.2).
"""

from __future__ import annotations

import math

import torch
from torch import nn


def mlp(sizes: list[int], activation: type[nn.Module], **kwargs) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(activation(**kwargs))
    return nn.Sequential(*layers)


def doublings(side: int) -> int:
    """k with side = 4·2^k; the conv networks need such sides (pad 28×28 MNIST to 32)."""
    k = round(math.log2(side / 4)) if side >= 4 else -1
    if k < 1 or 4 * 2**k != side:
        raise ValueError(f"convolutional GANs need square images of side 4·2^k (8, 16, 32, ...), got {side}")
    return k


class Reshape(nn.Module):
    def __init__(self, *shape: int):
        super().__init__()
        self.shape = shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.view(x.shape[0], *self.shape)


def conv_generator_layers(in_dim: int, image_shape: tuple[int, int, int], width: int) -> list[nn.Module]:
    """DCGAN generator as a flat list of layers: (N, in_dim) -> (N, C, S, S) in [−1, 1]."""
    channels, side, _ = image_shape
    k = doublings(side)
    c = width * 2 ** (k - 1)
    layers: list[nn.Module] = [nn.Linear(in_dim, c * 16), Reshape(c, 4, 4), nn.BatchNorm2d(c), nn.ReLU()]
    for i in range(k):
        last = i == k - 1
        out = channels if last else c // 2
        layers.append(nn.ConvTranspose2d(c, out, 4, 2, 1, bias=last))
        layers += [nn.Tanh()] if last else [nn.BatchNorm2d(out), nn.ReLU()]
        c = out
    return layers


def conv_critic_layers(image_shape: tuple[int, int, int], width: int, out_dim: int, in_extra: int = 0, batch_norm: bool = True) -> list[nn.Module]:
    """DCGAN discriminator as a flat list of layers: (N, C + in_extra, S, S) -> (N, out_dim)."""
    channels, side, _ = image_shape
    k = doublings(side)
    c_in, c = channels + in_extra, width
    layers: list[nn.Module] = []
    for i in range(k):
        layers.append(nn.Conv2d(c_in, c, 4, 2, 1, bias=not (batch_norm and i > 0)))
        if batch_norm and i > 0:  # not on D's input layer (Radford et al. 2015)
            layers.append(nn.BatchNorm2d(c))
        layers.append(nn.LeakyReLU(0.2))
        c_in, c = c, c * 2
    layers += [nn.Flatten(), nn.Linear(c_in * 16, out_dim)]
    return layers


def dcgan_init_(module: nn.Module) -> None:
    """Radford et al. 2015: every weight from N(0, 0.02); batch-norm scales from N(1, 0.02)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class MinibatchDiscrimination(nn.Module):
    """Salimans et al. 2016, §3.2: f (N, A) -> [f, o] (N, A + B).

    M_i = f_i T reshaped to (B, C); c_b(x_i, x_j) = exp(−‖M_{i,b} − M_{j,b}‖_L1);
    o(x_i)_b = Σ_{j≠i} c_b(x_i, x_j). A batch of identical samples gives o = N − 1 in every
    feature, a diverse one gives values near 0: collapse becomes visible to D.
    """

    def __init__(self, in_features: int, n_kernels: int, kernel_dim: int):
        super().__init__()
        self.n_kernels, self.kernel_dim = n_kernels, kernel_dim
        self.T = nn.Parameter(torch.randn(in_features, n_kernels * kernel_dim) * 0.1)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        m = (f @ self.T).view(-1, self.n_kernels, self.kernel_dim).transpose(0, 1)  # (B, N, C)
        l1 = torch.cdist(m, m, p=1)  # (B, N, N): ‖M_{i,b} − M_{j,b}‖₁
        o = (torch.exp(-l1).sum(2) - 1.0).t()  # (N, B), minus c_b(x_i, x_i) = 1
        return torch.cat([f, o], dim=1)


def one_hot(labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    return nn.functional.one_hot(labels.long(), n_classes).float()


def label_planes(labels: torch.Tensor, n_classes: int, side: int) -> torch.Tensor:
    """One-hot labels broadcast to (N, n_classes, side, side): the conditional D's extra channels."""
    return one_hot(labels, n_classes)[:, :, None, None].expand(-1, -1, side, side)
