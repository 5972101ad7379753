"""Recurrent sequence classifier (many-to-one) and the parts every recurrent model shares.

    e_t = E[x_t]                                   (B, T, embedding_dim)
    h_t = cell(e_t, h_{t-1})                       (B, T, H * directions)   cells.py has each cell's equations
    y   = softmax(W_y [h_T^fwd; h_1^bwd] + b_y)    (B, n_classes)

Variable lengths: each sequence's h_T is its own last step, also for the backward direction
of a bidirectional reader.

Shared by every recurrent model (``RecurrentModel``):
- the cell is a setting (any of ``cells.CELL_NAMES``), stacked layers with dropout between
  them, the LSTM family's initial forget-gate bias (Jozefowicz et al. 2015 recommend 1);
- ``init_scale`` multiplies the initial recurrent (hidden-to-hidden) weights: a large value
  makes a vanilla RNN's gradients explode (Pascanu et al. 2013);
- ``configure_optimizers``: Adam, or plain SGD (``optimizer: sgd``, Pascanu et al. 2013);
- the global gradient norm, before any clipping, is logged (``grad_norm``) on the steps the
  loggers record (every ``trainer.log_every_n_steps``);
- ``hidden_gradient_norms``: ‖∂C_T/∂h_t‖ against the distance T − t, the picture of
  vanishing and exploding gradients (Bengio et al. 1994; Pascanu et al. 2013).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from lightning_modules.cells import Recurrent
from lightning_modules.base import ZooModule
from lightning_modules.settings import RecurrentSettings, SequenceClassifierSettings  # noqa: F401 (RecurrentSettings: re-exported)


class RecurrentModel(ZooModule):
    """Embedding + ``Recurrent`` stack; subclasses add the head and the loss."""

    def _build_recurrent(self, cell, vocab_size, embedding_dim, hidden_size, num_layers, dropout, bidirectional, forget_bias, init_scale, fused):
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        self.recurrent = Recurrent(
            cell, embedding_dim, hidden_size, num_layers=num_layers, dropout=dropout,
            bidirectional=bidirectional, forget_bias=forget_bias, fused=fused,
        )
        if init_scale is not None:
            with torch.no_grad():
                for name, param in self.recurrent.named_parameters():
                    if is_recurrent_weight(name):
                        param.mul_(init_scale)

    def on_before_optimizer_step(self, optimizer):
        # Computed on the steps the loggers record (every trainer.log_every_n_steps), where
        # Lightning would flush it; logged at every step it would be overwritten unread.
        if (self.trainer.global_step + 1) % max(self.trainer.log_every_n_steps, 1):
            return
        norms = [p.grad.detach().norm(2) for p in self.parameters() if p.grad is not None]
        if norms:
            # Before clipping: Lightning clips after this hook.
            self.log("grad_norm", torch.stack(norms).norm(2), on_step=True, on_epoch=False)

    def loss_at_end(self, batch, output) -> torch.Tensor:
        """The loss C_T of the last step (for ``hidden_gradient_norms``)."""
        raise NotImplementedError

    def encode(self, batch, record_states: bool = False):
        raise NotImplementedError

    def hidden_gradient_norms(self, batch) -> torch.Tensor:
        """Mean over the batch of ‖∂C_T/∂h_t‖ for t = 1..T (last layer, forward direction).

        Returns a (T,) tensor; index T − 1 − d is distance d from the end. The batch should
        hold sequences of one length T.
        """
        was_training = self.training
        self.eval()
        with torch.enable_grad():
            output = self.encode(batch, record_states=True)
            for h in output.states:
                h.retain_grad()
            loss = self.loss_at_end(batch, output)
            self.zero_grad(set_to_none=True)
            loss.backward()
            norms = torch.stack([h.grad.norm(dim=1).mean() if h.grad is not None else torch.zeros(()) for h in output.states])
        self.zero_grad(set_to_none=True)
        self.train(was_training)
        return norms.detach()

    def configure_optimizers(self):
        # ``optimizer`` / ``momentum``: Adam, or plain SGD as Pascanu et al. 2013 train (claim 3).
        if self.hparams.get("optimizer", "adam") == "sgd":
            optimizer = torch.optim.SGD(self.parameters(), lr=self.hparams.lr, momentum=self.hparams.get("momentum", 0.0), weight_decay=self.hparams.weight_decay)
        else:
            optimizer = torch.optim.Adam(self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
        patience = self.hparams.get("lr_halving_patience")
        if patience is None:
            return optimizer
        # Lightning steps it after each epoch's validation, on the logged val_loss.
        scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=0.5, patience=patience)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "monitor": "val_loss", "interval": "epoch"}}


def is_recurrent_weight(name: str) -> bool:
    """Hidden-to-hidden weights: torch's ``weight_hh_l*``, the cells' ``weight_h*`` and FGR's gate recurrence."""
    leaf = name.rsplit(".", 1)[-1]
    return leaf.startswith("weight_h") or leaf == "weight_gates"


class SequenceClassifier(RecurrentModel):
    Settings = SequenceClassifierSettings

    def __init__(self, *, cell: str, vocab_size: int, n_classes: int, **settings: Any):
        super().__init__()
        s = self.settings = self.save_settings({"cell": cell, "vocab_size": vocab_size, "n_classes": n_classes}, settings)
        self._build_recurrent(cell, vocab_size, s.embedding_dim, s.hidden_size, s.num_layers, s.dropout, s.bidirectional, s.forget_bias, s.init_scale, s.fused)
        self.head = nn.Linear(s.hidden_size * (2 if s.bidirectional else 1), n_classes)

    def encode(self, batch, record_states: bool = False):
        tokens, lengths = batch[0], batch[1]
        tokens = tokens[:, : int(lengths.max())]
        return self.recurrent(self.embedding(tokens.long()), lengths, record_states=record_states)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """tokens (B, T) int, lengths (B,) -> logits (B, n_classes)."""
        return self.head(self.encode((tokens, lengths)).last)

    def loss_at_end(self, batch, output):
        return F.cross_entropy(self.head(output.last), batch[2].long())

    def _step(self, batch, stage: str) -> torch.Tensor:
        tokens, lengths, labels = batch
        logits = self(tokens, lengths)
        loss = F.cross_entropy(logits, labels.long())
        acc = (logits.argmax(dim=1) == labels).float().mean()
        self.accumulate(f"{stage}_loss", loss, len(labels), prog_bar=True)
        self.accumulate(f"{stage}_accuracy", acc, len(labels), prog_bar=stage == "val")
        return loss

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    @torch.no_grad()
    def predict(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self(tokens, lengths).argmax(dim=1)
