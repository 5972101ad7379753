"""Start-up time of `zoo --help` against `python -c pass`, measured in the same run.

    python benchmarks/cli_startup.py [--repeat 20]

Prints the median of each and their ratio. Target (issue #2): `zoo --help` under 0.5 s.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time


def median_seconds(cmd: list[str], repeat: int) -> float:
    subprocess.run(cmd, capture_output=True, check=True)  # warm the file cache
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    zoo = shutil.which("zoo") or str(__import__("pathlib").Path(sys.executable).with_name("zoo"))
    baseline = median_seconds([sys.executable, "-c", "pass"], args.repeat)
    help_time = median_seconds([zoo, "--help"], args.repeat)
    print(f"{'command':<22}{'median s':>10}{'ratio':>8}")
    print(f"{'python -c pass':<22}{baseline:>10.3f}{1.0:>8.2f}")
    print(f"{'zoo --help':<22}{help_time:>10.3f}{help_time / baseline:>8.2f}")
    verdict = "meets" if help_time < 0.5 else "MISSES"
    print(f"zoo --help {verdict} the 0.5 s target ({help_time:.3f} s, {help_time / baseline:.1f}x python -c pass)")


if __name__ == "__main__":
    main()
