"""Per-stage wall time and peak memory of the whole pipeline, against its time budget.

    python benchmarks/pipeline.py            # the stages recorded by the last `make repro`
    python benchmarks/pipeline.py --run      # run `zoo warm dvc repro --force` first (about 35 minutes)

Every `zoo` stage appends one line to `logs/stages.jsonl` (wall time of the command, peak
resident memory); `make repro` marks its start in `logs/repro.started`. This script keeps the
stages recorded since that mark, sums them per model family and prints a table, each family
against its share of the budget (issues 3-5) and the total against the 45 minutes of
`make repro` on 2 cores. The table is also written to `logs/pipeline_timing.md`.
"""

from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BUDGET_MINUTES = 45
FAMILY_BUDGET_MINUTES = {"seq2seq": 10, "gan": 15}  # issues 4 and 5; the rest of the 45 minutes is the recurrent family's


def family_of(params: dict, stage: str, target: str) -> str:
    if stage in ("fetch", "reference", "compare"):
        return "data and reports"
    exp = params.get("experiments", {}).get(target)
    if exp is None:
        return "other"
    model = exp.get("model", "")
    if "gan" in model:
        return "gan"
    if model.startswith(("seq2seq", "transformer", "show-")):
        return "seq2seq"
    return "recurrent"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", action="store_true", help="run `zoo warm dvc repro --force` first and time it")
    args = parser.parse_args()
    logs = ROOT / "logs"
    logs.mkdir(exist_ok=True)
    wall = None
    if args.run:
        (logs / "repro.started").write_text(datetime.datetime.now().isoformat(timespec="seconds"))
        started = time.perf_counter()
        subprocess.run(["zoo", "warm", "dvc", "repro", "--force"], cwd=ROOT, check=True)
        wall = time.perf_counter() - started
    since = (logs / "repro.started").read_text().strip() if (logs / "repro.started").is_file() else ""
    records = logs / "stages.jsonl"
    if not records.is_file():
        sys.exit("no stages recorded yet: run `make repro` (or this script with --run)")
    entries = [json.loads(line) for line in records.read_text().splitlines() if line.strip()]
    entries = [e for e in entries if e["finished"] >= since]
    if not entries:
        sys.exit(f"no stages recorded since {since}")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())

    latest = {}
    for e in entries:  # a stage run twice since the mark counts once, its last run
        latest[(e["stage"], e["target"])] = e
    rows = sorted(latest.values(), key=lambda e: e["finished"])
    per_family: dict[str, float] = defaultdict(float)
    lines = ["| stage | target | family | seconds | peak MiB |", "|---|---|---|---:|---:|"]
    for e in rows:
        family = family_of(params, e["stage"], e["target"])
        seconds = e.get("process_seconds", e["seconds"])
        per_family[family] += seconds
        lines.append(f"| {e['stage']} | {e['target']} | {family} | {seconds:.1f} | {e['peak_rss_mib']:.0f} |")
    total = sum(per_family.values())
    lines += ["", "| family | minutes | budget | ratio |", "|---|---:|---:|---:|"]
    recurrent_budget = BUDGET_MINUTES - sum(FAMILY_BUDGET_MINUTES.values())
    for family, seconds in sorted(per_family.items(), key=lambda kv: -kv[1]):
        budget = FAMILY_BUDGET_MINUTES.get(family, recurrent_budget if family == "recurrent" else None)
        ratio = f"{seconds / 60 / budget:.2f}" if budget else ""
        lines.append(f"| {family} | {seconds / 60:.1f} | {budget or ''} | {ratio} |")
    lines.append(f"| **all stages** | {total / 60:.1f} | {BUDGET_MINUTES} | {total / 60 / BUDGET_MINUTES:.2f} |")
    if wall is not None:
        lines.append(f"| **dvc repro, wall** | {wall / 60:.1f} | {BUDGET_MINUTES} | {wall / 60 / BUDGET_MINUTES:.2f} |")
    elif since:  # from make repro's start mark to the last stage's end: the stages and DVC between them
        span = (datetime.datetime.fromisoformat(rows[-1]["finished"]) - datetime.datetime.fromisoformat(since)).total_seconds()
        lines.append(f"| **start mark to last stage, wall** | {span / 60:.1f} | {BUDGET_MINUTES} | {span / 60 / BUDGET_MINUTES:.2f} |")
    peak = max(rows, key=lambda e: e["peak_rss_mib"])
    lines.append("")
    served = sum(1 for e in rows if e.get("warm"))
    lines.append(
        f"{len(rows)} stages since {since or 'the first record'}, {served} of them forked from `zoo warm`'s server;"
        f" peak memory {peak['peak_rss_mib']:.0f} MiB ({peak['stage']} {peak['target']})."
    )
    text = "\n".join(lines)
    (logs / "pipeline_timing.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
