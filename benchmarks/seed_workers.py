"""Seeds side by side against seeds in turn: the wall time of `zoo train` for experiments of
the default pipeline with `seed_workers: 1` (in turn), one process per core (`seed_workers:
<cores>`) and `seed_workers: auto` (one per seed, up to 1.5 per core), alternating, in a scratch
copy of the project. Prints each triple and the ratios of the medians (under 1 is a saving).
Every seed is capped at the same number of epochs, so the seeds take about equal time: with
three seeds on two cores that is the case where one process per core leaves a core idle for
a third of the time.

    python benchmarks/seed_workers.py [EXPERIMENT ...] [--repeats 2] [--epochs 3]
"""

from __future__ import annotations

import argparse
import copy
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
DEFAULT = ["parity-long-lstm", "xml-mut1", "ring-gan", "dates-seq2seq"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiments", nargs="*", default=DEFAULT)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=3, help="cap each seed at this many epochs (same work both ways)")
    args = parser.parse_args()
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ZOO_", "MLFLOW_"))}
    with tempfile.TemporaryDirectory(prefix="zoo-bench-") as folder:
        root = Path(folder)
        for name in args.experiments:
            exp = params["experiments"][name]
            subprocess.run([sys.executable, "-m", "pipeline", "fetch", exp["dataset"]], cwd=root if (root / "params.yaml").exists() else _write(root, params), env=env, check=True, capture_output=True)
            if exp["task"] == "images":
                subprocess.run([sys.executable, "-m", "pipeline", "reference", exp["dataset"]], cwd=root, env=env, check=True, capture_output=True)
            cores = os.cpu_count() or 1
            modes = (1, cores, "auto")
            times = {mode: [] for mode in modes}
            for _ in range(args.repeats):
                for workers in modes:
                    run = copy.deepcopy(params)
                    run["seed_workers"] = workers
                    body = run["experiments"][name]
                    body.setdefault("trainer", {}).update(max_epochs=args.epochs, min_epochs=None, enable_progress_bar=False)
                    _write(root, run)
                    shutil.rmtree(root / "checkpoints", ignore_errors=True)
                    started = time.perf_counter()
                    subprocess.run([sys.executable, "-m", "pipeline", "train", name], cwd=root, env=env, check=True, capture_output=True)
                    times[workers].append(time.perf_counter() - started)
            in_turn, per_core, auto = (statistics.median(times[mode]) for mode in modes)
            triples = ", ".join(f"{a:.1f}/{b:.1f}/{c:.1f}" for a, b, c in zip(*(times[mode] for mode in modes)))
            print(
                f"{name:<22} in turn / one per core / auto (s): {triples}; ratios of medians: "
                f"one per core {per_core / in_turn:.2f} and auto {auto / in_turn:.2f} of in turn, auto {auto / per_core:.2f} of one per core"
            )


def _write(root: Path, params: dict) -> Path:
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return root


if __name__ == "__main__":
    main()
