"""The shared base of every GAN here: manual optimisation of two players.

Per training batch (as Lightning's GAN example, ``toggle_optimizer`` / ``manual_backward``):

    critic step:     minimise ``critic_loss(batch)``   (the discriminator / critic, optimiser 2)
    generator step:  every ``critic_steps``-th batch, minimise ``generator_loss(batch)`` (optimiser 1)

``generator_steps`` (a buffer, saved in the checkpoint) counts the generator's own updates;
Lightning's ``global_step`` counts every optimiser step and so mixes the two players. The
losses of every generator step are kept in ``loss_history`` (saved in the checkpoint) for the
loss plot. ``fixed_noise`` is a batch of latent vectors drawn from seed 0, the same for every
run with the same ``latent_dim``, so pictures of different epochs and models are comparable.

A subclass changes only what differs: the two losses (``critic_loss``, ``generator_loss``),
the networks (``build_networks``), the optimisers (``make_optimizer``), a hook after each
critic step (``after_critic_step``, WGAN's clipping), and what it shows beyond samples
(``sample_domains``: CoGAN's two domains; ``extra_pictures``: LAPGAN's pyramid). The networks are MLPs when the task gives
``data_dim`` (2-D points) and DCGAN convolutional networks when it gives ``image_shape``.
Batches are ``(x,)`` or ``(x, label)`` or ``(x, label, x_other)`` (CoGAN's second domain).
``lr_decay_epochs`` (every GAN's setting) makes both learning rates fall linearly to 0 over that
many epochs; the module steps the schedulers itself at each epoch's end (manual optimisation).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import torch
from torch import nn

from lightning_modules import gan_networks as nets
from lightning_modules.base import ZooModule
from lightning_modules.settings import GANBaseSettings

FIXED_NOISE = 64


@dataclass(frozen=True)
class Picture:
    """A picture a model adds to its evaluation's (``GANBase.extra_pictures``): ``images``
    (N, C, S, S) in [−1, 1] laid out in ``rows`` rows, written as ``file`` in the experiment's
    plots folder, titled with the experiment and ``caption``; ``row_labels`` name the rows."""

    file: str
    images: torch.Tensor
    rows: int
    caption: str
    row_labels: Optional[list[str]] = None


class GANBase(ZooModule):
    Settings = GANBaseSettings  # a subclass sets its own (lightning_modules.settings)

    conditional = False  # does G take a class label?
    critic_sees_label = True  # does D take it too (when conditional)? AC-GAN's D must infer it

    def __init__(self, *, data_dim: int | None = None, image_shape: tuple[int, int, int] | list[int] | None = None, n_classes: int = 0, **settings: Any):
        super().__init__()
        if (data_dim is None) == (image_shape is None):
            raise ValueError("give exactly one of data_dim (2-D points) and image_shape (images)")
        image_shape = list(image_shape) if image_shape is not None else None
        self.settings = self.save_settings({"data_dim": data_dim, "image_shape": image_shape, "n_classes": n_classes}, settings)
        self.automatic_optimization = False
        self.data_dim = data_dim
        self.image_shape = tuple(image_shape) if image_shape is not None else None
        self.n_classes = n_classes
        if self.conditional and n_classes < 2:
            raise ValueError(f"{type(self).__name__} is conditional: the task must give n_classes >= 2")
        self.build_networks()
        self.register_buffer("generator_steps", torch.zeros((), dtype=torch.long))
        fixed = torch.randn(FIXED_NOISE, self.settings.latent_dim, generator=torch.Generator().manual_seed(0))
        self.register_buffer("fixed_noise", fixed)
        self.loss_history: list[tuple[int, float, float]] = []  # (generator step, D loss, G loss)

    @property
    def loss_history(self) -> list[tuple[int, float, float]]:
        """(generator step, D loss, G loss) of every generator step. Training appends tensors;
        they are read back to the host in one transfer when the history is asked for, not
        once per step (which would make every step wait for a GPU)."""
        if self._new_losses:
            rows = torch.stack(self._new_losses).tolist()
            self._loss_history.extend((int(step), d, g) for step, d, g in rows)
            self._new_losses.clear()
        return self._loss_history

    @loss_history.setter
    def loss_history(self, rows: list[tuple[int, float, float]]) -> None:
        self._loss_history = list(rows)
        self._new_losses = []

    # ----------------------------------------------------------------------------- networks

    @property
    def label_dim(self) -> int:
        return self.n_classes if self.conditional else 0

    @property
    def critic_label_dim(self) -> int:
        return self.label_dim if self.critic_sees_label else 0

    def build_networks(self) -> None:
        s = self.settings
        if self.image_shape is None:
            self.generator = nets.mlp([s.latent_dim + self.label_dim] + [s.generator_hidden] * s.generator_layers + [self.data_dim], nn.ReLU)
            self.discriminator = self.mlp_discriminator()
        else:
            self.generator = nn.Sequential(*nets.conv_generator_layers(s.latent_dim + self.label_dim, self.image_shape, s.width))
            self.discriminator = nn.Sequential(*nets.conv_critic_layers(self.image_shape, s.width, self.critic_outputs, self.critic_label_dim, self.critic_batch_norm))
            nets.dcgan_init_(self)

    def mlp_discriminator(self) -> nn.Module:
        s = self.settings
        return nets.mlp([self.data_dim + self.critic_label_dim] + [s.discriminator_hidden] * s.discriminator_layers + [self.critic_outputs], nn.LeakyReLU, negative_slope=0.2)

    critic_outputs = 1  # AC-GAN adds the class logits
    critic_batch_norm = True  # WGAN-GP: False

    def generate(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """z (N, latent_dim) [and labels (N,)] -> samples (N, data_dim) or (N, C, S, S)."""
        if self.conditional:
            z = torch.cat([z, nets.one_hot(labels, self.n_classes)], dim=1)
        return self.generator(z)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.generate(z, labels)

    def critic(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Scores (N,) (or (N, critic_outputs)) of samples x."""
        if self.conditional and self.critic_sees_label:
            extra = nets.one_hot(labels, self.n_classes) if x.dim() == 2 else nets.label_planes(labels, self.n_classes, x.shape[-1])
            x = torch.cat([x, extra], dim=1)
        out = self.discriminator(x)
        return out.squeeze(1) if out.shape[1] == 1 else out

    def noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.randn(n, self.settings.latent_dim, generator=generator).to(self.device)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.conditional and labels is None:
            labels = torch.arange(n) % self.n_classes
        if labels is not None:
            labels = labels.to(self.device)
        return self.generate(self.noise(n, generator), labels)

    # ------------------------------------------------------------------- what a model shows

    @torch.no_grad()
    def sample_domains(self, n: int, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """``n`` samples in each of the model's domains from the same noise, by domain name
        (``zoo sample`` shows them side by side). One domain, unnamed, by default; CoGAN: A and B."""
        return {"": self.sample(n, generator=generator)}

    def extra_pictures(self, z: torch.Tensor) -> list[Picture]:
        """Pictures of this model beyond the task's own (samples, interpolation, losses),
        drawn from the fixed noise ``z`` at evaluation: CoGAN's pairs, LAPGAN's pyramid levels."""
        return []

    # ------------------------------------------------------------------------------ losses

    def critic_loss(self, real: torch.Tensor, labels, other) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        raise NotImplementedError

    def generator_loss(self, n: int, labels, other) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        raise NotImplementedError

    def after_critic_step(self) -> None:
        """Called after every critic update (WGAN clips the weights here)."""

    # ---------------------------------------------------------------------------- training

    @staticmethod
    def unpack(batch) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        real = batch[0]
        labels = batch[1] if len(batch) > 1 else None
        other = batch[2] if len(batch) > 2 else None
        return real, labels, other

    def training_step(self, batch, batch_idx):
        real, labels, other = self.unpack(batch)
        opt_g, opt_d = self.optimizers()
        n = real.shape[0]

        self.toggle_optimizer(opt_d)
        d_loss, d_logs = self.critic_loss(real, labels, other)
        opt_d.zero_grad(set_to_none=True)
        self.manual_backward(d_loss)
        opt_d.step()
        self.after_critic_step()
        self.untoggle_optimizer(opt_d)
        self.accumulate("train_d_loss", d_loss, n, prog_bar=True)
        for key, value in d_logs.items():
            self.accumulate(f"train_{key}", value, n)
        losses = {"d_loss": d_loss.detach()}  # returned for callbacks (the NaN guard)

        if (batch_idx + 1) % self.settings.critic_steps == 0:
            self.toggle_optimizer(opt_g)
            g_loss, g_logs = self.generator_loss(n, labels, other)
            opt_g.zero_grad(set_to_none=True)
            self.manual_backward(g_loss)
            opt_g.step()
            self.untoggle_optimizer(opt_g)
            self.generator_steps.add_(1)  # in place: no Module.__setattr__ per step
            self._new_losses.append(torch.stack([self.generator_steps.double(), d_loss.detach().double(), g_loss.detach().double()]))
            self.accumulate("train_g_loss", g_loss, n, prog_bar=True)
            for key, value in g_logs.items():
                self.accumulate(f"train_{key}", value, n)
            losses["g_loss"] = g_loss.detach()
        return losses

    def on_train_epoch_end(self):
        super().on_train_epoch_end()  # the epoch means
        self.log("generator_steps", self.generator_steps.float(), on_step=False, on_epoch=True)
        # Manual optimisation: Lightning leaves the schedulers to the module.
        schedulers = self.lr_schedulers()
        for scheduler in schedulers if isinstance(schedulers, list) else [schedulers] if schedulers else []:
            scheduler.step()

    def validation_step(self, batch, batch_idx):
        real, labels, other = self.unpack(batch)
        n = real.shape[0]
        with torch.random.fork_rng(devices=[]), torch.enable_grad():  # same noise every epoch; GP needs grad
            torch.manual_seed(batch_idx)
            d_loss, _ = self.critic_loss(real, labels, other)
            g_loss, _ = self.generator_loss(n, labels, other)
        self.accumulate("val_d_loss", d_loss, n)
        self.accumulate("val_g_loss", g_loss, n)

    def make_optimizer(self, params, lr: float) -> torch.optim.Optimizer:
        return torch.optim.Adam(params, lr=lr, betas=(self.settings.beta1, self.settings.beta2))

    def configure_optimizers(self):
        opt_g = self.make_optimizer(self.generator.parameters(), self.settings.lr_generator)
        opt_d = self.make_optimizer(self.discriminator.parameters(), self.settings.lr_discriminator)
        epochs = self.settings.lr_decay_epochs
        if epochs is None:
            return opt_g, opt_d
        linear = lambda epoch: max(0.0, 1.0 - epoch / epochs)  # noqa: E731 (epochs trained so far)
        return [opt_g, opt_d], [torch.optim.lr_scheduler.LambdaLR(opt, linear) for opt in (opt_g, opt_d)]

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["loss_history"] = [list(row) for row in self.loss_history]

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        super().on_load_checkpoint(checkpoint)
        self.loss_history = [tuple(row) for row in checkpoint.get("loss_history", [])]
