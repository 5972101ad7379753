"""Training speed of the custom recurrent cells against torch's nn.LSTM, measured in the same run.

    python benchmarks/cells.py [--batch 64] [--steps 100] [--hidden 256] [--repeat 6] [--cells gru,mut1]

One training step = forward over (batch, steps, hidden) inputs, backward of the sum of the
outputs, one SGD step. Every cell (``fused=False``, plus the fused rnn/lstm) is timed right
after a step of the nn.LSTM baseline, ``repeat`` rounds in all, so that load changes on the
machine hit both: ``ratio`` is the median over rounds of (baseline step time / the cell's step
time right after it), > 1: faster than nn.LSTM; steps/s is the median. (A best-of-rounds ratio
would be biased: the baseline runs once per cell per round, so it gets many more tries.)
"lstm (fused)" is nn.LSTM itself: its distance from 1.00 shows the noise of the machine.
Target (issue #3): no custom cell slower than nn.LSTM.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from lightning_modules.cells import CELL_NAMES, FUSABLE, Recurrent  # noqa: E402


class TorchLSTM(nn.Module):
    def __init__(self, size: int):
        super().__init__()
        self.lstm = nn.LSTM(size, size, batch_first=True)

    def forward(self, x):
        return self.lstm(x)[0]


class Outputs(nn.Module):
    def __init__(self, recurrent: Recurrent):
        super().__init__()
        self.recurrent = recurrent

    def forward(self, x):
        return self.recurrent(x).outputs


def train_step_seconds(model: nn.Module, optimizer, x) -> float:
    start = time.perf_counter()
    model(x).sum().backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    if x.is_cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=100, help="sequence length")
    parser.add_argument("--hidden", type=int, default=256, help="hidden size = input size")
    parser.add_argument("--repeat", type=int, default=6, help="timed rounds")
    parser.add_argument("--cells", default=",".join(CELL_NAMES), help="comma-separated subset")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (nn.LSTM is then cuDNN's)")
    args = parser.parse_args()
    torch.manual_seed(0)
    device = torch.device(args.device)
    x = torch.randn(args.batch, args.steps, args.hidden, device=device)
    models = {"nn.LSTM": TorchLSTM(args.hidden)}
    for cell in args.cells.split(","):
        models[cell] = Outputs(Recurrent(cell, args.hidden, args.hidden, fused=False))
    for cell in FUSABLE:
        if cell in args.cells.split(","):
            models[f"{cell} (fused)"] = Outputs(Recurrent(cell, args.hidden, args.hidden, fused=True))
    for model in models.values():
        model.to(device)
    optimizers = {name: torch.optim.SGD(m.parameters(), lr=1e-6) for name, m in models.items()}
    for name, model in models.items():  # warm-up: allocator, thread pool
        train_step_seconds(model, optimizers[name], x)

    times: dict[str, list[float]] = {name: [] for name in models}
    ratios: dict[str, list[float]] = {name: [] for name in models if name != "nn.LSTM"}
    for _ in range(args.repeat):
        for name in ratios:
            base = train_step_seconds(models["nn.LSTM"], optimizers["nn.LSTM"], x)
            own = train_step_seconds(models[name], optimizers[name], x)
            times["nn.LSTM"].append(base)
            times[name].append(own)
            ratios[name].append(base / own)

    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{torch.get_num_threads()} CPU threads"
    print(f"batch {args.batch}, {args.steps} steps, {args.hidden} units, {where}, "
          f"median of {args.repeat} rounds; ratio > 1: faster than nn.LSTM")
    print(f"{'cell':<16}{'params':>10}{'steps/s':>10}{'ratio':>8}")
    ratio = {name: statistics.median(r) for name, r in ratios.items()}
    for name, model in models.items():
        params = sum(p.numel() for p in model.parameters())
        print(f"{name:<16}{params:>10}{1 / statistics.median(times[name]):>10.2f}{ratio.get(name, 1.0):>8.2f}")
    custom = [name for name in ratios if not name.endswith("(fused)")]
    slower = [f"{name} {ratio[name]:.2f}" for name in custom if ratio[name] < 1.0]
    noise = ""
    if "lstm (fused)" in ratio:
        noise = f" (noise: nn.LSTM against itself, as 'lstm (fused)', {ratio['lstm (fused)']:.2f})"
    if slower:
        print(f"verdict: {len(slower)} of {len(custom)} custom cells slower than nn.LSTM: {', '.join(slower)}{noise}")
    else:
        print(f"verdict: all {len(custom)} custom cells at least as fast as nn.LSTM{noise}")


if __name__ == "__main__":
    main()
