"""How large a trained recurrent language model's state grows while it reads a test stream with
its state carried from chunk to chunk, as the evaluation reads it (16 rows, 100 characters a
chunk): the largest |h| and |c| after 100 and 1,000 characters, per seed.

Run in the profile's folder after its models have trained, e.g.
    cd profiles/paper && python ../../docs/cell_state.py xml-large-lstm-peephole xml-large-lstm-noaf
"""

import sys
from pathlib import Path

import numpy as np
import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from lightning_modules import MODELS  # noqa: E402

ROWS, LENGTH, AFTER = 16, 100, (100, 1000)


def flatten(state) -> list[torch.Tensor]:
    if isinstance(state, (tuple, list)):
        return [t for s in state for t in flatten(s)]
    return [state]


@torch.no_grad()
def growth(model, ids: np.ndarray, after=AFTER, rows: int = ROWS, length: int = LENGTH) -> dict[int, tuple[float, float | None]]:
    """{characters read: (largest |h|, largest |c| or None for a cell without one)} while ``model``
    reads ``ids`` as ``rows`` contiguous rows, ``length`` characters a call, its state carried."""
    model.eval()
    n = (len(ids) - 1) // rows
    x = torch.from_numpy(ids[: n * rows].astype(np.int64).reshape(rows, n))
    state, seen = None, {}
    for start in range(0, min(n, max(after)), length):
        _, state = model(x[:, start : start + length], state)
        if start + length in after:
            h, *rest = flatten(state)
            seen[start + length] = (float(h.abs().max()), float(rest[0].abs().max()) if rest else None)
    return seen


def main(experiments: list[str]) -> None:
    params = yaml.safe_load(Path("params.yaml").read_text())["experiments"]
    for name in experiments:
        exp = params[name]
        ids = np.load(f"data/raw/{exp['dataset']}/test.npz")["ids"]
        for seed in exp["seeds"]:
            checkpoint = f"models/{name}/seed-{seed}/model.ckpt"
            model = MODELS[exp["model"]].cls_for("language-model").load_from_checkpoint(checkpoint, map_location="cpu")
            seen = growth(model, ids)
            print(f"{name} seed {seed}: " + "; ".join(
                f"after {k} characters: max |h| {h:.3g}" + ("" if c is None else f", max |c| {c:.3g}") for k, (h, c) in seen.items()
            ))


if __name__ == "__main__":
    main(sys.argv[1:])
