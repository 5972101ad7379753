"""Recurrent cells of the tutorial as small modules, and ``Recurrent``, a layer stack that reads
padded batches with any of them (see REFERENCE.md "Recurrent cells"; the paper wins over torch).

    x        (B, T, input_size)      lengths (B,) or None
    xp       (T, B, G)               every step's input terms in one matmul per layer/direction
    h_t      (B, H)                  one small step per t: one h @ W_h for all gates + elementwise
    outputs  (B, T, H * directions)  last layer; zero at t >= length

Cells (``CELL_NAMES``): ``rnn`` (Elman), ``lstm`` (no peepholes), ``lstm-peephole`` (Greff et al.
2015's vanilla LSTM), Greff's eight one-change variants ``lstm-nig`` ... ``lstm-fgr``, ``gru``
(Cho et al. 2014) and ``mut1``-``mut3`` (Jozefowicz et al. 2015). Each cell's docstring has its
equations. A cell computes ``project(x)`` (the input terms of all steps at once) and
``step(xp_t, state)``; ``state`` is a tuple whose first entry is h.

Variable lengths are handled by masking, not packing: a sequence's state stops changing after its
length (h = where(t < length, h_new, h)); the backward direction reads each sequence reversed
within its own length.

Speed (CPU): the steps use the recurrent weights detached and the weights' gradients are
summed over all steps in one matmul at the end (``_DeferredWeightGrad``), instead of one small
matmul (or batch reduction, for peepholes) per step. That path cannot be differentiated twice
(it raises); for a double backward, e.g. a gradient penalty through a recurrent discriminator,
set ``Recurrent.deferred_weight_grad = False`` on the instance.

``fused=True`` with ``rnn`` or ``lstm`` runs torch's nn.RNN / nn.LSTM (packed) instead; when the
step-by-step hidden states are asked for (``record_states``, the gradient-flow diagnostic), the
same torch weight tensors are unrolled step by step, so the numbers and gradients are those of
the fused module.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

CELL_NAMES = [
    "rnn",
    "lstm",
    "lstm-peephole",
    "lstm-nig",
    "lstm-nfg",
    "lstm-nog",
    "lstm-niaf",
    "lstm-noaf",
    "lstm-np",
    "lstm-cifg",
    "lstm-fgr",
    "gru",
    "mut1",
    "mut2",
    "mut3",
]
# Cells with a forget gate of their own, whose bias starts at ``forget_bias`` (Gers et al. 2000;
# Jozefowicz et al. 2015 use 1). NFG has no forget gate, CIFG's is 1 - i.
LSTM_FAMILY = [
    "lstm",
    "lstm-peephole",
    "lstm-nig",
    "lstm-nog",
    "lstm-niaf",
    "lstm-noaf",
    "lstm-np",
    "lstm-fgr",
]
# Their bare x terms need input size == hidden size (Jozefowicz et al. 2015).
MUT_CELLS = ["mut1", "mut2", "mut3"]
FUSABLE = {"rnn": nn.RNN, "lstm": nn.LSTM}


@dataclass
class RecurrentOutput:
    outputs: Tensor  # (B, T, H * directions), last layer; zero at t >= length
    last: Tensor  # (B, H * directions): forward h at each sequence's last step; backward h after position 0
    state: Any  # per layer, the forward direction's final state (a tuple of tensors); feed back as `state`
    states: Optional[list[Tensor]]  # record_states: last layer's forward h_t, t = 1..T, each (B, H), on the autograd path


class Cell(nn.Module):
    """Shared by all cells: ``weight_x`` (G·H, I) and ``bias`` (G·H,) give the input terms of all
    steps in one matmul (``project``); each cell adds its recurrent matrices. Every parameter
    starts uniform in ±1/√H, as in torch's recurrent layers.

    Per step, gates are taken apart with split/chunk/unbind, never by indexing: autograd turns
    an index or slice into a zero-filled gradient of the whole tensor at every step."""

    state_size = 1  # tensors in the state tuple; the first is h
    # (name, first column, end column, kind): every weight that step() applies to a
    # step-dependent input, and the columns of xp whose pre-activation it adds to: "mm" for
    # acc + inp @ W.T (_rmm), "diag" for acc + inp ⊙ p (_rmul, peepholes). See _DeferredWeightGrad.
    recurrent: list[tuple[str, int, int, str]] = []

    def __init__(self, input_size: int, hidden_size: int, x_gates: int):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.weight_x = nn.Parameter(torch.empty(x_gates * hidden_size, input_size))
        self.bias = nn.Parameter(torch.empty(x_gates * hidden_size))

    def _square(self, n: int = 1) -> nn.Parameter:
        return nn.Parameter(torch.empty(n * self.hidden_size, self.hidden_size))

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def project(self, x: Tensor) -> Tensor:
        """Input terms of every step at once: (..., I) -> (..., G·H)."""
        return F.linear(x, self.weight_x, self.bias)

    def init_state(self, batch: int, like: Tensor) -> tuple[Tensor, ...]:
        return tuple(like.new_zeros(batch, self.hidden_size) for _ in range(self.state_size))

    def step(
        self, xp: Tensor, state: tuple[Tensor, ...], gates: Optional[dict] = None, tape: Optional[_Tape] = None
    ) -> tuple[Tensor, ...]:
        """One time step from the projected input ``xp`` (B, G·H); fills ``gates`` if given.
        ``tape``: set by Recurrent during training (see _DeferredWeightGrad), None otherwise."""
        raise NotImplementedError

    def _rmm(self, name: str, acc: Tensor, inp: Tensor, tape: Optional[_Tape]) -> Tensor:
        """acc + inp @ W.T for the recurrent weight ``name``. Under a tape, W's gradient is left
        to the tape, which computes it for all steps at once."""
        if tape is None:
            return torch.addmm(acc, inp, getattr(self, name).t())
        return torch.addmm(acc, inp, tape.use(name, inp))

    def _rmul(self, name: str, acc: Tensor, inp: Tensor, tape: Optional[_Tape]) -> Tensor:
        """acc + inp ⊙ p for the peephole ``name``, its gradient left to the tape like _rmm's."""
        if tape is None:
            return torch.addcmul(acc, inp, getattr(self, name))
        return torch.addcmul(acc, inp, tape.use(name, inp))

    def gates(self, x: Tensor, state: Optional[tuple[Tensor, ...]] = None) -> dict[str, Tensor]:
        """Gate values and new state of one step from the raw input x (B, I), for inspection."""
        if state is None:
            state = self.init_state(x.shape[0], x)
        out: dict[str, Tensor] = {}
        new = self.step(self.project(x), state, out)
        out["h"] = new[0]
        return out


class ElmanCell(Cell):
    """Elman RNN:  h' = tanh(W [x; h] + b).   Parameters: H·(I + H + 1)."""

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__(input_size, hidden_size, 1)
        self.weight_h = self._square()
        self.recurrent = [("weight_h", 0, hidden_size, "mm")]
        self.reset_parameters()

    def step(self, xp, state, gates=None, tape=None):
        return (torch.tanh(self._rmm("weight_h", xp, state[0], tape)),)


@dataclass(frozen=True)
class LSTMVariant:
    """One row of Greff et al. 2015's table: what differs from the vanilla (peephole) LSTM."""

    input_gate: bool = True  # NIG: i = 1
    forget_gate: str = "own"  # "own"; "none" (NFG: f = 1); "coupled" (CIFG: f = 1 - i)
    output_gate: bool = True  # NOG: o = 1
    input_activation: bool = True  # NIAF: g(x) = x
    output_activation: bool = True  # NOAF: h(x) = x
    peepholes: bool = True  # NP: p = 0
    gate_recurrence: bool = False  # FGR: gates also see R [i_prev; f_prev; o_prev]


LSTM_VARIANTS = {
    "lstm": LSTMVariant(peepholes=False),
    "lstm-peephole": LSTMVariant(),
    "lstm-nig": LSTMVariant(input_gate=False),
    "lstm-nfg": LSTMVariant(forget_gate="none"),
    "lstm-nog": LSTMVariant(output_gate=False),
    "lstm-niaf": LSTMVariant(input_activation=False),
    "lstm-noaf": LSTMVariant(output_activation=False),
    "lstm-np": LSTMVariant(peepholes=False),
    "lstm-cifg": LSTMVariant(forget_gate="coupled"),
    "lstm-fgr": LSTMVariant(gate_recurrence=True),
}


class LSTMCell(Cell):
    """LSTM with peepholes (Greff et al. 2015, "vanilla LSTM") and its one-change variants:

        z  = g(W_z [x; h] + b_z)                 block input, g = tanh   (NIAF: g(x) = x)
        i  = σ(W_i [x; h] + p_i ⊙ c + b_i)                               (NIG: i = 1)
        f  = σ(W_f [x; h] + p_f ⊙ c + b_f)       (NFG: f = 1; CIFG: f = 1 - i)
        c' = z ⊙ i + c ⊙ f
        o  = σ(W_o [x; h] + p_o ⊙ c' + b_o)      the output peephole sees the new c'  (NOG: o = 1)
        h' = h(c') ⊙ o,  h = tanh                                        (NOAF: h(x) = x)

    NP sets p = 0 (no peephole parameters); ``lstm`` is the same cell and is what torch.nn.LSTM
    computes. FGR adds R·[i_prev; f_prev; o_prev] (nine H×H matrices, ``weight_gates``) to the
    pre-activations of i, f and o, so its state is (h, c, [i; f; o] of the previous step),
    zeros at the start.

    Rows of ``weight_x``/``weight_h``/``bias`` hold the gates that exist, ordered (i, f, o, z) so
    the sigmoid gates are one contiguous block (``gate_slices`` maps name -> row slice); the
    peepholes are ``peephole_i``, ``peephole_f``, ``peephole_o`` (H,) for the gates that exist.
    Parameters: (S + 1)·H·(I + H + 1) + S·H [+ 9H² for FGR], S = gates among i, f, o (no S·H
    without peepholes).
    """

    def __init__(
        self, input_size: int, hidden_size: int, variant: LSTMVariant = LSTMVariant(), forget_bias: float = 1.0
    ):
        H, v = hidden_size, variant
        has_f = v.forget_gate == "own"
        sigmoid_gates = [g for g, on in (("i", v.input_gate), ("f", has_f), ("o", v.output_gate)) if on]
        if not (v.input_gate or has_f):
            raise ValueError("an LSTM needs an input or a forget gate")
        S = len(sigmoid_gates)
        super().__init__(input_size, hidden_size, S + 1)
        self.variant, self.sigmoid_gates = v, sigmoid_gates
        self.gate_slices = {g: slice(k * H, (k + 1) * H) for k, g in enumerate(sigmoid_gates + ["z"])}
        self.weight_h = self._square(S + 1)
        self.recurrent = [("weight_h", 0, (S + 1) * H, "mm")]
        self.weight_gates = None
        self.state_size = 2
        if v.gate_recurrence:
            if S != 3:
                raise ValueError("full gate recurrence needs all three gates")
            self.weight_gates = nn.Parameter(torch.empty(3 * H, 3 * H))  # R: rows (i, f, o) <- [i; f; o]_prev
            self.recurrent.append(("weight_gates", 0, 3 * H, "mm"))
            self.state_size = 3
        for g in ("i", "f", "o"):
            on = v.peepholes and g in sigmoid_gates
            setattr(self, f"peephole_{g}", nn.Parameter(torch.empty(H)) if on else None)
            if on:
                rows = self.gate_slices[g]
                self.recurrent.append((f"peephole_{g}", rows.start, rows.stop, "diag"))
        self.reset_parameters()
        if has_f:
            with torch.no_grad():
                self.bias[self.gate_slices["f"]] = forget_bias

    def init_state(self, batch, like):
        h, c = like.new_zeros(batch, self.hidden_size), like.new_zeros(batch, self.hidden_size)
        return (h, c) if self.weight_gates is None else (h, c, like.new_zeros(batch, 3 * self.hidden_size))

    def step(self, xp, state, gates=None, tape=None):
        h, c = state[0], state[1]
        H, v, S = self.hidden_size, self.variant, len(self.sigmoid_gates)
        sig, z = self._rmm("weight_h", xp, h, tape).split([S * H, H], 1)  # gates (i, f, o), z
        if self.weight_gates is not None:
            sig = self._rmm("weight_gates", sig, state[2], tape)
        if v.input_activation:
            z = torch.tanh(z)
        pre: dict[str, Tensor] = {}  # pre-activations still waiting for a peephole
        if v.peepholes:  # i, f see the old c; o waits for the new one
            pre = dict(zip(self.sigmoid_gates, sig.chunk(S, 1)))
            i = torch.sigmoid(self._rmul("peephole_i", pre["i"], c, tape)) if "i" in pre else None
            f = torch.sigmoid(self._rmul("peephole_f", pre["f"], c, tape)) if "f" in pre else None
            o = None
        else:  # every gate in one sigmoid
            act = dict(zip(self.sigmoid_gates, torch.sigmoid(sig).chunk(S, 1)))
            i, f, o = act.get("i"), act.get("f"), act.get("o")
        if i is None:  # NIG: c' = z + f ⊙ c
            c_new = torch.addcmul(z, f, c)
        elif v.forget_gate == "none":  # NFG: c' = c + i ⊙ z
            c_new = torch.addcmul(c, i, z)
        elif v.forget_gate == "coupled":  # CIFG: c' = i ⊙ z + (1 - i) ⊙ c
            c_new = torch.lerp(c, z, i)
        else:
            c_new = torch.addcmul(f * c, i, z)
        if "o" in pre:
            o = torch.sigmoid(self._rmul("peephole_o", pre["o"], c_new, tape))
        act = torch.tanh(c_new) if v.output_activation else c_new
        h_new = act * o if o is not None else act
        if gates is not None:
            one = torch.ones_like(c)
            gates.update(
                i=one if i is None else i,
                f=f if f is not None else (one if v.forget_gate == "none" else 1 - i),
                o=one if o is None else o,
                z=z,
                c=c_new,
            )
        if self.weight_gates is not None:
            return h_new, c_new, torch.cat([i, f, o], 1)
        return h_new, c_new


class GRUCell(Cell):
    """GRU, Cho et al. 2014, in the paper's form:

        r  = σ(W_r [x; h] + b_r),   u = σ(W_u [x; h] + b_u)
        h̃  = tanh(W x + U (r ⊙ h) + b)          reset applied to h BEFORE the matmul
        h' = u ⊙ h + (1 - u) ⊙ h̃

    torch.nn.GRU applies the reset after the matmul, r ⊙ (U h + b_hn), and calls u "z"; this
    cell follows the paper. Rows of ``weight_x``/``bias``: (r, u, h̃); ``weight_h``: (r, u);
    ``weight_hc``: U. Parameters: 3H·(I + H + 1).
    """

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__(input_size, hidden_size, 3)
        self.weight_h = self._square(2)
        self.weight_hc = self._square()
        H = hidden_size
        self.recurrent = [("weight_h", 0, 2 * H, "mm"), ("weight_hc", 2 * H, 3 * H, "mm")]
        self.reset_parameters()

    def step(self, xp, state, gates=None, tape=None):
        h, H = state[0], self.hidden_size
        xp_ru, xp_c = xp.split([2 * H, H], 1)
        r, u = torch.sigmoid(self._rmm("weight_h", xp_ru, h, tape)).chunk(2, 1)
        candidate = torch.tanh(self._rmm("weight_hc", xp_c, r * h, tape))
        if gates is not None:
            gates.update(r=r, u=u, candidate=candidate)
        return (torch.lerp(candidate, h, u),)  # h̃ + u ⊙ (h - h̃)


class MUTCell(Cell):
    """The three architectures found by Jozefowicz, Zaremba & Sutskever 2015, with z the
    update and r the reset gate:

        MUT1: z = σ(W_xz x + b_z);  r = σ(W_xr x + W_hr h + b_r)
              h' = tanh(W_hh (r ⊙ h) + tanh(x) + b_h) ⊙ z + h ⊙ (1 - z)
        MUT2: z = σ(W_xz x + W_hz h + b_z);  r = σ(x + W_hr h + b_r)
              h' = tanh(W_hh (r ⊙ h) + W_xh x + b_h) ⊙ z + h ⊙ (1 - z)
        MUT3: z = σ(W_xz x + W_hz tanh(h) + b_z);  r = σ(W_xr x + W_hr h + b_r)
              h' = tanh(W_hh (r ⊙ h) + W_xh x + b_h) ⊙ z + h ⊙ (1 - z)

    The bare x terms need input size == hidden size: ``Recurrent`` projects its input to the
    hidden size with a Linear layer first (for each layer whose input is not already H wide).
    ``project`` returns the x-only parts (z, r, h̃) of every step; MUT1's z depends on x alone, so
    its sigmoid is taken there for all steps at once.
    Rows of ``weight_x``: MUT1 (z, r), MUT2 (z, h̃), MUT3 (z, r, h̃); ``bias``: (b_z, b_r, b_h).
    Recurrent: MUT1 ``weight_hr``, ``weight_hh``; MUT2 ``weight_h`` = (W_hz; W_hr), ``weight_hh``;
    MUT3 ``weight_hz``, ``weight_hr``, ``weight_hh``.
    Parameters (I = H): MUT1 4H² + 3H, MUT2 5H² + 3H, MUT3 6H² + 3H.
    """

    def __init__(self, input_size: int, hidden_size: int, kind: str):
        if input_size != hidden_size:
            raise ValueError(
                f"{kind} needs input size == hidden size (got {input_size} and {hidden_size}); project the input first"
            )
        super().__init__(input_size, hidden_size, 3)
        self.kind, H = kind, hidden_size
        if kind == "mut1":
            self.weight_x = self._square(2)
            self.weight_hr = self._square()
            self.recurrent = [("weight_hr", H, 2 * H, "mm")]
        elif kind == "mut2":
            self.weight_x = self._square(2)
            self.weight_h = self._square(2)
            self.recurrent = [("weight_h", 0, 2 * H, "mm")]
        elif kind == "mut3":
            self.weight_hz = self._square()
            self.weight_hr = self._square()
            self.recurrent = [("weight_hz", 0, H, "mm"), ("weight_hr", H, 2 * H, "mm")]
        else:
            raise ValueError(f"unknown MUT cell {kind!r}")
        self.weight_hh = self._square()
        self.recurrent.append(("weight_hh", 2 * H, 3 * H, "mm"))
        self.reset_parameters()

    def project(self, x):
        H, b = self.hidden_size, self.bias
        wx = F.linear(x, self.weight_x)
        if self.kind == "mut1":
            wz, wr = wx.split(H, -1)
            b_z, b_r, b_h = b.split(H)
            return torch.cat([torch.sigmoid(wz + b_z), wr + b_r, torch.tanh(x) + b_h], -1)
        if self.kind == "mut2":
            wz, wh = wx.split(H, -1)
            return torch.cat([wz, x, wh], -1) + b
        return wx + b

    def step(self, xp, state, gates=None, tape=None):
        h = state[0]
        if self.kind == "mut1":
            z, xp_r, xp_c = xp.split(self.hidden_size, 1)
            r = torch.sigmoid(self._rmm("weight_hr", xp_r, h, tape))
        elif self.kind == "mut2":
            xp_zr, xp_c = xp.split([2 * self.hidden_size, self.hidden_size], 1)
            z, r = torch.sigmoid(self._rmm("weight_h", xp_zr, h, tape)).chunk(2, 1)
        else:
            xp_z, xp_r, xp_c = xp.split(self.hidden_size, 1)
            z = torch.sigmoid(self._rmm("weight_hz", xp_z, torch.tanh(h), tape))
            r = torch.sigmoid(self._rmm("weight_hr", xp_r, h, tape))
        candidate = torch.tanh(self._rmm("weight_hh", xp_c, r * h, tape))
        if gates is not None:
            gates.update(z=z, r=r, candidate=candidate)
        return (torch.lerp(h, candidate, z),)  # h + z ⊙ (h̃ - h)


def make_cell(cell: str, input_size: int, hidden_size: int, forget_bias: float = 1.0) -> Cell:
    if cell == "rnn":
        return ElmanCell(input_size, hidden_size)
    if cell in LSTM_VARIANTS:
        return LSTMCell(input_size, hidden_size, LSTM_VARIANTS[cell], forget_bias)
    if cell == "gru":
        return GRUCell(input_size, hidden_size)
    if cell in MUT_CELLS:
        return MUTCell(input_size, hidden_size, cell)
    raise ValueError(f"unknown cell {cell!r}; choose one of {', '.join(CELL_NAMES)}")


class _TorchLayer:
    """One layer and direction of a torch nn.RNN / nn.LSTM, unrolled step by step with the
    module's own weight tensors (so gradients reach them): torch's two biases are summed, its
    LSTM gates are ordered (i, f, g, o)."""

    def __init__(self, module: nn.RNNBase, layer: int, reverse: bool):
        suffix = f"_l{layer}" + ("_reverse" if reverse else "")
        self.weight_x = getattr(module, "weight_ih" + suffix)
        self.weight_h = getattr(module, "weight_hh" + suffix)
        self.bias = getattr(module, "bias_ih" + suffix) + getattr(module, "bias_hh" + suffix)
        self.hidden_size = module.hidden_size
        self.lstm = isinstance(module, nn.LSTM)
        self.state_size = 2 if self.lstm else 1
        self.recurrent = []  # the diagnostic path: autograd takes the weight gradients step by step

    project = Cell.project
    init_state = Cell.init_state

    def step(self, xp, state, gates=None, tape=None):
        pre = torch.addmm(xp, state[0], self.weight_h.t())
        if not self.lstm:
            return (torch.tanh(pre),)
        i, f, g, o = pre.chunk(4, 1)
        c = torch.addcmul(torch.sigmoid(f) * state[1], torch.sigmoid(i), torch.tanh(g))
        return torch.sigmoid(o) * torch.tanh(c), c


def _reverse_within(x: Tensor, lengths: Optional[Tensor]) -> Tensor:
    """Reverse each sequence of x (B, T, ...) within its own length; padding stays in place.
    Applying it twice gives x back."""
    if lengths is None:
        return x.flip(1)
    t = torch.arange(x.shape[1], device=x.device)
    index = torch.where(t < lengths[:, None], lengths[:, None] - 1 - t, t)  # (B, T)
    return x.gather(1, index.view(*index.shape, *([1] * (x.dim() - 2))).expand_as(x))


class _Tape:
    """For one layer/direction and one forward pass: the weights of ``cell.recurrent``, detached
    for use in the steps, and the input each was applied to at every step (detached too: only
    their values are needed, and no reference cycle through the graph is made)."""

    def __init__(self, cell: Cell):
        self.entries = [(a, b, kind) for _, a, b, kind in cell.recurrent]
        self.weights = [getattr(cell, name) for name, _, _, _ in cell.recurrent]
        self.detached = {
            name: w.detach().t() if kind == "mm" else w.detach()
            for (name, _, _, kind), w in zip(cell.recurrent, self.weights)
        }
        self.inputs: dict[str, list[Tensor]] = {name: [] for name, _, _, _ in cell.recurrent}
        self.names = list(self.inputs)

    def use(self, name: str, inp: Tensor) -> Tensor:
        self.inputs[name].append(inp.detach())
        return self.detached[name]


class _DeferredWeightGrad(torch.autograd.Function):
    """Passes xp (T, B, G) through. Every weight of ``cell.recurrent`` adds to a pre-activation
    whose gradient is the gradient of its xp columns, so
        dL/dW = Σ_t dL/dxp_t[:, cols]ᵀ · input_t     ("mm": one matmul over all T·B rows)
        dL/dp = Σ_t Σ_b dL/dxp_t[b, cols] ⊙ input_t  ("diag": one reduction)
    instead of T small matmuls and T batch reductions from autograd (the steps use the detached
    weights). The gradient with respect to h and c still flows step by step."""

    @staticmethod
    def forward(ctx, xp, tape, *weights):
        ctx.tape = tape
        return xp.view_as(xp)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        tape, grads = ctx.tape, []
        for k, (name, (a, b, kind)) in enumerate(zip(tape.names, tape.entries)):
            if not ctx.needs_input_grad[2 + k]:
                grads.append(None)
                continue
            inputs = torch.stack(tape.inputs[name])  # (T, B, K)
            g = grad[..., a:b].reshape(-1, b - a)
            inputs = inputs.reshape(-1, inputs.shape[-1])
            grads.append(g.t() @ inputs if kind == "mm" else (g * inputs).sum(0))
        return grad, None, *grads


def _unroll(
    cell, x: Tensor, mask: Optional[Tensor], min_length: int, state, defer: bool = True
) -> tuple[Tensor, tuple, list[Tensor]]:
    """Run ``cell`` over x (B, T, I): outputs (B, T, H), final state, [h_t for t = 1..T].
    ``mask`` (T, B, 1) bool is True where t < length; steps below ``min_length`` need no mask;
    ``defer``: leave the recurrent weights' gradients to a _Tape."""
    B, T = x.shape[:2]
    if state is None:
        state = cell.init_state(B, x)
    xp = cell.project(x.transpose(0, 1))  # (T, B, G): one matmul for every step's input terms
    tape = None
    if defer and cell.recurrent and torch.is_grad_enabled():
        tape = _Tape(cell)
        if any(w.requires_grad for w in tape.weights):
            xp = _DeferredWeightGrad.apply(xp, tape, *tape.weights)
        else:
            tape = None
    hs = []
    for t, xp_t in enumerate(xp.unbind(0)):
        new = cell.step(xp_t, state, tape=tape)
        if mask is not None and t >= min_length:
            new = tuple(torch.where(mask[t], n, s) for n, s in zip(new, state))
        state = new
        hs.append(state[0])
    outputs = torch.stack(hs, 1)
    if mask is not None:
        outputs = outputs * mask.transpose(0, 1)
    return outputs, state, hs


class Recurrent(nn.Module):
    """A stack of ``num_layers`` recurrent layers of one cell (see ``CELL_NAMES``), optionally
    bidirectional, with dropout between layers (not after the last).

    forward(x (B, T, I), lengths (B,) or None, state, record_states) -> RecurrentOutput.
    ``state`` is what a previous call returned as ``.state`` (unidirectional only), for
    step-by-step generation; None starts from zeros.

    ``forget_bias`` is the initial forget-gate bias of the cells in ``LSTM_FAMILY``; the others
    ignore it. For mut1-3, each layer whose input is not H wide first projects it to H with a
    Linear layer (``projections``), shared by both directions. ``fused=True`` with ``rnn`` or
    ``lstm`` holds a torch nn.RNN / nn.LSTM (``torch_rnn``; torch's two biases, so
    H more parameters per gate than the custom cell), unrolled with its own weights when
    ``record_states`` is set; a passed ``state`` becomes its (h_0, c_0).
    """

    deferred_weight_grad = True  # False: plain autograd through the steps (allows a double backward)

    def __init__(
        self,
        cell: str,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        dropout: float = 0.0,
        bidirectional: bool = False,
        forget_bias: float = 1.0,
        fused: bool = True,
    ):
        super().__init__()
        if cell not in CELL_NAMES:
            raise ValueError(f"unknown cell {cell!r}; choose one of {', '.join(CELL_NAMES)}")
        if input_size < 1 or hidden_size < 1 or num_layers < 1:
            raise ValueError("input_size, hidden_size and num_layers must be at least 1")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.cell, self.input_size, self.hidden_size = cell, input_size, hidden_size
        self.num_layers, self.dropout, self.bidirectional = num_layers, dropout, bidirectional
        self.directions = 2 if bidirectional else 1
        self.fused = fused and cell in FUSABLE
        H = hidden_size
        if self.fused:
            self.torch_rnn = FUSABLE[cell](
                input_size, H, num_layers=num_layers, batch_first=True, bidirectional=bidirectional,
                dropout=dropout if num_layers > 1 else 0.0,
            )
            if cell == "lstm":
                with torch.no_grad():  # one bias carries b_f (REFERENCE: not both)
                    for name, p in self.torch_rnn.named_parameters():
                        if name.startswith("bias_ih"):
                            p[H : 2 * H] = forget_bias
                        elif name.startswith("bias_hh"):
                            p[H : 2 * H] = 0.0
            return
        self.projections = nn.ModuleList()
        self.layers = nn.ModuleList()
        for layer in range(num_layers):
            width = input_size if layer == 0 else H * self.directions
            if cell in MUT_CELLS and width != H:
                self.projections.append(nn.Linear(width, H))
                width = H
            else:
                self.projections.append(nn.Identity())
            self.layers.append(nn.ModuleList(make_cell(cell, width, H, forget_bias) for _ in range(self.directions)))

    def _layer_cells(self, layer: int) -> list:
        if self.fused:
            return [_TorchLayer(self.torch_rnn, layer, reverse) for reverse in range(self.directions)]
        return list(self.layers[layer])

    def forward(
        self, x: Tensor, lengths: Optional[Tensor] = None, state=None, record_states: bool = False
    ) -> RecurrentOutput:
        if x.dim() != 3 or x.shape[2] != self.input_size:
            raise ValueError(f"expected x of shape (batch, time, {self.input_size}), got {tuple(x.shape)}")
        B, T = x.shape[:2]
        if state is not None and self.bidirectional:
            raise ValueError("state can only be passed to a unidirectional Recurrent")
        if state is not None and len(state) != self.num_layers:
            raise ValueError(f"state must hold {self.num_layers} layer states, got {len(state)}")
        if lengths is not None:
            lengths = lengths.to(device=x.device, dtype=torch.long)
            if lengths.shape != (B,) or int(lengths.min()) < 1 or int(lengths.max()) > T:
                raise ValueError(f"lengths must be (batch,) with values in 1..{T}")
        if self.fused and not record_states:
            return self._forward_torch(x, lengths, state)

        mask, min_length = None, T
        if lengths is not None and int(lengths.min()) < T:
            mask = (torch.arange(T, device=x.device)[:, None] < lengths)[:, :, None]  # (T, B, 1)
            min_length = int(lengths.min())
        final_states, recorded = [], None
        for layer in range(self.num_layers):
            if not self.fused:
                x = self.projections[layer](x)
            cells = self._layer_cells(layer)
            defer = self.deferred_weight_grad
            out, fin, hs = _unroll(cells[0], x, mask, min_length, None if state is None else state[layer], defer)
            final_states.append(fin)
            outs, last = [out], [fin[0]]
            if self.bidirectional:
                out_b, fin_b, _ = _unroll(cells[1], _reverse_within(x, lengths), mask, min_length, None, defer)
                outs.append(_reverse_within(out_b, lengths))
                last.append(fin_b[0])
            x = torch.cat(outs, 2) if self.bidirectional else out
            if layer < self.num_layers - 1 and self.dropout > 0:
                x = F.dropout(x, self.dropout, self.training)
            recorded = hs
        return RecurrentOutput(x, torch.cat(last, 1), final_states, recorded if record_states else None)

    def _forward_torch(self, x, lengths, state) -> RecurrentOutput:
        """torch's fused nn.RNN / nn.LSTM, packed when lengths are given."""
        T, lstm = x.shape[1], self.cell == "lstm"
        init = None
        if state is not None:
            init = tuple(torch.stack([s[k] for s in state]) for k in range(2 if lstm else 1))
            init = init if lstm else init[0]
        if lengths is None:
            outputs, final = self.torch_rnn(x, init)
        else:
            packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
            outputs, final = self.torch_rnn(packed, init)
            outputs, _ = pad_packed_sequence(outputs, batch_first=True, total_length=T)
        final = final if lstm else (final,)  # each (layers * directions, B, H)
        D = self.directions
        states = [tuple(f[layer * D] for f in final) for layer in range(self.num_layers)]
        last = torch.cat([final[0][-2], final[0][-1]], 1) if self.bidirectional else final[0][-1]
        return RecurrentOutput(outputs, last, states, None)
