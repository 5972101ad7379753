"""`zoo warm dvc repro` against plain `dvc repro`, end to end, on a fixed subset of the pipeline.

    python benchmarks/warm.py [--tasks parity xml] [--rounds 2] [--epochs 1]

A scratch copy of the project (the files git tracks) keeps the experiments of the given tasks
(default: parity and xml, 23 experiments, 46 train and evaluate stages, plus their fetch and
reference stages and compare), each seed capped at ``--epochs`` epochs so that the training
work is the same both ways. After one build, each round forces the whole subset twice,
`dvc repro --force` plain and under `zoo warm`, in alternating order (plain first in odd
rounds, warm first in even ones), so both ways see the same hour of this noisy machine.
Prints every run's wall time, the median of each way and the saving of warm in percent of
the plain time.
"""

from __future__ import annotations

import argparse
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
BIN = Path(sys.executable).parent


def scratch_copy(dest: Path, tasks: list[str], epochs: int) -> int:
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    for rel in files:
        if (REPO / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, dest / rel)
    (dest / "dvc.lock").unlink(missing_ok=True)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    experiments = {k: v for k, v in params["experiments"].items() if v["task"] in tasks}
    for body in experiments.values():
        body.setdefault("trainer", {}).update(max_epochs=epochs, enable_progress_bar=False)
    params["experiments"] = experiments
    used = {v["dataset"] for v in experiments.values()}
    params["datasets"] = {k: v for k, v in params["datasets"].items() if k in used}
    params["references"] = {k: v for k, v in params.get("references", {}).items() if k in used}
    params["defaults"] = {k: v for k, v in params.get("defaults", {}).items() if k in tasks}
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return 2 * len(experiments)


def timed(cmd: list[str], cwd: Path, env: dict) -> float:
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if proc.returncode:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{(proc.stdout + proc.stderr)[-3000:]}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["parity", "xml"])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ZOO_", "MLFLOW_"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    for key, value in (("NAME", "bench"), ("EMAIL", "bench@example.invalid")):
        env[f"GIT_AUTHOR_{key}"] = env[f"GIT_COMMITTER_{key}"] = value
    plain, warm = ["dvc", "repro", "--force"], ["zoo", "warm", "dvc", "repro", "--force"]
    with tempfile.TemporaryDirectory(prefix="zoo-warm-bench-") as folder:
        root = Path(folder)
        stages = scratch_copy(root, args.tasks, args.epochs)
        for cmd in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "bench"]):
            subprocess.run(cmd, cwd=root, env=env, check=True, capture_output=True)
        print(f"{stages} train and evaluate stages of {', '.join(args.tasks)}, {args.epochs} epoch(s) a seed; build: "
              f"{timed(['dvc', 'repro'], root, env):.0f} s")
        times: dict[str, list[float]] = {"plain": [], "warm": []}
        for r in range(args.rounds):
            order = (("plain", plain), ("warm", warm)) if r % 2 == 0 else (("warm", warm), ("plain", plain))
            for name, cmd in order:
                times[name].append(timed(cmd, root, env))
                print(f"round {r + 1} {name:<5} {times[name][-1]:7.1f} s", flush=True)
    a, b = statistics.median(times["plain"]), statistics.median(times["warm"])
    print(f"median plain {a:.1f} s, warm {b:.1f} s: warm saves {100 * (a - b) / a:.1f} % "
          f"(runs plain {', '.join(f'{t:.0f}' for t in times['plain'])}; warm {', '.join(f'{t:.0f}' for t in times['warm'])})")


if __name__ == "__main__":
    main()
