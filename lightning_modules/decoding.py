"""What every encoder–decoder of the zoo shares: the training step, teacher forcing, greedy
decoding and beam search.

A model (``EncoderDecoder`` subclass) implements two methods:

    encode(source, source_lengths) -> state          a dict of tensors, batch first
    decode_step(tokens (B,), state) -> (log p(y_t | y_<t, x) (B, V), state, attention (B, S) or None)

and everything else follows from them. ``state`` may nest dicts, lists and tuples; every
tensor in it has the batch on its first axis, so beam search can reorder it with one
``index_select``. Token ids: 0 padding, 1 start, 2 end (``PAD``, ``START``, ``END``).

Training (``teacher_forcing`` = 1): the decoder reads the reference y_<t. With a ratio r < 1,
each step reads, per sequence, the reference with probability r and the model's own previous
argmax otherwise (Bengio et al. 2015, scheduled sampling with a fixed rate). A model with a
faster exact path for r = 1 overrides ``teacher_forced``.

Beam search keeps the ``width`` best prefixes by total log-probability; a finished hypothesis
(one that wrote END) keeps its score. Beam search is not monotone in the width in general (the
greedy prefix can fall out of the beam and every survivor can end worse), so ``beam_search``
also scores the greedy sequence and returns whichever of the two is better: a wider beam then
never returns a lower-scoring sequence than width 1, which is greedy decoding.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import Tensor
from torch.nn import functional as F

from lightning_modules.base import ZooModule

PAD, START, END = 0, 1, 2


def map_state(fn: Callable[[Tensor], Tensor], state: Any) -> Any:
    """Apply ``fn`` to every tensor of a nested dict / list / tuple state."""
    if isinstance(state, Tensor):
        return fn(state)
    if isinstance(state, dict):
        return {k: map_state(fn, v) for k, v in state.items()}
    if isinstance(state, (list, tuple)):
        return type(state)(map_state(fn, v) for v in state)
    return state


def select(state: Any, index: Tensor) -> Any:
    return map_state(lambda t: t.index_select(0, index), state)


def output_log_probs(logits: Tensor) -> Tensor:
    """log-softmax over the vocabulary with PAD and START ruled out: never written by a decoder
    (the loss ignores PAD, so its logit is never trained)."""
    logits = logits.clone()
    logits[..., PAD] = float("-inf")
    logits[..., START] = float("-inf")
    return F.log_softmax(logits, dim=-1)


class EncoderDecoder(ZooModule):
    """The shared training loop and decoders; subclasses give ``encode`` and ``decode_step``."""

    def encode(self, source: Tensor, source_lengths: Tensor | None) -> dict:
        raise NotImplementedError

    def decode_step(self, tokens: Tensor, state: dict) -> tuple[Tensor, dict, Tensor | None]:
        raise NotImplementedError

    # -------------------------------------------------------------------------- training

    def teacher_forced(self, source, source_lengths, decoder_input) -> Tensor:
        """Log-probabilities (B, U, V) of every step given the reference prefix."""
        return self.stepwise(source, source_lengths, decoder_input, 1.0)

    def stepwise(self, source, source_lengths, decoder_input, ratio: float) -> Tensor:
        state = self.encode(source, source_lengths)
        tokens, out = decoder_input[:, 0], []
        for t in range(decoder_input.shape[1]):
            if t > 0 and ratio < 1.0:
                own = out[-1].argmax(-1)
                keep = torch.rand(len(tokens), device=tokens.device) < ratio
                tokens = torch.where(keep, decoder_input[:, t], own)
            elif t > 0:
                tokens = decoder_input[:, t]
            log_probs, state, _ = self.decode_step(tokens, state)
            out.append(log_probs)
        return torch.stack(out, 1)

    def forward(self, source, source_lengths, decoder_input) -> Tensor:
        ratio = self.hparams.get("teacher_forcing", 1.0)
        if self.training and ratio < 1.0:
            return self.stepwise(source, source_lengths, decoder_input, ratio)
        return self.teacher_forced(source, source_lengths, decoder_input)

    def _step(self, batch, stage: str) -> Tensor:
        source, source_lengths, decoder_input, decoder_target = batch
        log_probs = self(source, source_lengths, decoder_input.long())
        target = decoder_target.long()
        loss = F.nll_loss(log_probs.transpose(1, 2), target, ignore_index=PAD)
        mask = target != PAD
        n = mask.sum()  # a tensor: weighting the epoch mean needs no host synchronisation
        accuracy = ((log_probs.argmax(-1) == target) & mask).sum() / n.clamp_min(1)
        self.accumulate(f"{stage}_loss", loss, n, prog_bar=True)
        self.accumulate(f"{stage}_token_accuracy", accuracy, n, prog_bar=stage == "val")
        return loss

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.get("weight_decay", 0.0))

    # -------------------------------------------------------------------------- decoding

    @torch.no_grad()
    def greedy(self, source, source_lengths, max_length: int) -> tuple[Tensor, Tensor, Tensor | None]:
        """Tokens (B, L) (END then PAD after the end), total log-probability (B,), attention
        (B, L, S) or None. L ≤ ``max_length``."""
        state = self.encode(source, source_lengths)
        B = len(source)
        tokens = torch.full((B,), START, dtype=torch.long, device=self.device)
        done = torch.zeros(B, dtype=torch.bool, device=self.device)
        score = torch.zeros(B, device=self.device)
        out, attention = [], []
        for _ in range(max_length):
            log_probs, state, attn = self.decode_step(tokens, state)
            best, tokens = log_probs.max(-1)
            score = score + torch.where(done, torch.zeros_like(best), best)
            tokens = torch.where(done, torch.full_like(tokens, PAD), tokens)
            out.append(tokens)
            if attn is not None:
                attention.append(attn)
            done = done | (tokens == END)
            if bool(done.all()):
                break
        return torch.stack(out, 1), score, torch.stack(attention, 1) if attention else None

    @torch.no_grad()
    def beam_search(self, source, source_lengths, max_length: int, width: int, greedy=None) -> tuple[Tensor, Tensor]:
        """The best sequence found with ``width`` beams: tokens (B, L), total log-probability (B,).
        ``greedy``: this batch's ``greedy()`` result when the caller has it already."""
        greedy_tokens, greedy_score, _ = greedy or self.greedy(source, source_lengths, max_length)
        if width <= 1:
            return greedy_tokens, greedy_score
        B, W = len(source), width
        state = self.encode(source, source_lengths)
        state = select(state, torch.arange(B, device=self.device).repeat_interleave(W))  # (B·W, ...)
        scores = torch.full((B, W), float("-inf"), device=self.device)
        scores[:, 0] = 0.0  # one live beam at the start: the others are copies
        tokens = torch.full((B * W,), START, dtype=torch.long, device=self.device)
        done = torch.zeros(B * W, dtype=torch.bool, device=self.device)
        history = torch.zeros(B * W, 0, dtype=torch.long, device=self.device)
        for _ in range(max_length):
            log_probs, state, _ = self.decode_step(tokens, state)  # (B·W, V)
            V = log_probs.shape[1]
            # A finished beam only continues with PAD, at no cost.
            finished = torch.full_like(log_probs, float("-inf"))
            finished[:, PAD] = 0.0
            log_probs = torch.where(done[:, None], finished, log_probs)
            candidates = (scores.view(B, W, 1) + log_probs.view(B, W, V)).view(B, W * V)
            scores, flat = candidates.topk(W, dim=1)  # (B, W)
            parent = (flat // V + torch.arange(B, device=self.device)[:, None] * W).view(-1)
            tokens = (flat % V).view(-1)
            state = select(state, parent)
            history = torch.cat([history.index_select(0, parent), tokens[:, None]], 1)
            done = done.index_select(0, parent) | (tokens == END) | (tokens == PAD)
            if bool(done.all()):
                break
        best = scores.argmax(1)
        rows = torch.arange(B, device=self.device) * W + best
        beam_tokens, beam_score = history[rows], scores[torch.arange(B, device=self.device), best]
        L = max(beam_tokens.shape[1], greedy_tokens.shape[1])
        beam_tokens, greedy_tokens = F.pad(beam_tokens, (0, L - beam_tokens.shape[1])), F.pad(greedy_tokens, (0, L - greedy_tokens.shape[1]))
        better = beam_score >= greedy_score
        return torch.where(better[:, None], beam_tokens, greedy_tokens), torch.where(better, beam_score, greedy_score)


def strip(tokens) -> list[int]:
    """Token ids up to (not including) the first END or PAD."""
    out = []
    for t in tokens:
        t = int(t)
        if t in (END, PAD):
            break
        out.append(t)
    return out
