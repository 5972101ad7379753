"""Replay the plateau rule on recorded training curves: would a seed have stopped in a lull?

    python docs/plateau_study.py grid-gan grid-wgan-gp [--patience 20 30 50] [--store URI]

For each seed of each experiment (its newest MLflow run), it reads the validation monitor's
history and prints the best value and its epoch, the mean of the last 10 validations, and, for
each patience, the epoch at which the zoo's rule (``PlateauStopping``: Lightning's
``EarlyStopping`` counted from epoch ``warmup`` on) would have stopped and the best value seen
by then. "needs" is the longest run of validations without a ``min_delta`` improvement before
the seed came within ``min_delta`` of its best: the least patience that would not have stopped
it early. Run it on a store whose runs trained with a large patience (``--set
experiments.<name>.plateau.patience=10000``), so that the curves go on past any stop.
docs/plateaus.md reports what it found.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def stop_epoch(curve: list[float], patience: int, min_delta: float, warmup: int, maximise: bool = True) -> int:
    """The epoch (1-based) at which the rule stops, or the curve's length if it never does."""
    best, wait = -math.inf, 0
    for epoch, value in enumerate(curve, start=1):
        if epoch - 1 < warmup:  # PlateauStopping judges from current_epoch >= warmup
            continue
        score = value if maximise else -value
        if score - min_delta > best:
            best, wait = score, 0
        else:
            wait += 1
            if wait >= patience:
                return epoch
    return len(curve)


def patience_needed(curve: list[float], min_delta: float, warmup: int, maximise: bool = True) -> int:
    """The longest lull (validations without a ``min_delta`` improvement) before the curve first
    comes within ``min_delta`` of its best."""
    scores = [v if maximise else -v for v in curve]
    top = max(scores[warmup:], default=-math.inf)
    best, wait, longest = -math.inf, 0, 0
    for value in scores[warmup:]:
        if value - min_delta > best:
            best, wait = value, 0
        else:
            wait += 1
        if best >= top - min_delta:
            break
        longest = max(longest, wait)
    return longest


def curves(store: str, experiment: str, monitor: str) -> dict[str, list[float]]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=store)
    ids = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(ids, filter_string=f"tags.`zoo.experiment` = '{experiment}'", order_by=["attributes.start_time ASC"])
    newest = {run.data.tags.get("zoo.seed", "?"): run for run in runs}  # the newest run of each seed
    out = {}
    for seed, run in sorted(newest.items()):
        history = sorted(client.get_metric_history(run.info.run_id, monitor), key=lambda m: m.step)
        out[seed] = [m.value for m in history]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("experiments", nargs="+")
    parser.add_argument("--store", default=f"sqlite:///{ROOT / 'mlflow.db'}")
    parser.add_argument("--monitor", default="val_mode_mass_pct")
    parser.add_argument("--mode", choices=["max", "min"], default="max")
    parser.add_argument("--min-delta", type=float, default=1.0)
    parser.add_argument("--warmup", type=int, default=40)
    parser.add_argument("--patience", type=int, nargs="+", default=[20, 30, 50])
    args = parser.parse_args(argv)
    maximise = args.mode == "max"
    pick = max if maximise else min
    print(f"| experiment | seed | epochs | best (epoch) | last 10 | " + " | ".join(f"patience {p}: stop, best" for p in args.patience) + " | needs |")
    print("|---" * (6 + len(args.patience)) + "|")
    for experiment in args.experiments:
        found = curves(args.store, experiment, args.monitor)
        if not found:
            print(f"{experiment}: no runs with {args.monitor} in {args.store}", file=sys.stderr)
        for seed, curve in found.items():
            if not curve:
                continue
            best = pick(curve)
            cells = []
            for p in args.patience:
                stop = stop_epoch(curve, p, args.min_delta, args.warmup, maximise)
                cells.append(f"{stop}, {pick(curve[:stop]):.3g}")
            last = sum(curve[-10:]) / len(curve[-10:])
            print(
                f"| {experiment} | {seed} | {len(curve)} | {best:.3g} ({curve.index(best) + 1}) | {last:.3g} | "
                + " | ".join(cells)
                + f" | {patience_needed(curve, args.min_delta, args.warmup, maximise)} |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
