"""Recurrent sequence classifier (many-to-one): embed tokens, read them with a recurrent
cell, classify from the final hidden state.

    e_t = E[x_t]                                        (B, T, embedding_dim)
    h_t = cell(e_t, h_{t-1})                            (B, T, H * directions)
    y   = softmax(W_y [h_T^fwd; h_1^bwd] + b_y)         (B, n_classes)

Cells (torch's fused layers; issue #3 brings the whole family as custom cells):
- ``rnn``, Elman:      h' = tanh(W [x; h] + b)
- ``lstm``, no peepholes (what torch.nn.LSTM computes):
      i, f, o = σ(W_{i,f,o} [x; h] + b),  z = tanh(W_z [x; h] + b_z)
      c' = f ⊙ c + i ⊙ z,  h' = o ⊙ tanh(c')
  torch keeps two biases per gate (bias_ih, bias_hh); the forget-gate bias b_f is set in
  bias_ih's slice [H:2H] only (torch orders the gates i, f, g, o), so the effective bias is
  exactly ``forget_bias`` at initialisation (Gers et al. 2000; Jozefowicz et al. 2015 use 1).

Variable lengths: the batch is packed, so h_T is each sequence's own last step, also for the
backward direction of a bidirectional reader.
"""

from __future__ import annotations

from typing import Literal, Optional

import pytorch_lightning as pl
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence

CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM}


class SequenceClassifier(pl.LightningModule):
    class Settings(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True)

        embedding_dim: int = Field(16, ge=1)
        hidden_size: int = Field(64, ge=1)
        num_layers: int = Field(1, ge=1)
        dropout: float = Field(0.0, ge=0, lt=1, description="between stacked layers")
        bidirectional: bool = False
        forget_bias: float = Field(1.0, description="LSTM only: initial forget-gate bias")
        lr: float = Field(3e-3, gt=0)
        weight_decay: float = Field(0.0, ge=0)

    def __init__(
        self,
        *,
        cell: Literal["rnn", "lstm"],
        vocab_size: int,
        n_classes: int,
        embedding_dim: int = 16,
        hidden_size: int = 64,
        num_layers: int = 1,
        dropout: float = 0.0,
        bidirectional: bool = False,
        forget_bias: Optional[float] = 1.0,
        lr: float = 3e-3,
        weight_decay: float = 0.0,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        self.rnn = CELLS[cell](
            embedding_dim,
            hidden_size,
            num_layers=num_layers,
            dropout=dropout if num_layers > 1 else 0.0,
            bidirectional=bidirectional,
            batch_first=True,
        )
        if cell == "lstm" and forget_bias is not None:
            with torch.no_grad():
                for name, param in self.rnn.named_parameters():
                    if name.startswith("bias_ih"):
                        param[hidden_size : 2 * hidden_size] = forget_bias
                    elif name.startswith("bias_hh"):
                        param[hidden_size : 2 * hidden_size] = 0.0
        self.head = nn.Linear(hidden_size * (2 if bidirectional else 1), n_classes)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """tokens (B, T) int, lengths (B,) -> logits (B, n_classes)."""
        emb = self.embedding(tokens.long())  # (B, T, E)
        packed = pack_padded_sequence(emb, lengths.cpu().long(), batch_first=True, enforce_sorted=False)
        _, state = self.rnn(packed)
        h_n = state[0] if isinstance(state, tuple) else state  # (layers * dirs, B, H)
        if self.hparams.bidirectional:
            last = torch.cat([h_n[-2], h_n[-1]], dim=1)  # (B, 2H)
        else:
            last = h_n[-1]  # (B, H)
        return self.head(last)

    def _step(self, batch, stage: str) -> torch.Tensor:
        tokens, lengths, labels = batch
        logits = self(tokens, lengths)
        loss = F.cross_entropy(logits, labels.long())
        acc = (logits.argmax(dim=1) == labels).float().mean()
        self.log(f"{stage}_loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(labels))
        self.log(f"{stage}_accuracy", acc, on_step=False, on_epoch=True, prog_bar=stage == "val", batch_size=len(labels))
        return loss

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    @torch.no_grad()
    def predict(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self(tokens, lengths).argmax(dim=1)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
