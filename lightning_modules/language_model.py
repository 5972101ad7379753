"""Recurrent character-level language model (char-rnn; Graves 2013, Karpathy 2015).

    e_t = E[x_t],  h_t = cell(e_t, h_{t-1}),  p(x_{t+1} | x_≤t) = softmax(W_o h_t + b_o)

Trained with teacher forcing on windows of a character stream; the loss is the mean
negative log-likelihood of the next character over the positions a ``mask`` selects (all of
them for text; only the answer for ``arithmetic``, where the model reads "a±b=" and then
writes the result). Bits per character = loss in nats / ln 2.
"""

from __future__ import annotations

import math
from typing import Any, Optional

import torch
from torch import nn

from lightning_modules.decoding import map_state
from lightning_modules.recurrent import RecurrentModel
from lightning_modules.settings import LanguageModelSettings


class LanguageModel(RecurrentModel):
    Settings = LanguageModelSettings  # reads left to right: no bidirectional setting

    def __init__(self, *, cell: str, vocab_size: int, carry_state: bool = False, **settings: Any):
        super().__init__()
        s = self.settings = self.save_settings({"cell": cell, "vocab_size": vocab_size, "carry_state": carry_state}, settings)
        self._carried: dict[str, Any] = {}  # stage -> the state the last batch ended in (carry_state)
        self._build_recurrent(cell, vocab_size, s.embedding_dim, s.hidden_size, s.num_layers, s.dropout, False, s.forget_bias, s.init_scale, s.fused)
        self.head = nn.Linear(s.hidden_size, vocab_size)

    def encode(self, batch, record_states: bool = False, state=None):
        inputs = batch[0]
        return self.recurrent(self.embedding(inputs.long()), None, state=state, record_states=record_states)

    def forward(self, inputs: torch.Tensor, state=None):
        """inputs (B, T) -> next-token logits (B, T, V) and the recurrent state."""
        out = self.encode((inputs,), state=state)
        return self.head(out.outputs), out.state

    @staticmethod
    def nll(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Mean negative log-likelihood (nats) over the masked positions."""
        per_token = nn.functional.cross_entropy(logits.transpose(1, 2), targets.long(), reduction="none")  # (B, T)
        return (per_token * mask).sum() / mask.sum().clamp_min(1)

    def loss_at_end(self, batch, output):
        inputs, targets, mask = batch
        logits = self.head(output.outputs[:, -1])
        return nn.functional.cross_entropy(logits, targets[:, -1].long())

    def _step(self, batch, stage: str) -> torch.Tensor:
        inputs, targets, mask = batch
        # carry_state: the batches come in stream order (pipeline.tasks.language.row_windows),
        # so a row starts from the state its previous window ended in; the gradient stops there.
        state = self._carried.get(stage) if self.hparams.get("carry_state") else None
        logits, state = self(inputs, state)
        if self.hparams.get("carry_state"):
            self._carried[stage] = map_state(torch.Tensor.detach, state)
        loss = self.nll(logits, targets, mask)
        log_lm_loss(self, stage, loss, mask.sum())
        return loss

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    def on_train_epoch_start(self) -> None:
        super().on_train_epoch_start()
        self._carried.pop("train", None)  # an epoch reads the stream from its start again

    def on_validation_epoch_start(self) -> None:
        super().on_validation_epoch_start()
        self._carried.pop("val", None)

    @torch.no_grad()
    def sample(self, prompt: list[int], length: int, temperature: float = 1.0, generator: Optional[torch.Generator] = None) -> list[int]:
        """Continue ``prompt`` by ``length`` tokens drawn from p^(1/temperature) (greedy at 0)."""
        self.eval()
        logits, state = self(torch.tensor([prompt], device=self.device))
        out: list[int] = []
        for _ in range(length):
            last = logits[0, -1]
            if temperature <= 0:
                token = int(last.argmax())
            else:
                probs = torch.softmax(last.float() / temperature, dim=-1).cpu()
                token = int(torch.multinomial(probs, 1, generator=generator))
            out.append(token)
            logits, state = self(torch.tensor([[token]], device=self.device), state)
        return out

    @torch.no_grad()
    def greedy_answers(self, prompts: torch.Tensor, prompt_lengths: torch.Tensor, max_new: int) -> torch.Tensor:
        """Greedy continuation of a batch of prompts of different lengths: (B, max_new) ids.

        Every prompt is left-aligned; the state after each prompt's own last token starts its
        answer (the recurrent state stops changing past a sequence's length)."""
        self.eval()
        emb = self.embedding(prompts.long())
        out = self.recurrent(emb, prompt_lengths, record_states=False)
        index = (prompt_lengths.long() - 1).clamp_min(0)
        last_h = out.outputs[torch.arange(len(prompts), device=prompts.device), index]  # (B, H)
        logits, state = self.head(last_h), out.state
        answers = []
        for _ in range(max_new):
            token = logits.argmax(dim=-1)  # (B,)
            answers.append(token)
            step_logits, state = self(token[:, None], state)
            logits = step_logits[:, 0]
        return torch.stack(answers, dim=1)


def log_lm_loss(module, stage: str, loss: torch.Tensor, n: int | torch.Tensor) -> None:
    """The loss per predicted character of a language model, and on validation in bits per
    character (nats / ln 2); shared by the recurrent and the Transformer language models."""
    module.accumulate(f"{stage}_loss", loss, n, prog_bar=True)
    if stage == "val":
        module.accumulate("val_bpc", loss / math.log(2), n, prog_bar=True)
