"""Recurrent encoder–decoders: Sutskever et al. 2014, with Bahdanau et al. 2015's additive
attention or Luong et al. 2015's global attention. Any cell of ``cells.CELL_NAMES`` serves as
encoder and decoder (one cell type for both).

Shapes: x (B, S) source ids, h̄ (B, S, H·directions) encoder outputs ("annotations"),
y (B, U) target ids, s_t (B, H) the decoder's top-layer state, V the target vocabulary.

``Seq2Seq`` (Sutskever et al. 2014, section 3.3):
    the encoder reads x (reversed within its length when ``reverse_source``); its final state
    is the decoder's initial state; s_t = cell(E y_{t-1}, s_{t-1}); p(y_t) = softmax(W s_t).
    With a bidirectional encoder the sizes differ: s_0 = tanh(W_b [h→_S; h←_1]) (other state
    parts, the LSTM's c, start at zero).

``Bahdanau`` (Bahdanau et al. 2015, section 3.1 and appendix A.1.2):
    e_tj = vᵀ tanh(W_a s_{t-1} + U_a h̄_j),  α_t = softmax_j(e_t),  c_t = Σ_j α_tj h̄_j
    s_t = cell([E y_{t-1}; c_t], s_{t-1})              (the context feeds the next step)
    p(y_t) = softmax(W_o [s_t; E y_{t-1}; c_t])        (eq. 4's g(y_{t-1}, s_t, c_t); a linear
                                                        output layer in place of the maxout)
    s_0 = tanh(W_s h←_1) with the paper's bidirectional encoder, tanh(W_s h_S) without.

``Luong`` (Luong et al. 2015, sections 3.1 and 3.3, global attention with input feeding):
    s_t = cell([E y_{t-1}; h̃_{t-1}], s_{t-1}),  h̃_0 = 0
    score(s_t, h̄_j) = s_tᵀ h̄_j (dot) or s_tᵀ W_a h̄_j (general)
    α_t = softmax_j(score),  c_t = Σ_j α_tj h̄_j,  h̃_t = tanh(W_c [c_t; s_t]),  p(y_t) = softmax(W_s h̃_t)
    the encoder's final state starts the decoder, as in Sutskever's model.

Attention over padding positions is exactly zero (their scores are −∞ before the softmax).
When the source is read reversed, the annotations are put back in source order, so the
attention weights always index the source as written.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from lightning_modules.cells import Recurrent, _reverse_within
from lightning_modules.decoding import EncoderDecoder, output_log_probs
from lightning_modules.settings import BahdanauSettings, LuongSettings, Seq2SeqSettings


def attend(scores: Tensor, mask: Tensor, memory: Tensor) -> tuple[Tensor, Tensor]:
    """Softmax of ``scores`` (B, S) over the unmasked positions (mask (B, S) True = real token),
    and the context Σ_j α_j memory_j (B, D)."""
    weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)
    return weights, torch.bmm(weights[:, None], memory)[:, 0]


class RecurrentEncoderDecoder(EncoderDecoder):
    """The encoder (embedding + ``Recurrent``), the decoder's embedding and the initial state."""

    decoder_extra_input = 0  # width added to the decoder's input (a context, an attentional vector)

    def _build(self, source_vocab_size, target_vocab_size, cell, embedding_dim, hidden_size, num_layers, dropout, bidirectional, forget_bias):
        self.source_embedding = nn.Embedding(source_vocab_size, embedding_dim)
        self.target_embedding = nn.Embedding(target_vocab_size, embedding_dim)
        self.encoder = Recurrent(cell, embedding_dim, hidden_size, num_layers=num_layers, dropout=dropout, bidirectional=bidirectional, forget_bias=forget_bias)
        self.decoder = Recurrent(cell, embedding_dim + self.decoder_extra_input, hidden_size, num_layers=num_layers, dropout=dropout, forget_bias=forget_bias)
        self.memory_size = hidden_size * (2 if bidirectional else 1)

    def run_encoder(self, source: Tensor, lengths: Tensor):
        """Encoder outputs in source order (B, S, H·dirs), the padding mask (B, S) and the output."""
        source = source[:, : int(lengths.max())].long()
        emb = self.source_embedding(source)
        if self.hparams.reverse_source:
            emb = _reverse_within(emb, lengths)
        out = self.encoder(emb, lengths)
        memory = _reverse_within(out.outputs, lengths) if self.hparams.reverse_source else out.outputs
        mask = torch.arange(source.shape[1], device=source.device)[None] < lengths[:, None]
        return memory, mask, out

    def bridged_state(self, summary: Tensor, like) -> list:
        """Every layer starts at h = tanh(W summary), the other state parts at zero."""
        h = torch.tanh(self.bridge(summary))
        return [tuple([h, *(torch.zeros_like(h) for _ in layer[1:])]) for layer in like]


class Seq2Seq(RecurrentEncoderDecoder):
    """Sutskever et al. 2014: the encoder's final state is the only link to the decoder."""

    Settings = Seq2SeqSettings

    def __init__(self, *, source_vocab_size: int, target_vocab_size: int, **settings: Any):
        super().__init__()
        s = self.settings = self.save_settings({"source_vocab_size": source_vocab_size, "target_vocab_size": target_vocab_size}, settings)
        self._build(source_vocab_size, target_vocab_size, s.cell, s.embedding_dim, s.hidden_size, s.num_layers, s.dropout, s.bidirectional, s.forget_bias)
        if s.bidirectional:
            self.bridge = nn.Linear(2 * s.hidden_size, s.hidden_size)
        self.head = nn.Linear(s.hidden_size, target_vocab_size)

    def encode(self, source, source_lengths):
        _, _, out = self.run_encoder(source, source_lengths)
        return {"rnn": self.bridged_state(out.last, out.state) if self.hparams.bidirectional else out.state}

    def decode_step(self, tokens, state):
        out = self.decoder(self.target_embedding(tokens)[:, None], None, state=state["rnn"])
        return output_log_probs(self.head(out.outputs[:, 0])), {"rnn": out.state}, None

    def teacher_forced(self, source, source_lengths, decoder_input):
        # No feedback from one step to the next: the decoder reads the whole reference at once.
        state = self.encode(source, source_lengths)
        out = self.decoder(self.target_embedding(decoder_input), None, state=state["rnn"])
        return output_log_probs(self.head(out.outputs))


class Bahdanau(RecurrentEncoderDecoder):
    """Additive attention; the context c_t feeds the decoder's step t."""

    Settings = BahdanauSettings

    def __init__(self, *, source_vocab_size: int, target_vocab_size: int, **settings: Any):
        super().__init__()
        s = self.settings = self.save_settings({"source_vocab_size": source_vocab_size, "target_vocab_size": target_vocab_size}, settings)
        self.decoder_extra_input = s.hidden_size * (2 if s.bidirectional else 1)
        self._build(source_vocab_size, target_vocab_size, s.cell, s.embedding_dim, s.hidden_size, s.num_layers, s.dropout, s.bidirectional, s.forget_bias)
        self.bridge = nn.Linear(s.hidden_size, s.hidden_size)  # W_s
        self.W_a = nn.Linear(s.hidden_size, s.attention_size, bias=False)
        self.U_a = nn.Linear(self.memory_size, s.attention_size)
        self.v = nn.Linear(s.attention_size, 1, bias=False)
        self.out = nn.Linear(s.hidden_size + s.embedding_dim + self.memory_size, target_vocab_size)

    def encode(self, source, source_lengths):
        memory, mask, out = self.run_encoder(source, source_lengths)
        H = self.hparams.hidden_size
        summary = out.last[:, H:] if self.hparams.bidirectional else out.last  # h←_1 (paper) or h_S
        return {"rnn": self.bridged_state(summary, out.state), "memory": memory, "mask": mask, "keys": self.U_a(memory)}

    def decode_step(self, tokens, state):
        s_prev = state["rnn"][-1][0]  # top layer's h, (B, H)
        scores = self.v(torch.tanh(self.W_a(s_prev)[:, None] + state["keys"]))[..., 0]  # (B, S)
        weights, context = attend(scores, state["mask"], state["memory"])
        emb = self.target_embedding(tokens)
        out = self.decoder(torch.cat([emb, context], -1)[:, None], None, state=state["rnn"])
        s = out.outputs[:, 0]
        log_probs = output_log_probs(self.out(torch.cat([s, emb, context], -1)))
        return log_probs, {**state, "rnn": out.state}, weights


class Luong(RecurrentEncoderDecoder):
    """Global attention with input feeding: h̃_t is predicted from and fed to step t + 1."""

    Settings = LuongSettings

    def __init__(self, *, source_vocab_size: int, target_vocab_size: int, **settings: Any):
        super().__init__()
        s = self.settings = self.save_settings({"source_vocab_size": source_vocab_size, "target_vocab_size": target_vocab_size}, settings)
        self.decoder_extra_input = s.hidden_size  # input feeding: h̃_{t-1}
        self._build(source_vocab_size, target_vocab_size, s.cell, s.embedding_dim, s.hidden_size, s.num_layers, s.dropout, s.bidirectional, s.forget_bias)
        if s.bidirectional:
            self.bridge = nn.Linear(2 * s.hidden_size, s.hidden_size)
        if s.score == "general":
            self.W_a = nn.Linear(self.memory_size, s.hidden_size, bias=False)  # s_tᵀ W_a h̄ = s_t · (W_a h̄)
        self.W_c = nn.Linear(self.memory_size + s.hidden_size, s.hidden_size, bias=False)
        self.W_s = nn.Linear(s.hidden_size, target_vocab_size)

    def encode(self, source, source_lengths):
        memory, mask, out = self.run_encoder(source, source_lengths)
        rnn = self.bridged_state(out.last, out.state) if self.hparams.bidirectional else out.state
        keys = self.W_a(memory) if self.hparams.score == "general" else memory
        attentional = memory.new_zeros(len(memory), self.hparams.hidden_size)
        return {"rnn": rnn, "memory": memory, "mask": mask, "keys": keys, "attentional": attentional}

    def decode_step(self, tokens, state):
        emb = self.target_embedding(tokens)
        out = self.decoder(torch.cat([emb, state["attentional"]], -1)[:, None], None, state=state["rnn"])
        s = out.outputs[:, 0]
        scores = torch.bmm(state["keys"], s[:, :, None])[..., 0]  # (B, S)
        weights, context = attend(scores, state["mask"], state["memory"])
        attentional = torch.tanh(self.W_c(torch.cat([context, s], -1)))
        return output_log_probs(self.W_s(attentional)), {**state, "rnn": out.state, "attentional": attentional}, weights
