"""Image captioning: Show and Tell (Vinyals et al. 2015) and Show, Attend and Tell (Xu et al.
2015), on small grey images (B, height, width) with values in [0, 1].

Both read the image with the same small convolutional network (two 3×3 convolutions with
ReLU, 2×2 max-pooling) into a grid of L = (height/2)·(width/2) annotation vectors a_i of
``channels`` features: (B, L, D). The papers used a pretrained ImageNet network; for 8×8
digits a small one trained with the captioner does.

``ShowTell``: the whole feature map, flattened and projected, x_{-1} = W_I CNN(I), is the
LSTM's input at t = −1, and only then (section 3.1, eq. 10-12):
    h_t = LSTM(E y_{t-1}, h_{t-1}),  p(y_t) = softmax(W h_t).

``ShowAttendTell`` (soft "deterministic" attention, section 3.1.2 and 4.2):
    h_0 = tanh(f_init,h(mean_i a_i)),  c_0 = tanh(f_init,c(mean_i a_i))
    e_ti = vᵀ tanh(W_a a_i + U_a h_{t-1}),  α_t = softmax_i(e_t)
    ẑ_t = β_t Σ_i α_ti a_i,  β_t = σ(f_β(h_{t-1}))           (the gating scalar, section 4.2.1)
    h_t = LSTM([E y_{t-1}; ẑ_t], h_{t-1})
    p(y_t) = softmax(L_o(E y_{t-1} + L_h h_t + L_z ẑ_t))     (deep output, eq. 7)
Our two-layer network is too shallow for its features to know where in the image they are
(the paper's VGG features carry some of that through large receptive fields and padding), and
content alone cannot tell the first "three" from the second: each annotation vector gets a
learned embedding of its grid position added, a_i = CNN(I)_i + P_i.
The paper's doubly stochastic penalty λ Σ_i (1 − Σ_t α_ti)² is left out: it asks every region
to be looked at over the caption, and most regions of these images are blank margin.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from lightning_modules.cells import Recurrent
from lightning_modules.decoding import EncoderDecoder, output_log_probs
from lightning_modules.settings import AttentionSettings, CaptionerSettings


def feature_grid(channels: int) -> nn.Module:
    """(B, 1, H, W) -> (B, D, H/2, W/2)."""
    return nn.Sequential(
        nn.Conv2d(1, channels // 2, 3, padding=1), nn.ReLU(),
        nn.Conv2d(channels // 2, channels, 3, padding=1), nn.ReLU(),
        nn.MaxPool2d(2),
    )


class Captioner(EncoderDecoder):
    def annotations(self, images: Tensor) -> Tensor:
        """(B, H, W) -> a (B, L, D), row-major over the (H/2, W/2) grid."""
        grid = self.cnn(images.float()[:, None])
        return grid.flatten(2).transpose(1, 2)


class ShowTell(Captioner):
    Settings = CaptionerSettings

    def __init__(self, *, target_vocab_size: int, image_height: int, image_width: int, **settings: Any):
        super().__init__()
        s = self.settings = self.save_settings({"target_vocab_size": target_vocab_size, "image_height": image_height, "image_width": image_width}, settings)
        self.cnn = feature_grid(s.channels)
        self.image_embedding = nn.Linear(s.channels * (image_height // 2) * (image_width // 2), s.embedding_dim)  # W_I
        self.target_embedding = nn.Embedding(target_vocab_size, s.embedding_dim)
        self.decoder = Recurrent("lstm", s.embedding_dim, s.hidden_size, forget_bias=s.forget_bias)
        self.head = nn.Linear(s.hidden_size, target_vocab_size)

    def image_input(self, images):
        return self.image_embedding(self.annotations(images).flatten(1))  # x_{-1}, (B, E)

    def encode(self, source, source_lengths=None):
        out = self.decoder(self.image_input(source)[:, None])
        return {"rnn": out.state}

    def decode_step(self, tokens, state):
        out = self.decoder(self.target_embedding(tokens)[:, None], None, state=state["rnn"])
        return output_log_probs(self.head(out.outputs[:, 0])), {"rnn": out.state}, None

    def teacher_forced(self, source, source_lengths, decoder_input):
        x = torch.cat([self.image_input(source)[:, None], self.target_embedding(decoder_input)], 1)
        return output_log_probs(self.head(self.decoder(x).outputs[:, 1:]))


class ShowAttendTell(Captioner):
    Settings = AttentionSettings

    def __init__(self, *, target_vocab_size: int, image_height: int, image_width: int, **settings: Any):
        super().__init__()
        s = self.settings = self.save_settings({"target_vocab_size": target_vocab_size, "image_height": image_height, "image_width": image_width}, settings)
        self.grid_shape = (image_height // 2, image_width // 2)
        self.cnn = feature_grid(s.channels)
        self.positions = nn.Parameter(torch.randn(self.grid_shape[0] * self.grid_shape[1], s.channels) * 0.1)  # P_i
        self.init_h, self.init_c = nn.Linear(s.channels, s.hidden_size), nn.Linear(s.channels, s.hidden_size)
        self.W_a, self.U_a = nn.Linear(s.channels, s.attention_size), nn.Linear(s.hidden_size, s.attention_size, bias=False)
        self.v = nn.Linear(s.attention_size, 1, bias=False)
        self.f_beta = nn.Linear(s.hidden_size, 1)
        self.target_embedding = nn.Embedding(target_vocab_size, s.embedding_dim)
        self.decoder = Recurrent("lstm", s.embedding_dim + s.channels, s.hidden_size, forget_bias=s.forget_bias)
        self.L_h, self.L_z = nn.Linear(s.hidden_size, s.embedding_dim), nn.Linear(s.channels, s.embedding_dim, bias=False)
        self.L_o = nn.Linear(s.embedding_dim, target_vocab_size)

    def encode(self, source, source_lengths=None):
        a = self.annotations(source) + self.positions
        mean = a.mean(1)
        h0, c0 = torch.tanh(self.init_h(mean)), torch.tanh(self.init_c(mean))
        return {"rnn": [(h0, c0)], "annotations": a, "keys": self.W_a(a)}

    def decode_step(self, tokens, state):
        h_prev = state["rnn"][-1][0]
        scores = self.v(torch.tanh(state["keys"] + self.U_a(h_prev)[:, None]))[..., 0]  # (B, L)
        alpha = torch.softmax(scores, dim=-1)
        z = torch.sigmoid(self.f_beta(h_prev)) * torch.bmm(alpha[:, None], state["annotations"])[:, 0]
        emb = self.target_embedding(tokens)
        out = self.decoder(torch.cat([emb, z], -1)[:, None], None, state=state["rnn"])
        h = out.outputs[:, 0]
        log_probs = output_log_probs(self.L_o(emb + self.L_h(h) + self.L_z(z)))
        return log_probs, {**state, "rnn": out.state}, alpha
