"""docs/cell_state.py, the measurement behind docs/plateaus.md's NOAF paragraph: a cell whose
input and forget gates are open and whose block input is 1 counts (c grows one a step); the
peephole LSTM's output tanh keeps h within ±1, NOAF's h = o ⊙ c grows with c."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from lightning_modules import MODELS

SPEC = importlib.util.spec_from_file_location("cell_state", Path(__file__).resolve().parents[1] / "docs" / "cell_state.py")
cell_state = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(cell_state)


def counter(cell_name: str):
    """A language model whose every LSTM unit adds 1 to its cell state each step: the recurrent and
    input weights 0, the gates' biases 20 (σ ≈ 1) and the block input's 20 (tanh ≈ 1)."""
    torch.manual_seed(0)
    model = MODELS[cell_name].cls_for("language-model")(cell=cell_name, vocab_size=5, hidden_size=8, embedding_dim=4)
    cell = next(m for m in model.modules() if hasattr(m, "gate_slices"))
    with torch.no_grad():
        for p in cell.parameters():
            p.zero_()
        cell.bias.fill_(20.0)
    return model


@pytest.mark.parametrize("cell_name, h_grows", [("lstm-peephole", False), ("lstm-noaf", True)])
def test_a_counting_cell_state_reaches_h_only_without_the_output_activation(cell_name, h_grows):
    ids = np.random.default_rng(0).integers(0, 5, size=2 * 300 + 1)
    seen = cell_state.growth(counter(cell_name), ids, after=(10, 300), rows=2, length=10)
    assert set(seen) == {10, 300}
    for steps, (h, c) in seen.items():
        assert c == pytest.approx(steps, rel=1e-3)  # one a step
        assert h == (pytest.approx(steps, rel=1e-3) if h_grows else pytest.approx(1.0, abs=1e-3))
