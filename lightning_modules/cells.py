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

Speed: training runs each layer and direction as ONE autograd node (``_Sequence``) instead of
autograd's ~10-20 per step. Forward: the input terms of all steps in one matmul, written into
the buffer that each step then updates in place (one h @ W_h matmul, the activations), keeping
the gates; no autograd. Backward: backpropagation through time written out by hand per cell
(``run_sequence`` / ``backprop_sequence``), a few elementwise ops and one matmul per step, and
each weight's gradient summed over all steps in one matmul at the end (``weight_grads``). It
cannot be differentiated twice (it raises); for a double backward, e.g. a gradient penalty
through a recurrent discriminator, set ``Recurrent.hand_backward = False`` on the instance: plain
autograd through ``Cell.step``, which ``record_states`` (the gradient-flow diagnostic: h_t on
the autograd path) also uses. tests/test_cells.py holds the two paths to each other and the
hand-written one to gradcheck.

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
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from lightning_modules.settings import CELL_NAMES  # one list: validation reads it without torch
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


# The elementwise derivatives autograd itself uses (every device has them): grad ⊙ y ⊙ (1 - y)
# for y = σ(x), grad ⊙ (1 - y²) for y = tanh(x); the ``_into`` forms write into ``grad_input``.
# (Overloads named up front: resolving one per call costs microseconds, per step.)
_sigmoid_backward_into = torch.ops.aten.sigmoid_backward.grad_input
_tanh_backward = torch.ops.aten.tanh_backward.default
_tanh_backward_into = torch.ops.aten.tanh_backward.grad_input


def _steps(x: Optional[Tensor]) -> Optional[list[Tensor]]:
    """The per-step views x[t] of a (T, ...) buffer, made at once (cheaper than indexing in the
    loop); None for None."""
    return None if x is None else list(x.unbind(0))


def _cols(x: Tensor, cols: Optional[slice]) -> Optional[list[Tensor]]:
    """The per-step views x[t][:, cols] of a (T, B, G) buffer; None where cols is None (a gate
    the cell lacks)."""
    return None if cols is None else list(x[:, :, cols].unbind(0))


def _masked_grad(m: Tensor, grad: Tensor) -> tuple[Tensor, Tensor]:
    """A masked step (state = where(m, new, old)): the gradient of the state splits into the part
    reaching the step's new value and the part passed straight to the old state."""
    return torch.where(m, grad, 0.0), torch.where(m, 0.0, grad)


def _weight_grad(d: Tensor, a: int, b: int, first: Tensor, rest: Optional[Tensor] = None) -> Tensor:
    """Σ_t d[t][:, a:b]ᵀ · in_t for a weight applied to in_t at every step, in one matmul (two
    with ``rest``) over all T·B rows. d (T, B, G) contiguous. Either ``first`` (T, B, K) holds in_t
    for every t, or in_0 = first (B, K) and in_t = rest[t - 1], rest (≥ T - 1, B, K) contiguous."""
    T, B, G = d.shape
    dt = d.view(T * B, G).t()[a:b]  # (b - a, T·B): a transposed view, no copy
    if rest is None:
        return dt @ first.reshape(T * B, -1)
    g = dt[:, :B] @ first
    if T > 1:
        g.addmm_(dt[:, B:], rest[: T - 1].reshape((T - 1) * B, -1))
    return g


class Cell(nn.Module):
    """Shared by all cells: ``weight_x`` (G·H, I) and ``bias`` (G·H,) give the input terms of all
    steps in one matmul (``project``); each cell adds its recurrent weights, named in
    ``recurrent``. Every parameter starts uniform in ±1/√H, as in torch's recurrent layers.

    Each cell has its equations twice: ``step``, one step with plain autograd (for ``gates``,
    ``record_states`` and a double backward), and ``run_sequence`` / ``backprop_sequence``, all
    steps without autograd and their backward by hand (``_Sequence``, the training path).
    tests/test_cells.py holds the two to each other, and the hand backward to gradcheck.

    In ``step``, gates are taken apart with split/chunk, never by indexing: autograd turns
    an index or slice into a zero-filled gradient of the whole tensor at every step."""

    state_size = 1  # tensors in the state tuple; the first is h
    recurrent: tuple[str, ...] = ()  # the recurrent weights, in the order run_sequence gets them
    linear_projection = True  # project is F.linear(x, weight_x, bias): _Sequence does it itself

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

    def step(self, xp: Tensor, state: tuple[Tensor, ...], gates: Optional[dict] = None) -> tuple[Tensor, ...]:
        """One time step from the projected input ``xp`` (B, G·H); fills ``gates`` if given."""
        raise NotImplementedError

    def run_sequence(
        self, acts: Tensor, state: tuple[Tensor, ...], weights: tuple[Tensor, ...], mask: Optional[Tensor],
        min_length: int,
    ) -> tuple[Tensor, tuple[Tensor, ...], dict]:
        """All steps, no autograd. ``acts`` (T, B, G) holds xp, the input terms, and is the
        cell's to keep: each step adds its recurrent terms and takes the activations in place
        (no copy of xp, one pass over it). ``state`` as from ``init_state``, ``weights`` the
        tensors named by ``recurrent``; ``mask`` (T, B, 1) bool (t < length) or None, steps
        below ``min_length`` unmasked. Returns hs (T, B, H), h after each step (kept at its last
        value past a sequence's length), the final state's entries after h, and what
        ``backprop_sequence`` needs."""
        raise NotImplementedError

    def backprop_sequence(
        self, saved: dict, dhs: Tensor, drest: tuple[Tensor, ...], weights: tuple[Tensor, ...]
    ) -> tuple[Tensor, tuple[Tensor, ...]]:
        """Backpropagation through time by hand: the gradients of hs and of the final state's
        other entries -> those of xp (the pre-activations: dxp) and of the initial state."""
        raise NotImplementedError

    def weight_grads(self, saved: dict, dxp: Tensor) -> tuple[Tensor, ...]:
        """The gradients of the ``recurrent`` weights, each summed over all steps at once."""
        raise NotImplementedError

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

    recurrent = ("weight_h",)

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__(input_size, hidden_size, 1)
        self.weight_h = self._square()
        self.reset_parameters()

    def step(self, xp, state, gates=None):
        return (torch.tanh(torch.addmm(xp, state[0], self.weight_h.t())),)

    def run_sequence(self, acts, state, weights, mask, min_length):
        WT = weights[0].t().contiguous()  # (a contiguous Wᵀ makes the small matmuls faster)
        hs, h = acts, state[0]  # acts become the hs
        HS, M = _steps(hs), _steps(mask)
        for t in range(len(HS)):
            h_new = HS[t].addmm_(h, WT).tanh_()
            if M is not None and t >= min_length:
                torch.where(M[t], h_new, h, out=h_new)
            h = h_new
        return hs, (), dict(h0=state[0], hs=hs, mask=mask, min_length=min_length)

    def backprop_sequence(self, saved, dhs, drest, weights):
        (W,) = weights
        hs, mask, min_length = saved["hs"], saved["mask"], saved["min_length"]
        dxp = torch.empty_like(hs)
        HS, D, DHS, M = _steps(hs), _steps(dxp), _steps(dhs), _steps(mask)
        dh = DHS[-1]
        for t in reversed(range(len(HS))):
            passed = None
            if M is not None and t >= min_length:
                dh, passed = _masked_grad(M[t], dh)
            d = _tanh_backward_into(dh, HS[t], grad_input=D[t])  # hs[t] = tanh(pre) where unmasked
            dh = torch.addmm(DHS[t - 1], d, W) if t > 0 else d @ W
            if passed is not None:
                dh.add_(passed)
        return dxp, (dh,)

    def weight_grads(self, saved, dxp):
        return (_weight_grad(dxp, 0, self.hidden_size, saved["h0"], saved["hs"]),)


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
        recurrent = ["weight_h"]
        self.weight_gates = None
        self.state_size = 2
        if v.gate_recurrence:
            if S != 3:
                raise ValueError("full gate recurrence needs all three gates")
            self.weight_gates = nn.Parameter(torch.empty(3 * H, 3 * H))  # R: rows (i, f, o) <- [i; f; o]_prev
            recurrent.append("weight_gates")
            self.state_size = 3
        for g in ("i", "f", "o"):
            on = v.peepholes and g in sigmoid_gates
            setattr(self, f"peephole_{g}", nn.Parameter(torch.empty(H)) if on else None)
            if on:
                recurrent.append(f"peephole_{g}")
        self.recurrent = tuple(recurrent)
        self.reset_parameters()
        if has_f:
            with torch.no_grad():
                self.bias[self.gate_slices["f"]] = forget_bias

    def init_state(self, batch, like):
        h, c = like.new_zeros(batch, self.hidden_size), like.new_zeros(batch, self.hidden_size)
        return (h, c) if self.weight_gates is None else (h, c, like.new_zeros(batch, 3 * self.hidden_size))

    def step(self, xp, state, gates=None):
        h, c = state[0], state[1]
        H, v, S = self.hidden_size, self.variant, len(self.sigmoid_gates)
        sig, z = torch.addmm(xp, h, self.weight_h.t()).split([S * H, H], 1)  # gates (i, f, o), z
        if self.weight_gates is not None:
            sig = torch.addmm(sig, state[2], self.weight_gates.t())
        if v.input_activation:
            z = torch.tanh(z)
        pre: dict[str, Tensor] = {}  # pre-activations still waiting for a peephole
        if v.peepholes:  # i, f see the old c; o waits for the new one
            pre = dict(zip(self.sigmoid_gates, sig.chunk(S, 1)))
            i = torch.sigmoid(torch.addcmul(pre["i"], c, self.peephole_i)) if "i" in pre else None
            f = torch.sigmoid(torch.addcmul(pre["f"], c, self.peephole_f)) if "f" in pre else None
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
            o = torch.sigmoid(torch.addcmul(pre["o"], c_new, self.peephole_o))
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

    def _layout(self):
        """Column slices of the gates in xp (None for a gate the variant lacks), and the leading
        block of gates whose σ is taken together: i and f with peepholes (o waits for c'), else all."""
        sl, H = self.gate_slices, self.hidden_size
        i_s, f_s, o_s, z_s = sl.get("i"), sl.get("f"), sl.get("o"), sl["z"]
        n_if = ((i_s is not None) + (f_s is not None)) * H
        return i_s, f_s, o_s, z_s, slice(0, n_if if self.variant.peepholes else len(self.sigmoid_gates) * H)

    def run_sequence(self, acts, state, weights, mask, min_length):
        v, H = self.variant, self.hidden_size
        T, B, G = acts.shape
        w = dict(zip(self.recurrent, weights))
        WT, R = w["weight_h"].t().contiguous(), w.get("weight_gates")
        RT = R.t().contiguous() if R is not None else None
        p_i, p_f, p_o = w.get("peephole_i"), w.get("peephole_f"), w.get("peephole_o")
        i_s, f_s, o_s, z_s, sig_s = self._layout()
        # acts: (i, f, o, z) after their activations
        cs = acts.new_empty(T + 1, B, H)  # c before each step and after the last
        cs[0] = state[1]
        hs = acts.new_empty(T, B, H)
        tanh_c = acts.new_empty(T, B, H) if v.output_activation else None
        gs = None  # FGR: [i; f; o] state before each step and after the last
        if R is not None:
            gs = acts.new_empty(T + 1, B, 3 * H)
            gs[0] = state[2]
        A, CS, HS, TC, GS, M = map(_steps, (acts, cs, hs, tanh_c, gs, mask))
        I, F, O, Z, SIG = (_cols(acts, s) for s in (i_s, f_s, o_s, z_s, sig_s))
        IFO = _cols(acts, slice(0, 3 * H)) if R is not None else None
        # the peepholes on the old c, of i and f (those present: the gates of the block SIG), in one op
        p_if = [p for p in (p_i, p_f) if p is not None]
        p_if = torch.stack(p_if) if p_if else None  # (k, H)
        PRE_IF = list(acts[:, :, sig_s].unflatten(2, p_if.shape).unbind(0)) if p_if is not None else None
        h = state[0]
        for t in range(T):
            c, c_new, h_new = CS[t], CS[t + 1], HS[t]
            A[t].addmm_(h, WT)
            if R is not None:
                IFO[t].addmm_(GS[t], RT)
            if p_if is not None:  # i, f see the old c
                PRE_IF[t].addcmul_(c.unsqueeze(1), p_if)
            SIG[t].sigmoid_()
            if v.input_activation:
                Z[t].tanh_()
            if I is None:  # NIG: c' = z + f ⊙ c
                torch.addcmul(Z[t], F[t], c, out=c_new)
            elif v.forget_gate == "none":  # NFG: c' = c + i ⊙ z
                torch.addcmul(c, I[t], Z[t], out=c_new)
            elif v.forget_gate == "coupled":  # CIFG: c' = i ⊙ z + (1 - i) ⊙ c
                torch.lerp(c, Z[t], I[t], out=c_new)
            else:
                torch.mul(F[t], c, out=c_new).addcmul_(I[t], Z[t])
            if p_o is not None:  # the output peephole sees the new c
                O[t].addcmul_(c_new, p_o).sigmoid_()
            out = torch.tanh(c_new, out=TC[t]) if v.output_activation else c_new
            if O is not None:
                torch.mul(out, O[t], out=h_new)
            else:
                h_new.copy_(out)
            if R is not None:
                GS[t + 1].copy_(IFO[t])
            if M is not None and t >= min_length:
                torch.where(M[t], c_new, c, out=c_new)
                torch.where(M[t], h_new, h, out=h_new)
                if R is not None:
                    torch.where(M[t], GS[t + 1], GS[t], out=GS[t + 1])
            h = h_new
        rest = (cs[T].clone(),) if R is None else (cs[T].clone(), gs[T].clone())
        saved = dict(h0=state[0], hs=hs, acts=acts, cs=cs, tanh_c=tanh_c, gs=gs, mask=mask, min_length=min_length)
        return hs, rest, saved

    def backprop_sequence(self, saved, dhs, drest, weights):
        v, H = self.variant, self.hidden_size
        w = dict(zip(self.recurrent, weights))
        W, R = w["weight_h"], w.get("weight_gates")
        p_i, p_f, p_o = w.get("peephole_i"), w.get("peephole_f"), w.get("peephole_o")
        i_s, f_s, o_s, z_s, sig_s = self._layout()
        acts, cs, min_length = saved["acts"], saved["cs"], saved["min_length"]
        dxp = torch.empty_like(acts)  # the gradients of the pre-activations
        D, DHS, CS, M = _steps(dxp), _steps(dhs), _steps(cs), _steps(saved["mask"])
        OUT = _steps(saved["tanh_c"]) if v.output_activation else CS[1:]  # h' = out ⊙ o
        I, F, O, Z, SIG = (_cols(acts, s) for s in (i_s, f_s, o_s, z_s, sig_s))
        DI, DF, DO, DZ, DSIG = (_cols(dxp, s) for s in (i_s, f_s, o_s, z_s, sig_s))
        if R is not None:
            DIF, DIFO = _cols(dxp, slice(0, 2 * H)), _cols(dxp, slice(0, 3 * H))
        dh, dc = DHS[-1], drest[0].clone()
        dg = drest[1].clone() if R is not None else None
        # Σ_t dpre ⊙ c over the steps, per batch row, for the peepholes' gradients (weight_grads):
        # i and f (those present: the gates of the block SIG) together, o on its own
        n_if = (p_i is not None) + (p_f is not None)
        dp_if = dc.new_zeros(dc.shape[0], n_if, H) if n_if else None
        DIF_ = list(dxp[:, :, sig_s].unflatten(2, (n_if, H)).unbind(0)) if n_if else None
        dp_o = torch.zeros_like(dc) if p_o is not None else None
        for t in reversed(range(len(D))):
            c, out = CS[t], OUT[t]
            passed = None
            if M is not None and t >= min_length:
                (dh, ph), (dc, pc) = _masked_grad(M[t], dh), _masked_grad(M[t], dc)
                passed = (ph, pc)
                if R is not None:
                    dg, pg = _masked_grad(M[t], dg)
                    passed += (pg,)
            if O is not None:
                do = torch.mul(dh, out, out=DO[t])
                if R is not None:  # i, f, o are also state read by the next step
                    do.add_(dg[:, 2 * H :])
                if p_o is not None:  # σ' now: the peephole passes it on to c'
                    _sigmoid_backward_into(do, O[t], grad_input=do)
                    dc.addcmul_(do, p_o)
                    dp_o.addcmul_(do, CS[t + 1])
            dout = _tanh_backward(dh, out) if v.output_activation else dh  # d(out), but for o
            if O is not None:
                dc.addcmul_(dout, O[t])
            else:
                dc.add_(dout)
            # dc: the gradient of c'; now through c' = c'(i, f, z, c)
            if I is None:  # NIG: c' = z + f ⊙ c
                torch.mul(dc, c, out=DF[t])
                if not v.input_activation:
                    DZ[t].copy_(dc)
                dc_prev = dc * F[t]
            elif v.forget_gate == "none":  # NFG: c' = c + i ⊙ z
                torch.mul(dc, Z[t], out=DI[t])
                torch.mul(dc, I[t], out=DZ[t])
                dc_prev = dc
            elif v.forget_gate == "coupled":  # CIFG: c' = c + i ⊙ (z - c)
                torch.mul(dc, Z[t] - c, out=DI[t])
                dc_prev = dc - torch.mul(dc, I[t], out=DZ[t])
            else:
                torch.mul(dc, Z[t], out=DI[t])
                torch.mul(dc, c, out=DF[t])
                torch.mul(dc, I[t], out=DZ[t])
                dc_prev = dc * F[t]
            if R is not None:
                DIF[t].add_(dg[:, : 2 * H])
            _sigmoid_backward_into(DSIG[t], SIG[t], grad_input=DSIG[t])
            if v.input_activation:  # (NIG: dz = dc)
                _tanh_backward_into(dc if I is None else DZ[t], Z[t], grad_input=DZ[t])
            if n_if:
                dp_if.addcmul_(DIF_[t], c.unsqueeze(1))
            if p_i is not None:
                dc_prev.addcmul_(DI[t], p_i)
            if p_f is not None:
                dc_prev.addcmul_(DF[t], p_f)
            dc = dc_prev
            if R is not None:
                dg = DIFO[t] @ R
            dh = torch.addmm(DHS[t - 1], D[t], W) if t > 0 else D[t] @ W
            if passed is not None:
                dh.add_(passed[0])
                dc.add_(passed[1])
                if R is not None:
                    dg.add_(passed[2])
        saved["dp"] = (dp_if, dp_o)
        return dxp, ((dh, dc) if R is None else (dh, dc, dg))

    def weight_grads(self, saved, dxp):
        (dp_if, dp_o), grads = saved["dp"], {}
        if dp_if is not None:
            names = [name for name in ("peephole_i", "peephole_f") if name in self.recurrent]
            grads.update(zip(names, dp_if.sum(0).unbind(0)))
        if dp_o is not None:
            grads["peephole_o"] = dp_o.sum(0)
        grads["weight_h"] = _weight_grad(dxp, 0, dxp.shape[2], saved["h0"], saved["hs"])
        if self.weight_gates is not None:
            grads["weight_gates"] = _weight_grad(dxp, 0, 3 * self.hidden_size, saved["gs"][: dxp.shape[0]])
        return tuple(grads[name] for name in self.recurrent)


class GRUCell(Cell):
    """GRU, Cho et al. 2014, in the paper's form:

        r  = σ(W_r [x; h] + b_r),   u = σ(W_u [x; h] + b_u)
        h̃  = tanh(W x + U (r ⊙ h) + b)          reset applied to h BEFORE the matmul
        h' = u ⊙ h + (1 - u) ⊙ h̃

    torch.nn.GRU applies the reset after the matmul, r ⊙ (U h + b_hn), and calls u "z"; this
    cell follows the paper. Rows of ``weight_x``/``bias``: (r, u, h̃); ``weight_h``: (r, u);
    ``weight_hc``: U. Parameters: 3H·(I + H + 1).
    """

    recurrent = ("weight_h", "weight_hc")

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__(input_size, hidden_size, 3)
        self.weight_h = self._square(2)
        self.weight_hc = self._square()
        self.reset_parameters()

    def step(self, xp, state, gates=None):
        h, H = state[0], self.hidden_size
        xp_ru, xp_c = xp.split([2 * H, H], 1)
        r, u = torch.sigmoid(torch.addmm(xp_ru, h, self.weight_h.t())).chunk(2, 1)
        candidate = torch.tanh(torch.addmm(xp_c, r * h, self.weight_hc.t()))
        if gates is not None:
            gates.update(r=r, u=u, candidate=candidate)
        return (torch.lerp(candidate, h, u),)  # h̃ + u ⊙ (h - h̃)

    def run_sequence(self, acts, state, weights, mask, min_length):
        WT, UT = (w.t().contiguous() for w in weights)
        T, B, _ = acts.shape
        H = self.hidden_size  # acts: (r, u, h̃)
        rh = acts.new_empty(T, B, H)  # r ⊙ h, what U is applied to
        hs, h = acts.new_empty(T, B, H), state[0]
        RU, R, U, CAND = (_cols(acts, slice(a * H, b * H)) for a, b in ((0, 2), (0, 1), (1, 2), (2, 3)))
        RH, HS, M = _steps(rh), _steps(hs), _steps(mask)
        for t in range(T):
            RU[t].addmm_(h, WT).sigmoid_()
            torch.mul(R[t], h, out=RH[t])
            CAND[t].addmm_(RH[t], UT).tanh_()
            h_new = torch.lerp(CAND[t], h, U[t], out=HS[t])
            if M is not None and t >= min_length:
                torch.where(M[t], h_new, h, out=h_new)
            h = h_new
        return hs, (), dict(h0=state[0], hs=hs, acts=acts, rh=rh, mask=mask, min_length=min_length)

    def backprop_sequence(self, saved, dhs, drest, weights):
        W, U_ = weights
        H = self.hidden_size
        acts, min_length = saved["acts"], saved["min_length"]
        dxp = torch.empty_like(acts)
        RU, R, U, CAND = (_cols(acts, slice(a * H, b * H)) for a, b in ((0, 2), (0, 1), (1, 2), (2, 3)))
        DRU, DR, DU, DC = (_cols(dxp, slice(a * H, b * H)) for a, b in ((0, 2), (0, 1), (1, 2), (2, 3)))
        HPREV = [saved["h0"], *_steps(saved["hs"])[:-1]]  # h before each step
        DHS, M = _steps(dhs), _steps(saved["mask"])
        dh = DHS[-1]
        for t in reversed(range(len(DHS))):
            h, cand = HPREV[t], CAND[t]
            passed = None
            if M is not None and t >= min_length:
                dh, passed = _masked_grad(M[t], dh)
            dh_prev = dh * U[t]  # h' = h̃ + u ⊙ (h - h̃)
            torch.mul(dh, h - cand, out=DU[t])
            _tanh_backward_into(dh - dh_prev, cand, grad_input=DC[t])
            drh = DC[t] @ U_
            torch.mul(drh, h, out=DR[t])
            _sigmoid_backward_into(DRU[t], RU[t], grad_input=DRU[t])
            dh_prev.addcmul_(drh, R[t])
            if t > 0:
                dh_prev.add_(DHS[t - 1])
            dh = dh_prev.addmm_(DRU[t], W)
            if passed is not None:
                dh.add_(passed)
        return dxp, (dh,)

    def weight_grads(self, saved, dxp):
        H = self.hidden_size
        return _weight_grad(dxp, 0, 2 * H, saved["h0"], saved["hs"]), _weight_grad(dxp, 2 * H, 3 * H, saved["rh"])


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
        self.kind = kind
        self.linear_projection = kind == "mut3"  # MUT1 and MUT2 add bare x terms, MUT1 a σ
        if kind == "mut1":
            self.weight_x = self._square(2)
            self.weight_hr = self._square()
            self.recurrent = ("weight_hr", "weight_hh")
        elif kind == "mut2":
            self.weight_x = self._square(2)
            self.weight_h = self._square(2)
            self.recurrent = ("weight_h", "weight_hh")
        elif kind == "mut3":
            self.weight_hz = self._square()
            self.weight_hr = self._square()
            self.recurrent = ("weight_hz", "weight_hr", "weight_hh")
        else:
            raise ValueError(f"unknown MUT cell {kind!r}")
        self.weight_hh = self._square()
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

    def step(self, xp, state, gates=None):
        h = state[0]
        if self.kind == "mut1":
            z, xp_r, xp_c = xp.split(self.hidden_size, 1)
            r = torch.sigmoid(torch.addmm(xp_r, h, self.weight_hr.t()))
        elif self.kind == "mut2":
            xp_zr, xp_c = xp.split([2 * self.hidden_size, self.hidden_size], 1)
            z, r = torch.sigmoid(torch.addmm(xp_zr, h, self.weight_h.t())).chunk(2, 1)
        else:
            xp_z, xp_r, xp_c = xp.split(self.hidden_size, 1)
            z = torch.sigmoid(torch.addmm(xp_z, torch.tanh(h), self.weight_hz.t()))
            r = torch.sigmoid(torch.addmm(xp_r, h, self.weight_hr.t()))
        candidate = torch.tanh(torch.addmm(xp_c, r * h, self.weight_hh.t()))
        if gates is not None:
            gates.update(z=z, r=r, candidate=candidate)
        return (torch.lerp(h, candidate, z),)  # h + z ⊙ (h̃ - h)

    def run_sequence(self, acts, state, weights, mask, min_length):
        T, B, _ = acts.shape
        H, kind = self.hidden_size, self.kind
        WT = [w.t().contiguous() for w in weights]  # the last is W_hhᵀ
        # acts: (z, r, h̃); MUT1's z depends on x alone and was taken in project
        rh = acts.new_empty(T, B, H)  # r ⊙ h, what W_hh is applied to
        tanh_h = acts.new_empty(T, B, H) if kind == "mut3" else None  # what W_hz is applied to
        hs, h = acts.new_empty(T, B, H), state[0]
        Z, R, ZR, CAND = (_cols(acts, slice(a * H, b * H)) for a, b in ((0, 1), (1, 2), (0, 2), (2, 3)))
        RH, TH, HS, M = _steps(rh), _steps(tanh_h), _steps(hs), _steps(mask)
        for t in range(T):
            if kind == "mut1":
                R[t].addmm_(h, WT[0]).sigmoid_()
            elif kind == "mut2":
                ZR[t].addmm_(h, WT[0]).sigmoid_()
            else:
                Z[t].addmm_(torch.tanh(h, out=TH[t]), WT[0]).sigmoid_()
                R[t].addmm_(h, WT[1]).sigmoid_()
            torch.mul(R[t], h, out=RH[t])
            CAND[t].addmm_(RH[t], WT[-1]).tanh_()
            h_new = torch.lerp(h, CAND[t], Z[t], out=HS[t])
            if M is not None and t >= min_length:
                torch.where(M[t], h_new, h, out=h_new)
            h = h_new
        saved = dict(h0=state[0], hs=hs, acts=acts, rh=rh, tanh_h=tanh_h, mask=mask, min_length=min_length)
        return hs, (), saved

    def backprop_sequence(self, saved, dhs, drest, weights):
        H, kind, W_hh = self.hidden_size, self.kind, weights[-1]
        acts, dxp, min_length = saved["acts"], torch.empty_like(saved["acts"]), saved["min_length"]
        Z, R, ZR, CAND, DZ, DR, DZR, DC = (_cols(x, slice(a * H, b * H)) for x, a, b in (
            (acts, 0, 1), (acts, 1, 2), (acts, 0, 2), (acts, 2, 3), (dxp, 0, 1), (dxp, 1, 2), (dxp, 0, 2), (dxp, 2, 3)))
        HPREV = [saved["h0"], *_steps(saved["hs"])[:-1]]  # h before each step
        DHS, TH, M = _steps(dhs), _steps(saved["tanh_h"]), _steps(saved["mask"])
        dh = DHS[-1]
        for t in reversed(range(len(DHS))):
            h, cand = HPREV[t], CAND[t]
            passed = None
            if M is not None and t >= min_length:
                dh, passed = _masked_grad(M[t], dh)
            dhz = dh * Z[t]  # h' = h + z ⊙ (h̃ - h)
            torch.mul(dh, cand - h, out=DZ[t])  # MUT1: z is xp's own column, dz its gradient
            _tanh_backward_into(dhz, cand, grad_input=DC[t])
            drh = DC[t] @ W_hh
            torch.mul(drh, h, out=DR[t])
            dh_prev = torch.sub(dh, dhz).addcmul_(drh, R[t])
            if t > 0:
                dh_prev.add_(DHS[t - 1])
            if kind == "mut1":
                _sigmoid_backward_into(DR[t], R[t], grad_input=DR[t])
                dh_prev.addmm_(DR[t], weights[0])
            elif kind == "mut2":
                _sigmoid_backward_into(DZR[t], ZR[t], grad_input=DZR[t])
                dh_prev.addmm_(DZR[t], weights[0])
            else:
                _sigmoid_backward_into(DZR[t], ZR[t], grad_input=DZR[t])
                dh_prev.add_(_tanh_backward(DZ[t] @ weights[0], TH[t]))
                dh_prev.addmm_(DR[t], weights[1])
            if passed is not None:
                dh_prev.add_(passed)
            dh = dh_prev
        return dxp, (dh,)

    def weight_grads(self, saved, dxp):
        H, h0, hs = self.hidden_size, saved["h0"], saved["hs"]
        if self.kind == "mut1":
            dW = (_weight_grad(dxp, H, 2 * H, h0, hs),)
        elif self.kind == "mut2":
            dW = (_weight_grad(dxp, 0, 2 * H, h0, hs),)
        else:
            dW = (_weight_grad(dxp, 0, H, saved["tanh_h"]), _weight_grad(dxp, H, 2 * H, h0, hs))
        return dW + (_weight_grad(dxp, 2 * H, 3 * H, saved["rh"]),)


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

    project = Cell.project
    init_state = Cell.init_state

    def step(self, xp, state, gates=None):
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


class _Sequence(torch.autograd.Function):
    """One layer and direction over all T steps as one autograd node: the input projection,
    ``cell.run_sequence`` without autograd, and, backward, ``cell.backprop_sequence``
    (backpropagation through time by hand) and ``cell.weight_grads``, instead of autograd's
    ~10-20 nodes per step.

    Inputs: with ``linear``, x (B, T, I), weight_x and bias (the projection is done here, into
    the buffer the steps then update in place); else xp (T, B, G) from ``cell.project``. Then
    the initial state's entries and the cell's ``recurrent`` weights. Outputs: hs (T, B, H)
    and the final state's entries after h (its h is hs[-1]). Runs in the input's dtype
    (autocast off inside, the rest cast to it); any device. Not differentiable twice: under
    create_graph its gradients come out marked (``_Once``), and differentiating them raises."""

    @staticmethod
    def forward(ctx, cell, mask, min_length, n_state, linear, x, *tensors):
        dtype = x.dtype
        n_in = 3 if linear else 1
        tensors = tuple(t.to(dtype) for t in tensors)
        state, weights = tensors[n_in - 1 : n_in - 1 + n_state], tensors[n_in - 1 + n_state :]
        with torch.autocast(x.device.type, enabled=False):
            if linear:
                weight_x, bias = tensors[:2]
                x2d = x.transpose(0, 1).reshape(x.shape[0] * x.shape[1], -1)  # rows (t, b)
                acts = torch.addmm(bias, x2d, weight_x.t()).view(x.shape[1], x.shape[0], -1)
                inputs = (x2d, weight_x)
            else:
                acts, inputs = x.clone(memory_format=torch.contiguous_format), ()
            hs, rest, saved = cell.run_sequence(acts, state, weights, mask, min_length)
        ctx.cell, ctx.saved, ctx.n_in, ctx.n_inputs = cell, saved, n_in, len(inputs)
        # hs is an output: only save_for_backward may keep it (on ctx it would make a reference
        # cycle through its grad_fn); the weights get the version check (no optimizer step
        # before backward)
        del saved["hs"]
        ctx.save_for_backward(*inputs, hs, *weights)
        return (hs, *rest)

    @staticmethod
    def backward(ctx, dhs, *drest):
        n_in, needs = ctx.n_in, ctx.needs_input_grad[5:]
        inputs, (hs, *weights) = ctx.saved_tensors[: ctx.n_inputs], ctx.saved_tensors[ctx.n_inputs :]
        saved = dict(ctx.saved, hs=hs)
        with torch.no_grad(), torch.autocast(dhs.device.type, enabled=False):
            dxp, dstate = ctx.cell.backprop_sequence(saved, dhs, drest, tuple(weights))
            needed = needs[n_in + len(dstate) :]
            dweights = ctx.cell.weight_grads(saved, dxp) if any(needed) else (None,) * len(weights)
            if n_in == 3:  # the projection's: xp = x Wxᵀ + b
                (x2d, weight_x), (T, B, G) = inputs, dxp.shape
                d2 = dxp.view(T * B, G)
                dx = (d2 @ weight_x).view(T, B, -1).transpose(0, 1) if needs[0] else None
                dproj = (dx, d2.t() @ x2d if needs[1] else None, d2.sum(0) if needs[2] else None)
            else:
                dproj = (dxp,)
        grads = (*dproj, *dstate, *dweights)
        if torch.is_grad_enabled():  # create_graph: these depend on the saved weights and gates
            present = [g for g in grads if g is not None]
            marked = iter(_Once.apply(*(g.detach().requires_grad_() for g in present)))
            grads = tuple(None if g is None else next(marked) for g in grads)
        return (None, None, None, None, None, *grads)


class _Once(torch.autograd.Function):
    """Passes _Sequence's gradients on under create_graph; differentiating them raises (what
    torch's @once_differentiable does, which cannot see that the gradients depend on saved
    weights when the incoming gradients are constants)."""

    @staticmethod
    def forward(ctx, *grads):
        return tuple(g.clone() for g in grads)

    @staticmethod
    def backward(ctx, *grads):
        raise RuntimeError(
            "trying to differentiate twice a function that was marked with @once_differentiable: the hand-written "
            "backward of cells.Recurrent; set Recurrent.hand_backward = False for a double backward"
        )


def _unroll(
    cell, x: Tensor, mask: Optional[Tensor], min_length: int, state, hand_backward: bool = True
) -> tuple[Tensor, tuple, list[Tensor]]:
    """Run ``cell`` over x (B, T, I): outputs (B, T, H), final state, [h_t for t = 1..T] (empty
    with ``hand_backward``). ``mask`` (T, B, 1) bool is True where t < length; steps below
    ``min_length`` need no mask. ``hand_backward``: all steps as one ``_Sequence`` node; else
    plain autograd through ``cell.step`` (h_t on the autograd path, differentiable twice)."""
    B, T = x.shape[:2]
    if state is None:
        state = cell.init_state(B, x)
    if hand_backward and isinstance(cell, Cell):
        weights = [getattr(cell, name) for name in cell.recurrent]
        if cell.linear_projection:
            inputs = (True, x, cell.weight_x, cell.bias)
        else:
            inputs = (False, cell.project(x.transpose(0, 1)))
        hs, *rest = _Sequence.apply(cell, mask, min_length, len(state), *inputs, *state, *weights)
        outputs = hs.transpose(0, 1)
        if mask is not None:
            outputs = outputs * mask.transpose(0, 1)
        return outputs.contiguous(), (hs[-1], *rest), []
    xp = cell.project(x.transpose(0, 1))  # (T, B, G): one matmul for every step's input terms
    hs = []
    for t, xp_t in enumerate(xp.unbind(0)):
        new = cell.step(xp_t, state)
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

    hand_backward = True  # False: plain autograd through the steps (allows a double backward)

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
            hand = self.hand_backward and not record_states  # record_states: h_t on the autograd path
            out, fin, hs = _unroll(cells[0], x, mask, min_length, None if state is None else state[layer], hand)
            final_states.append(fin)
            outs, last = [out], [fin[0]]
            if self.bidirectional:
                out_b, fin_b, _ = _unroll(cells[1], _reverse_within(x, lengths), mask, min_length, None, hand)
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
