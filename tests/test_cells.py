"""The recurrent cells against their equations (REFERENCE.md "Recurrent cells"), torch's layers,
and the Recurrent wrapper's contracts: padding, direction, stacking, state passing, gradients."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from lightning_modules.cells import CELL_NAMES, LSTM_FAMILY, MUT_CELLS, MUTCell, Recurrent, _Sequence, make_cell

B, T, I, H = 3, 6, 4, 5
LENGTHS = torch.tensor([6, 3, 5])
FUSED = [("rnn", True), ("lstm", True)]
ALL = [(cell, False) for cell in CELL_NAMES] + FUSED
σ = torch.sigmoid


def ids(case):
    return f"{case[0]}{'-fused' if case[1] else ''}"


def rec(cell, fused=False, input_size=I, **kwargs) -> Recurrent:
    torch.manual_seed(0)
    return Recurrent(cell, input_size, H, fused=fused, **kwargs).double().eval()


def data(batch=B, steps=T, size=I, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, steps, size, generator=g, dtype=torch.double)


def n_params(module) -> int:
    return sum(p.numel() for p in module.parameters())


def per_direction(cell: str, i: int, h: int) -> int:
    """Parameters of one layer and direction, from the cell's equations."""
    square = h * (i + h + 1)  # one gate: W [x; h] + b
    return {
        "rnn": square,
        "lstm": 4 * square,  # z, i, f, o
        "lstm-peephole": 4 * square + 3 * h,  # + p_i, p_f, p_o
        "lstm-nig": 3 * square + 2 * h,  # no i, no p_i
        "lstm-nfg": 3 * square + 2 * h,  # no f, no p_f
        "lstm-nog": 3 * square + 2 * h,  # no o, no p_o
        "lstm-niaf": 4 * square + 3 * h,
        "lstm-noaf": 4 * square + 3 * h,
        "lstm-np": 4 * square,
        "lstm-cifg": 3 * square + 2 * h,  # f = 1 - i: no W_f, b_f, p_f
        "lstm-fgr": 4 * square + 3 * h + 9 * h * h,  # + R: (i, f, o) <- [i; f; o]_prev
        "gru": 3 * square,  # r, u, h̃
        # the input is projected to H first (i = h): W_xz, W_xr, W_hr, W_hh; b_z, b_r, b_h
        "mut1": 4 * h * h + 3 * h,
        "mut2": 5 * h * h + 3 * h,  # W_xz, W_hz, W_hr, W_hh, W_xh
        "mut3": 6 * h * h + 3 * h,  # W_xz, W_hz, W_xr, W_hr, W_hh, W_xh
    }[cell]


@pytest.mark.parametrize("cell", CELL_NAMES)
def test_parameter_count_follows_the_equations(cell):
    m = rec(cell, num_layers=2, bidirectional=True)
    expected = 0
    for width in (I, 2 * H):  # layer 2 reads both directions of layer 1
        if cell in MUT_CELLS and width != H:
            expected += width * H + H  # the Linear projection to H, shared by both directions
        expected += 2 * per_direction(cell, width, H)
    assert n_params(m) == expected
    assert n_params(rec(cell, input_size=H)) == per_direction(cell, H, H)  # no projection needed


def test_fused_parameter_count_is_torchs_two_biases():
    assert n_params(rec("rnn", fused=True)) == H * (I + H + 2)
    assert n_params(rec("lstm", fused=True, num_layers=2)) == 4 * H * (I + H + 2) + 4 * H * (H + H + 2)


def test_names():
    assert len(CELL_NAMES) == 15 and len(set(CELL_NAMES)) == 15
    with_forget_gate = [c for c in CELL_NAMES if c.startswith("lstm") and c not in ("lstm-nfg", "lstm-cifg")]
    assert LSTM_FAMILY == with_forget_gate
    with pytest.raises(ValueError, match="unknown cell"):
        Recurrent("lstm-xyz", I, H)


@pytest.mark.parametrize("case", ALL, ids=ids)
def test_shapes_and_gradients_reach_the_first_step(case):
    cell, fused = case
    m = rec(cell, fused, num_layers=2, bidirectional=True)
    x = data().requires_grad_()
    out = m(x, LENGTHS, record_states=True)
    assert out.outputs.shape == (B, T, 2 * H) and out.last.shape == (B, 2 * H)
    assert len(out.state) == 2 and all(s[0].shape == (B, H) for s in out.state)
    assert len(out.states) == T and all(h.shape == (B, H) for h in out.states)
    h1 = out.states[0]
    h1.retain_grad()
    out.states[-1][0].pow(2).sum().backward()  # C_T of the first sequence (length T)
    assert h1.grad[0].abs().sum() > 0  # dC_T/dh_1
    assert x.grad[0, 0].abs().sum() > 0  # dC_T/dx_1


@pytest.mark.parametrize("case", ALL, ids=ids)
def test_recorded_states_are_the_outputs(case):
    cell, fused = case
    m = rec(cell, fused, num_layers=2)
    plain, recorded = m(data()), m(data(), record_states=True)
    torch.testing.assert_close(recorded.outputs, plain.outputs)
    torch.testing.assert_close(torch.stack(recorded.states, 1), plain.outputs)


def grads(m, out):
    m.zero_grad()
    (out.outputs.pow(2).sum() + out.last.sum()).backward()
    return {n: p.grad.clone() for n, p in m.named_parameters()}


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_fused_unrolled_path_uses_the_same_weights(cell):
    """record_states unrolls torch's own weight tensors: same outputs and same gradients."""
    m = rec(cell, True, num_layers=2, bidirectional=True)
    packed, unrolled = m(data(), LENGTHS), m(data(), LENGTHS, record_states=True)
    torch.testing.assert_close(unrolled.outputs, packed.outputs)
    torch.testing.assert_close(unrolled.last, packed.last)
    for a, b in zip(unrolled.state, packed.state):
        torch.testing.assert_close(a, b)
    g1, g2 = grads(m, packed), grads(m, m(data(), LENGTHS, record_states=True))
    for name in g1:
        torch.testing.assert_close(g1[name], g2[name])


@pytest.mark.parametrize("cell", CELL_NAMES)
def test_layer_equals_a_plain_loop_of_steps_with_the_same_gradients(cell):
    """Recurrent runs a layer as one _Sequence node with a hand-written backward; its outputs and
    gradients must equal autograd's through a plain loop of cell.step."""
    m = rec(cell, input_size=H)
    x = data(size=H)
    fast = m(x, LENGTHS)
    g_fast = grads(m, fast)
    c = m.layers[0][0]
    state, hs = c.init_state(B, x), []
    for t in range(T):
        new = c.step(c.project(x[:, t]), state)
        valid = (t < LENGTHS)[:, None]
        state = tuple(torch.where(valid, a, b) for a, b in zip(new, state))
        hs.append(torch.where(valid, state[0], 0.0))
    slow = torch.stack(hs, 1)
    torch.testing.assert_close(fast.outputs, slow)
    torch.testing.assert_close(fast.last, state[0])
    m.zero_grad()
    (slow.pow(2).sum() + state[0].sum()).backward()
    for name, p in m.named_parameters():
        torch.testing.assert_close(g_fast[name], p.grad)


def test_double_backward_needs_plain_autograd():
    """A gradient penalty differentiates dD/dx again: the hand-written backward refuses, the
    plain one gives the same penalty gradient as a finite difference."""
    m = rec("lstm-peephole")
    x = data().requires_grad_()

    def penalty():
        (dx,) = torch.autograd.grad(m(x).last.sum(), x, create_graph=True)
        return dx.pow(2).sum()

    with pytest.raises(RuntimeError, match="once_differentiable"):
        penalty().backward()
    m.hand_backward = False
    m.zero_grad()
    penalty().backward()
    p, eps = m.layers[0][0].weight_h, 1e-6
    analytic = p.grad[0, 0].item()
    with torch.no_grad():
        p[0, 0] += eps
    m.hand_backward = True
    plus = penalty().item()
    with torch.no_grad():
        p[0, 0] -= 2 * eps
    minus = penalty().item()
    assert analytic == pytest.approx((plus - minus) / (2 * eps), rel=1e-5)


def sequence_inputs(cell: str, lengths, linear: bool):
    """A cell's _Sequence inputs, float64 and tiny, all leaves requiring grad: x (B, T, I),
    weight_x and bias (``linear``: the projection inside) or xp (T, B, G); a random nonzero
    initial state; the recurrent weights. Plus mask and min_length for ``lengths``."""
    torch.manual_seed(2)
    c = make_cell(cell, H, H).double()
    steps, batch = 4, 3
    x = torch.randn(batch, steps, H, dtype=torch.double)
    if linear:
        proj = [x, c.weight_x.detach().clone(), c.bias.detach().clone()]
    else:
        proj = [c.project(x.transpose(0, 1)).detach()]
    state = [(torch.rand(s.shape, dtype=torch.double) - 0.5) for s in c.init_state(batch, x)]
    if cell == "lstm-fgr":  # [i; f; o] of a previous step
        state[2] = torch.rand(state[2].shape, dtype=torch.double)
    weights = [getattr(c, name).detach().clone() for name in c.recurrent]
    mask, min_length = None, steps
    if lengths is not None:
        mask = (torch.arange(steps)[:, None] < torch.tensor(lengths))[:, :, None]
        min_length = min(lengths)
    return c, mask, min_length, [t.requires_grad_() for t in (*proj, *state, *weights)]


@pytest.mark.parametrize("linear", [True, False], ids=["x", "xp"])
@pytest.mark.parametrize("lengths", [None, [4, 2, 3]], ids=["full", "masked"])
@pytest.mark.parametrize("cell", CELL_NAMES)
def test_hand_backward_passes_gradcheck(cell, lengths, linear):
    """The hand-written backpropagation through time of every cell and LSTM variant (gates on
    and off, peepholes, coupled, activations off, gate recurrence), against finite differences:
    gradients of hs and of the final state with respect to the input (x and the projection's
    weights, or xp), the initial state and the recurrent weights."""
    if linear and not make_cell(cell, H, H).linear_projection:
        pytest.skip("MUT1 and MUT2 project with their own bare x terms: only the xp path")
    c, mask, min_length, inputs = sequence_inputs(cell, lengths, linear)
    n_state = len(c.init_state(1, inputs[0]))
    assert torch.autograd.gradcheck(lambda *a: _Sequence.apply(c, mask, min_length, n_state, linear, *a), inputs)


@pytest.mark.parametrize("cell", CELL_NAMES)
def test_hand_backward_equals_plain_autograd(cell):
    """Two layers, both directions, padding: the same outputs and gradients (parameters and
    input) with and without the hand-written backward; and with a passed state, its gradient."""
    m = rec(cell, num_layers=2, bidirectional=True)

    def run():
        x = data().requires_grad_()
        out = m(x, LENGTHS)
        g = grads(m, out)
        return out, g, x.grad

    a, ga, xa = run()
    m.hand_backward = False
    b, gb, xb = run()
    torch.testing.assert_close(a.outputs, b.outputs)
    torch.testing.assert_close(a.last, b.last)
    for name in ga:
        torch.testing.assert_close(ga[name], gb[name], msg=name)
    torch.testing.assert_close(xa, xb)

    uni = rec(cell, num_layers=2)
    start = [tuple(s.detach().requires_grad_() for s in layer) for layer in uni(data(seed=4)).state]

    def with_state():
        for layer in start:
            for s in layer:
                s.grad = None
        out = uni(data(), LENGTHS, state=start)
        loss = out.outputs.pow(2).sum() + sum((s * (k + 1)).sum() for layer in out.state for k, s in enumerate(layer))
        loss.backward()
        return [s.grad.clone() for layer in start for s in layer]

    hand = with_state()
    uni.hand_backward = False
    for g_hand, g_plain in zip(hand, with_state()):
        torch.testing.assert_close(g_hand, g_plain)


def test_hand_backward_refuses_double_backward_only_through_itself():
    """create_graph through the hand-written backward works; only differentiating its
    gradients again raises."""
    m = rec("gru")
    x = data().requires_grad_()
    w = torch.ones(1, dtype=torch.double, requires_grad=True)
    dx, dw = torch.autograd.grad((m(x).outputs.sum() * w).pow(2), [x, w], create_graph=True)
    dw.sum().backward()  # 2·w·S², S = sum of the outputs: first-order through the layer
    assert x.grad.abs().sum() > 0
    with pytest.raises(RuntimeError, match="hand_backward = False"):
        dx.pow(2).sum().backward()


# --- One step of each cell against its equations, written out by hand --------------------------


def one_step(cell: str, input_size=I):
    """A cell (first layer, forward direction), an input x (B, I) and a random nonzero state."""
    c = rec(cell, input_size=input_size).layers[0][0]
    g = torch.Generator().manual_seed(3)
    x = torch.randn(B, input_size, generator=g, dtype=torch.double)
    state = tuple(torch.rand(s.shape, generator=g, dtype=torch.double) - 0.5 for s in c.init_state(B, x))
    return c, x, state


def lstm_reference(cell: str, c, x, h, cs, gates_prev=None) -> dict:
    """Greff et al. 2015's vanilla LSTM and its variants, gate by gate."""

    def pre(gate):
        rows = c.gate_slices[gate]
        return x @ c.weight_x[rows].T + h @ c.weight_h[rows].T + c.bias[rows]

    def peep(gate):
        p = getattr(c, f"peephole_{gate}")
        return p if p is not None else 0.0

    def fgr(k):  # R_k · [i; f; o]_prev
        return gates_prev @ c.weight_gates[k * H : (k + 1) * H].T if cell == "lstm-fgr" else 0.0

    one = torch.ones_like(cs)
    z = pre("z") if cell == "lstm-niaf" else torch.tanh(pre("z"))  # NIAF: g(x) = x
    i = one if cell == "lstm-nig" else σ(pre("i") + peep("i") * cs + fgr(0))
    if cell == "lstm-nfg":
        f = one
    elif cell == "lstm-cifg":
        f = 1 - i
    else:
        f = σ(pre("f") + peep("f") * cs + fgr(1))
    c_new = z * i + cs * f
    o = one if cell == "lstm-nog" else σ(pre("o") + peep("o") * c_new + fgr(2))  # sees the new c'
    h_new = (c_new if cell == "lstm-noaf" else torch.tanh(c_new)) * o
    return dict(z=z, i=i, f=f, o=o, c=c_new, h=h_new)


LSTM_CELLS = [c for c in CELL_NAMES if c.startswith("lstm")]


@pytest.mark.parametrize("cell", LSTM_CELLS)
def test_lstm_step_matches_the_equations(cell):
    c, x, state = one_step(cell)
    got = c.gates(x, state)
    want = lstm_reference(cell, c, x, state[0], state[1], state[2] if cell == "lstm-fgr" else None)
    for key in want:
        torch.testing.assert_close(got[key], want[key], msg=f"{cell}: {key}")
    new = c.step(c.project(x), state)
    torch.testing.assert_close(new[0], want["h"])
    torch.testing.assert_close(new[1], want["c"])
    if cell == "lstm-fgr":  # the state carries this step's gates for the next
        torch.testing.assert_close(new[2], torch.cat([want["i"], want["f"], want["o"]], 1))


def test_each_greff_variant_is_its_one_change():
    def step(cell):
        c, x, (h, cs) = one_step(cell)
        return c, c.gates(x, (h, cs)), cs

    c, g, cs = step("lstm-nig")
    assert torch.equal(g["i"], torch.ones_like(cs)) and "i" not in c.gate_slices
    torch.testing.assert_close(g["c"], g["z"] + g["f"] * cs)
    c, g, cs = step("lstm-nfg")
    assert torch.equal(g["f"], torch.ones_like(cs)) and "f" not in c.gate_slices
    torch.testing.assert_close(g["c"], cs + g["i"] * g["z"])
    c, g, cs = step("lstm-nog")
    assert torch.equal(g["o"], torch.ones_like(cs)) and "o" not in c.gate_slices
    torch.testing.assert_close(g["h"], torch.tanh(g["c"]))
    c, g, cs = step("lstm-cifg")
    assert "f" not in c.gate_slices
    torch.testing.assert_close(g["f"], 1 - g["i"])
    torch.testing.assert_close(g["c"], g["i"] * g["z"] + (1 - g["i"]) * cs)
    c, g, cs = step("lstm-noaf")
    torch.testing.assert_close(g["h"], g["c"] * g["o"])  # h(x) = x
    c, x, (h, cs) = one_step("lstm-niaf")
    rows = c.gate_slices["z"]
    torch.testing.assert_close(c.gates(x, (h, cs))["z"], x @ c.weight_x[rows].T + h @ c.weight_h[rows].T + c.bias[rows])


def test_peepholes():
    for cell in CELL_NAMES:
        peep = sum(p.numel() for n, p in rec(cell, num_layers=2, bidirectional=True).named_parameters() if "peephole" in n)
        n_gates = {"lstm-peephole": 3, "lstm-niaf": 3, "lstm-noaf": 3, "lstm-fgr": 3}
        n_gates.update({"lstm-nig": 2, "lstm-nfg": 2, "lstm-nog": 2, "lstm-cifg": 2})
        assert peep == 4 * H * n_gates.get(cell, 0), cell  # 2 layers x 2 directions
    c = rec("lstm-np").layers[0][0]
    assert c.peephole_i is None and c.peephole_f is None and c.peephole_o is None
    # the output peephole sees the new c': changing p_o changes h but not c'
    c, x, state = one_step("lstm-peephole")
    before = c.gates(x, state)
    with torch.no_grad():
        c.peephole_o.add_(1.0)
    after = c.gates(x, state)
    torch.testing.assert_close(after["c"], before["c"])
    torch.testing.assert_close(after["o"], σ(torch.logit(before["o"]) + after["c"]))


def test_rnn_step_matches_the_equation():
    c, x, (h,) = one_step("rnn")
    torch.testing.assert_close(c.gates(x, (h,))["h"], torch.tanh(x @ c.weight_x.T + h @ c.weight_h.T + c.bias))


def test_gru_step_is_chos_form_with_reset_before_the_matmul():
    c, x, (h,) = one_step("gru")
    Wr, Wu, W = c.weight_x.split(H)
    br, bu, b = c.bias.split(H)
    Ur, Uu = c.weight_h.split(H)
    U = c.weight_hc
    r = σ(x @ Wr.T + h @ Ur.T + br)
    u = σ(x @ Wu.T + h @ Uu.T + bu)
    candidate = torch.tanh(x @ W.T + (r * h) @ U.T + b)
    want = u * h + (1 - u) * candidate
    got = c.gates(x, (h,))
    torch.testing.assert_close(got["h"], want)
    torch.testing.assert_close(got["r"], r)
    torch.testing.assert_close(got["u"], u)
    # torch.nn.GRU's form, r ⊙ (U h), is a different function
    torch_form = u * h + (1 - u) * torch.tanh(x @ W.T + r * (h @ U.T) + b)
    assert not torch.allclose(got["h"], torch_form)


def test_mut_steps_match_jozefowicz_et_al():
    for cell in MUT_CELLS:
        c, x, (h,) = one_step(cell, input_size=H)
        bz, br, bh = c.bias.split(H)
        Whh = c.weight_hh
        if cell == "mut1":
            Wxz, Wxr = c.weight_x.split(H)
            z = σ(x @ Wxz.T + bz)
            r = σ(x @ Wxr.T + h @ c.weight_hr.T + br)
            want = torch.tanh((r * h) @ Whh.T + torch.tanh(x) + bh) * z + h * (1 - z)
        elif cell == "mut2":
            Wxz, Wxh = c.weight_x.split(H)
            Whz, Whr = c.weight_h.split(H)
            z = σ(x @ Wxz.T + h @ Whz.T + bz)
            r = σ(x + h @ Whr.T + br)
            want = torch.tanh((r * h) @ Whh.T + x @ Wxh.T + bh) * z + h * (1 - z)
        else:
            Wxz, Wxr, Wxh = c.weight_x.split(H)
            z = σ(x @ Wxz.T + torch.tanh(h) @ c.weight_hz.T + bz)
            r = σ(x @ Wxr.T + h @ c.weight_hr.T + br)
            want = torch.tanh((r * h) @ Whh.T + x @ Wxh.T + bh) * z + h * (1 - z)
        got = c.gates(x, (h,))
        torch.testing.assert_close(got["h"], want, msg=cell)
        torch.testing.assert_close(got["z"], z, msg=cell)
        torch.testing.assert_close(got["r"], r, msg=cell)


def test_mut_cells_project_the_input_to_the_hidden_size():
    m = rec("mut2", num_layers=2, bidirectional=True)
    assert isinstance(m.projections[0], nn.Linear) and m.projections[0].in_features == I
    assert isinstance(m.projections[1], nn.Linear) and m.projections[1].in_features == 2 * H
    assert isinstance(rec("mut2", input_size=H).projections[0], nn.Identity)
    with pytest.raises(ValueError, match="input size == hidden size"):
        MUTCell(I, H, "mut1")


# --- Against torch's layers ---------------------------------------------------------------------

# torch orders the LSTM gates (i, f, g, o), ours are (i, f, o, z)
TORCH_TO_OURS = torch.cat([torch.arange(0, 2 * H), torch.arange(3 * H, 4 * H), torch.arange(2 * H, 3 * H)])


@torch.no_grad()
def copy_torch_weights(ours: Recurrent, theirs: nn.RNNBase):
    lstm = isinstance(theirs, nn.LSTM)
    for layer, cells in enumerate(ours.layers):
        for d, c in enumerate(cells):
            sfx = f"_l{layer}" + ("_reverse" if d else "")
            w_ih, w_hh = getattr(theirs, "weight_ih" + sfx), getattr(theirs, "weight_hh" + sfx)
            bias = getattr(theirs, "bias_ih" + sfx) + getattr(theirs, "bias_hh" + sfx)  # torch keeps two biases
            order = TORCH_TO_OURS if lstm else slice(None)
            c.weight_x.copy_(w_ih[order])
            c.weight_h.copy_(w_hh[order])
            c.bias.copy_(bias[order])


def torch_run(theirs: nn.RNNBase, x, lengths):
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    out, final = theirs(packed)
    h_n = final[0] if isinstance(final, tuple) else final
    return pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])[0], torch.cat([h_n[-2], h_n[-1]], 1)


@pytest.mark.parametrize("cell,module", [("lstm-np", nn.LSTM), ("lstm", nn.LSTM), ("rnn", nn.RNN)])
def test_custom_cell_equals_torch_with_copied_weights(cell, module):
    torch.manual_seed(0)
    theirs = module(I, H, num_layers=2, bidirectional=True, batch_first=True)
    ours = Recurrent(cell, I, H, num_layers=2, bidirectional=True, fused=False)
    copy_torch_weights(ours, theirs)
    x = data().float()
    want_out, want_last = torch_run(theirs, x, LENGTHS)
    got = ours(x, LENGTHS)
    torch.testing.assert_close(got.outputs, want_out, atol=1e-5, rtol=0)
    torch.testing.assert_close(got.last, want_last, atol=1e-5, rtol=0)


@pytest.mark.parametrize("cell", ["lstm", "rnn"])
def test_fused_equals_unfused_with_copied_weights(cell):
    fused = Recurrent(cell, I, H, num_layers=2, bidirectional=True, fused=True)
    custom = Recurrent(cell, I, H, num_layers=2, bidirectional=True, fused=False)
    copy_torch_weights(custom, fused.torch_rnn)
    x = data().float()
    a, b = fused(x, LENGTHS), custom(x, LENGTHS)
    torch.testing.assert_close(a.outputs, b.outputs, atol=1e-5, rtol=0)
    torch.testing.assert_close(a.last, b.last, atol=1e-5, rtol=0)
    for sa, sb in zip(a.state, b.state):
        for ta, tb in zip(sa, sb):
            torch.testing.assert_close(ta, tb, atol=1e-5, rtol=0)


# --- Forget-gate bias ---------------------------------------------------------------------------


@pytest.mark.parametrize("forget_bias", [1.0, 0.0])
@pytest.mark.parametrize("cell", LSTM_FAMILY)
def test_forget_bias_is_the_initial_forget_gate_bias(cell, forget_bias):
    m = Recurrent(cell, I, H, num_layers=2, bidirectional=True, forget_bias=forget_bias, fused=False)
    for layer in m.layers:
        for c in layer:
            assert torch.equal(c.bias[c.gate_slices["f"]], torch.full((H,), forget_bias))
    # on a zero input and zero state, f = σ(b_f)
    c = m.layers[0][0]
    x = torch.zeros(2, I)
    torch.testing.assert_close(c.gates(x)["f"], torch.full((2, H), torch.sigmoid(torch.tensor(forget_bias)).item()))


@pytest.mark.parametrize("forget_bias", [1.0, 0.0])
def test_fused_lstm_forget_bias_is_in_one_of_torchs_biases(forget_bias):
    m = Recurrent("lstm", I, H, num_layers=2, bidirectional=True, forget_bias=forget_bias)
    for name, p in m.torch_rnn.named_parameters():
        if name.startswith("bias_ih"):
            assert torch.equal(p[H : 2 * H], torch.full((H,), forget_bias))
        elif name.startswith("bias_hh"):
            assert torch.equal(p[H : 2 * H], torch.zeros(H))


def test_cells_without_a_forget_gate_ignore_forget_bias():
    for cell in ["lstm-nfg", "lstm-cifg"]:
        c = Recurrent(cell, I, H, forget_bias=5.0).layers[0][0]
        assert "f" not in c.gate_slices and not (c.bias == 5.0).any()


# --- The wrapper: padding, directions, stacking, state ------------------------------------------


@pytest.mark.parametrize("case", ALL, ids=ids)
def test_padding_does_not_change_results(case):
    cell, fused = case
    m = rec(cell, fused, num_layers=2, bidirectional=True)
    x = data()  # the padding holds random numbers: they must not be read
    batch = m(x, LENGTHS)
    for b, length in enumerate(LENGTHS.tolist()):
        alone = m(x[b : b + 1, :length])
        torch.testing.assert_close(batch.outputs[b, :length], alone.outputs[0])
        torch.testing.assert_close(batch.last[b], alone.last[0])
        for s_batch, s_alone in zip(batch.state, alone.state):
            for t_batch, t_alone in zip(s_batch, s_alone):
                torch.testing.assert_close(t_batch[b], t_alone[0])
        assert torch.equal(batch.outputs[b, length:], torch.zeros_like(batch.outputs[b, length:]))


@pytest.mark.parametrize("case", ALL, ids=ids)
def test_backward_direction_reads_each_sequence_reversed(case):
    cell, fused = case
    bi, uni = rec(cell, fused, bidirectional=True), rec(cell, fused)
    with torch.no_grad():  # uni gets the backward direction's weights
        if fused:
            for name, p in uni.torch_rnn.named_parameters():
                p.copy_(getattr(bi.torch_rnn, name + "_reverse"))
        else:
            uni.layers[0][0].load_state_dict(bi.layers[0][1].state_dict())
            uni.projections.load_state_dict(bi.projections.state_dict())
    x = data()
    out = bi(x, LENGTHS)
    for b, length in enumerate(LENGTHS.tolist()):
        reversed_alone = uni(x[b : b + 1, :length].flip(1))
        torch.testing.assert_close(out.outputs[b, :length, H:], reversed_alone.outputs[0].flip(0))
        torch.testing.assert_close(out.last[b, H:], reversed_alone.last[0])  # its state after position 0


@pytest.mark.parametrize("record", [False, True])
@pytest.mark.parametrize("case", ALL, ids=ids)
def test_stepping_with_state_equals_one_call(case, record):
    cell, fused = case
    m = rec(cell, fused, num_layers=2)
    x = data()
    whole = m(x)
    state, outputs = None, []
    for t in range(T):
        out = m(x[:, t : t + 1], state=state, record_states=record)
        state = out.state
        outputs.append(out.outputs)
    torch.testing.assert_close(torch.cat(outputs, 1), whole.outputs)
    torch.testing.assert_close(out.last, whole.last)
    for s_step, s_whole in zip(state, whole.state):
        for a, b in zip(s_step, s_whole):
            torch.testing.assert_close(a, b)


@pytest.mark.parametrize("case", [("gru", False), ("lstm", True)], ids=ids)
def test_dropout_between_layers_not_after_the_last(case):
    cell, fused = case
    x = data()
    one = rec(cell, fused, dropout=0.5).train()
    torch.testing.assert_close(one(x).outputs, one.eval()(x).outputs)
    two = rec(cell, fused, num_layers=2, dropout=0.5).train()
    assert not torch.allclose(two(x).outputs, two.eval()(x).outputs)


def test_errors_name_what_to_fix():
    with pytest.raises(ValueError, match="unidirectional"):
        rec("gru", bidirectional=True)(data(), state=[(torch.zeros(B, H),)])
    with pytest.raises(ValueError, match="lengths"):
        rec("gru")(data(), torch.tensor([7, 1, 1]))
    with pytest.raises(ValueError, match="dropout"):
        Recurrent("gru", I, H, dropout=1.0)
