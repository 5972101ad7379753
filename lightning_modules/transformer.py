"""The Transformer (Vaswani et al. 2017): an encoder–decoder for the sequence-to-sequence tasks
and its decoder alone as a character language model. No recurrence.

    Attention(Q, K, V) = softmax(Q Kᵀ / √d_k) V                        (eq. 1)
    MultiHead(Q, K, V) = [head_1; ...; head_h] W^O,  head_i = Attention(Q W_i^Q, K W_i^K, V W_i^V)
    PE(pos, 2i) = sin(pos / 10000^(2i/d)),  PE(pos, 2i+1) = cos(pos / 10000^(2i/d))   (section 3.5)
    sublayer: x = LayerNorm(x + Dropout(Sublayer(x)))                 (post-norm, section 5.4)
    FFN(x) = max(0, x W_1 + b_1) W_2 + b_2                            (eq. 2)

Embeddings are multiplied by √d_model (section 3.4); the output projection is not tied to
them. The decoder's self-attention is causal: position t sees positions ≤ t only (masked
with −∞ before the softmax). Padding in the source gets zero attention. Adam with
β = (0.9, 0.98), ε = 1e-9 and the paper's schedule, peak ``lr`` reached after ``warmup_steps``:
lr_step = lr · min(step / warmup, √(warmup / step))  (eq. 3, rescaled to its peak).

``Transformer`` (head ``seq2seq``): shapes x (B, S), memory (B, S, d), y (B, U). Decoding
recomputes the decoder over the prefix at each step (no key/value cache; outputs are a
dozen tokens). ``teacher_forcing`` < 1 uses two passes (Mihaylova & Martins 2019): a
teacher-forced pass without gradient gives the model's own predictions, which replace the
reference inputs with probability 1 − ratio in the second pass.

``TransformerLM`` (head ``language-model``): the decoder without encoder–decoder attention
(as in Liu et al. 2018 and GPT). Training windows of T characters are placed at a random
position offset in 0 .. context_length − T, so every position up to ``context_length`` is
trained, but no prediction ever attends to more than T characters. Its ``state`` is the
preceding characters: a call on a window of T characters after a state sees the window and
the earlier characters that fit in ``context_length``, through a causal mask banded to T, so
that each prediction sees the T characters up to it (the stream evaluation's windows are
the training windows): context across windows, as the recurrent models' carried state
gives, but never more context than training used.
"""

from __future__ import annotations

import math
from typing import Any, Optional

import pytorch_lightning as pl
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from lightning_modules.base import ZooModule
from lightning_modules.decoding import PAD, EncoderDecoder, output_log_probs
from lightning_modules.language_model import log_lm_loss
from lightning_modules.settings import TransformerLMSettings, TransformerSettings


def positional_encoding(length: int, d: int, device, offset: int = 0) -> Tensor:
    """(length, d) sinusoids of positions offset .. offset + length − 1 (section 3.5)."""
    pos = torch.arange(offset, offset + length, device=device, dtype=torch.float32)[:, None]
    rate = torch.exp(torch.arange(0, d, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / d))
    pe = torch.zeros(length, d, device=device)
    pe[:, 0::2] = torch.sin(pos * rate)
    pe[:, 1::2] = torch.cos(pos * rate)
    return pe


def causal_mask(length: int, device, span: Optional[int] = None) -> Tensor:
    """(length, length) True where query t may see key s, i.e. s ≤ t (and t − s < ``span``)."""
    ones = torch.ones(length, length, dtype=torch.bool, device=device)
    return ones.tril() if span is None else ones.tril() & ones.triu(1 - span)


class MultiHeadAttention(nn.Module):
    def __init__(self, d_model: int, heads: int, dropout: float):
        super().__init__()
        self.heads, self.d_k = heads, d_model // heads
        self.q, self.k, self.v, self.o = (nn.Linear(d_model, d_model) for _ in range(4))
        self.dropout = nn.Dropout(dropout)

    def forward(self, query: Tensor, key: Tensor, value: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """query (B, T, d), key/value (B, S, d), mask broadcastable to (B, T, S), True = may attend.
        Returns (B, T, d) and the weights (B, heads, T, S)."""
        B, T, _ = query.shape
        S = key.shape[1]
        q = self.q(query).view(B, T, self.heads, self.d_k).transpose(1, 2)  # (B, h, T, d_k)
        k = self.k(key).view(B, S, self.heads, self.d_k).transpose(1, 2)
        v = self.v(value).view(B, S, self.heads, self.d_k).transpose(1, 2)
        scores = q @ k.transpose(-2, -1) / math.sqrt(self.d_k)  # (B, h, T, S)
        weights = torch.softmax(scores.masked_fill(~mask[:, None], float("-inf")), dim=-1)
        out = (self.dropout(weights) @ v).transpose(1, 2).reshape(B, T, -1)
        return self.o(out), weights


class Layer(nn.Module):
    """Self-attention, optional encoder–decoder attention, feed-forward; each post-normed."""

    def __init__(self, d_model: int, heads: int, ff_size: int, dropout: float, cross: bool):
        super().__init__()
        self.self_attention = MultiHeadAttention(d_model, heads, dropout)
        self.cross_attention = MultiHeadAttention(d_model, heads, dropout) if cross else None
        self.ff = nn.Sequential(nn.Linear(d_model, ff_size), nn.ReLU(), nn.Linear(ff_size, d_model))
        self.norms = nn.ModuleList(nn.LayerNorm(d_model) for _ in range(3 if cross else 2))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x, mask, memory=None, memory_mask=None) -> tuple[Tensor, Optional[Tensor]]:
        x = self.norms[0](x + self.dropout(self.self_attention(x, x, x, mask)[0]))
        weights = None
        if self.cross_attention is not None:
            attended, weights = self.cross_attention(x, memory, memory, memory_mask)
            x = self.norms[1](x + self.dropout(attended))
        return self.norms[-1](x + self.dropout(self.ff(x))), weights


def init_embeddings(*embeddings: nn.Embedding) -> None:
    """N(0, 1/d): times √d (section 3.4) the embeddings start at the scale of the positional
    encodings. torch's N(0, 1) would start them √d times larger and drown the positions."""
    for embedding in embeddings:
        nn.init.normal_(embedding.weight, std=embedding.embedding_dim**-0.5)


def noam(warmup: int):
    return lambda step: min((step + 1) / warmup, math.sqrt(warmup / (step + 1)))


def transformer_optimizer(module: pl.LightningModule):
    hp = module.hparams
    optimizer = torch.optim.Adam(module.parameters(), lr=hp.lr, betas=(0.9, 0.98), eps=1e-9, weight_decay=hp.weight_decay)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, noam(hp.warmup_steps))
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


class Transformer(EncoderDecoder):
    Settings = TransformerSettings

    def __init__(self, *, source_vocab_size: int, target_vocab_size: int, **settings: Any):
        super().__init__()
        s = self.settings = self.save_settings({"source_vocab_size": source_vocab_size, "target_vocab_size": target_vocab_size}, settings)
        self.source_embedding = nn.Embedding(source_vocab_size, s.d_model)
        self.target_embedding = nn.Embedding(target_vocab_size, s.d_model)
        self.encoder = nn.ModuleList(Layer(s.d_model, s.heads, s.ff_size, s.dropout, cross=False) for _ in range(s.encoder_layers))
        self.decoder = nn.ModuleList(Layer(s.d_model, s.heads, s.ff_size, s.dropout, cross=True) for _ in range(s.decoder_layers))
        self.head = nn.Linear(s.d_model, target_vocab_size)
        self.dropout = nn.Dropout(s.dropout)
        init_embeddings(self.source_embedding, self.target_embedding)

    def embed(self, embedding: nn.Embedding, tokens: Tensor) -> Tensor:
        d = self.hparams.d_model
        return self.dropout(embedding(tokens.long()) * math.sqrt(d) + positional_encoding(tokens.shape[1], d, tokens.device))

    def encode(self, source, source_lengths):
        source = source[:, : int(source_lengths.max())]
        mask = torch.arange(source.shape[1], device=source.device)[None] < source_lengths[:, None]  # (B, S)
        x = self.embed(self.source_embedding, source)
        for layer in self.encoder:
            x, _ = layer(x, mask[:, None, :])
        return {"memory": x, "mask": mask, "prefix": source.new_zeros(len(source), 0, dtype=torch.long)}

    def run_decoder(self, prefix: Tensor, state: dict) -> tuple[Tensor, Tensor]:
        """Log-probabilities (B, U, V) after each prefix position; last layer's cross-attention (B, heads, U, S)."""
        y = self.embed(self.target_embedding, prefix)
        mask = causal_mask(prefix.shape[1], prefix.device)[None]
        for layer in self.decoder:
            y, weights = layer(y, mask, state["memory"], state["mask"][:, None, :])
        return output_log_probs(self.head(y)), weights

    def decode_step(self, tokens, state):
        prefix = torch.cat([state["prefix"], tokens[:, None].long()], 1)
        log_probs, weights = self.run_decoder(prefix, state)
        return log_probs[:, -1], {**state, "prefix": prefix}, weights[:, :, -1].mean(1)

    def teacher_forced(self, source, source_lengths, decoder_input):
        return self.run_decoder(decoder_input.long(), self.encode(source, source_lengths))[0]

    def stepwise(self, source, source_lengths, decoder_input, ratio):
        state = self.encode(source, source_lengths)
        with torch.no_grad():
            own = self.run_decoder(decoder_input.long(), state)[0].argmax(-1)  # own prediction after each prefix
        own = torch.cat([decoder_input[:, :1], own[:, :-1]], 1)  # the token the model would have read at t
        keep = torch.rand(decoder_input.shape, device=decoder_input.device) < ratio
        keep[:, 0] = True
        mixed = torch.where(keep | (decoder_input == PAD), decoder_input, own)
        return self.run_decoder(mixed.long(), state)[0]

    def configure_optimizers(self):
        return transformer_optimizer(self)


class TransformerLM(ZooModule):
    """The Transformer's decoder alone, trained to predict the next character."""

    Settings = TransformerLMSettings

    def __init__(self, *, vocab_size: int, **settings: Any):
        super().__init__()
        s = self.settings = self.save_settings({"vocab_size": vocab_size}, settings)
        self.embedding = nn.Embedding(vocab_size, s.d_model)
        self.layers = nn.ModuleList(Layer(s.d_model, s.heads, s.ff_size, s.dropout, cross=False) for _ in range(s.layers))
        self.head = nn.Linear(s.d_model, vocab_size)
        self.dropout = nn.Dropout(s.dropout)
        init_embeddings(self.embedding)

    def logits(self, tokens: Tensor, offset: int = 0, span: Optional[int] = None) -> Tensor:
        """tokens (B, T) -> next-token logits (B, T, V); positions start at ``offset``; each
        prediction sees at most ``span`` tokens, its own included (None: all before it)."""
        d = self.hparams.d_model
        x = self.dropout(self.embedding(tokens.long()) * math.sqrt(d) + positional_encoding(tokens.shape[1], d, tokens.device, offset))
        mask = causal_mask(tokens.shape[1], tokens.device, span)[None]
        for layer in self.layers:
            x, _ = layer(x, mask)
        return self.head(x)

    def forward(self, inputs: Tensor, state: Optional[Tensor] = None):
        """inputs (B, T) -> logits (B, T, V) and the state: the last context_length − 1 characters seen.
        Each prediction sees the T characters up to it, as the predictions of a training window
        of T do at most; earlier ones come from ``state``."""
        C, T = self.hparams.context_length, inputs.shape[1]
        if T > C:
            raise ValueError(f"a window of {T} characters is longer than context_length {C}: raise context_length or lower sequence_length")
        inputs = inputs.long()
        context = inputs if state is None or C == T else torch.cat([state[:, max(0, state.shape[1] - (C - T)) :], inputs], 1)
        logits = self.logits(context, span=T)[:, -T:]
        return logits, context[:, -(C - 1) :]

    def _step(self, batch, stage: str) -> Tensor:
        inputs, targets, mask = batch
        C, T = self.hparams.context_length, inputs.shape[1]
        if T > C:
            raise ValueError(f"a window of {T} characters is longer than context_length {C}: raise context_length or lower sequence_length")
        offset = int(torch.randint(0, C - T + 1, ())) if stage == "train" else 0
        logits = self.logits(inputs, offset)
        per_token = F.cross_entropy(logits.transpose(1, 2), targets.long(), reduction="none")
        loss = (per_token * mask).sum() / mask.sum().clamp_min(1)
        log_lm_loss(self, stage, loss, mask.sum())
        return loss

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx):
        self._step(batch, "val")

    def configure_optimizers(self):
        return transformer_optimizer(self)

    @torch.no_grad()
    def sample(self, prompt: list[int], length: int, temperature: float = 1.0, generator: Optional[torch.Generator] = None) -> list[int]:
        """Continue ``prompt`` by ``length`` tokens drawn from p^(1/temperature) (greedy at 0)."""
        self.eval()
        C = self.hparams.context_length
        context = torch.tensor([prompt[-C:]], device=self.device)
        out: list[int] = []
        for _ in range(length):
            last = self.logits(context[:, -C:])[0, -1]
            if temperature <= 0:
                token = int(last.argmax())
            else:
                probs = torch.softmax(last.float() / temperature, dim=-1).cpu()
                token = int(torch.multinomial(probs, 1, generator=generator))
            out.append(token)
            context = torch.cat([context, torch.tensor([[token]], device=self.device)], 1)
        return out

    @torch.no_grad()
    def greedy_answers(self, prompts: Tensor, prompt_lengths: Tensor, max_new: int) -> Tensor:
        """Greedy continuation of left-aligned prompts of different lengths: (B, max_new) ids."""
        self.eval()
        B = len(prompts)
        lengths = prompt_lengths.long()
        seq = torch.cat([prompts.long(), prompts.new_zeros(B, max_new).long()], 1)
        rows = torch.arange(B, device=seq.device)
        answers = []
        for k in range(max_new):
            end = int(lengths.max()) + k
            logits = self.logits(seq[:, max(0, end - self.hparams.context_length) : end])
            start = max(0, end - self.hparams.context_length)
            token = logits[rows, lengths + k - 1 - start].argmax(-1)
            seq[rows, lengths + k] = token
            answers.append(token)
        return torch.stack(answers, 1)
