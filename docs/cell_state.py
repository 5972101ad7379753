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


def main(experiments: list[str]) -> None:
    params = yaml.safe_load(Path("params.yaml").read_text())["experiments"]
    for name in experiments:
        exp = params[name]
        ids = np.load(f"data/raw/{exp['dataset']}/test.npz")["ids"]
        n = (len(ids) - 1) // ROWS
        x = torch.from_numpy(ids[: n * ROWS].astype(np.int64).reshape(ROWS, n))
        for seed in exp["seeds"]:
            checkpoint = f"models/{name}/seed-{seed}/model.ckpt"
            model = MODELS[exp["model"]].cls_for("language-model").load_from_checkpoint(checkpoint, map_location="cpu").eval()
            state, seen = None, []
            with torch.no_grad():
                for start in range(0, min(n, max(AFTER)), LENGTH):
                    _, state = model(x[:, start : start + LENGTH], state)
                    if start + LENGTH in AFTER:
                        h, *rest = flatten(state)
                        c = f", max |c| {float(rest[0].abs().max()):.3g}" if rest else ""
                        seen.append(f"after {start + LENGTH} characters: max |h| {float(h.abs().max()):.3g}{c}")
            print(f"{name} seed {seed}: " + "; ".join(seen))


if __name__ == "__main__":
    main(sys.argv[1:])
