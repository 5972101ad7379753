"""Start-up time of `zoo --help` against `python -c pass`, and of a stage's heavy imports
(torch, Lightning, MLflow and its sqlite store): plain, through
``pipeline.plumbing.startup.import_heavy``, and served by ``zoo warm``'s server, measured in the same run.

    python benchmarks/cli_startup.py [--repeat 20] [--stage-repeat 7]

Prints the median of each and their ratio. Target (issue #2): `zoo --help` under 0.5 s.
The stage part times whole processes (start, import, exit), alternating the three ways so
that the machine's drift hits them alike; ``--stage-repeat 0`` skips it.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the pipeline package, not this folder's pipeline.py


def median_seconds(cmd: list[str], repeat: int) -> float:
    subprocess.run(cmd, capture_output=True, check=True)  # warm the file cache
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


PLAIN = "import torch, pytorch_lightning, mlflow, mlflow.store.tracking.sqlalchemy_store"
PAUSED = "from pipeline.plumbing.startup import import_heavy, stage_modules; import_heavy(*stage_modules('sqlite:///x.db'))"


SERVED = "from pipeline.plumbing.warm import delegate; delegate(); raise SystemExit('not served by the warm server')"
STAND_IN = "pipeline.plumbing.startup:import_heavy"  # what the served process runs: a stage's imports, done already in the server


def stage_imports(repeat: int) -> tuple[float, float, float]:
    """Median seconds of a process that imports the heavy modules plainly, of one that imports
    them through ``import_heavy`` (collector paused, objects frozen), each then exiting, and of
    a ``zoo`` stage process served by ``zoo warm``'s server (which did the imports once)."""
    import os
    import tempfile

    env = dict(os.environ)
    folder = tempfile.mkdtemp(prefix="zoo-warm-bench-")
    socket_path = os.path.join(folder, "socket")
    from pipeline.plumbing.warm import server_command

    server = subprocess.Popen(
        server_command(socket_path, STAND_IN),
        env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        if server.stdout.readline().strip() != b"ready":
            sys.exit("the warm server did not start")
        served_env = {**env, "ZOO_WARM_SOCKET": socket_path}
        commands = (
            ([sys.executable, "-c", PLAIN], env),
            ([sys.executable, "-c", PAUSED], env),
            ([sys.executable, "-c", SERVED, "train", "stand-in"], served_env),
        )
        times: list[list[float]] = [[], [], []]
        for cmd, cmd_env in commands:
            subprocess.run(cmd, capture_output=True, check=True, env=cmd_env)  # warm the file cache
        for _ in range(repeat):
            for (cmd, cmd_env), runs in zip(commands, times):
                start = time.perf_counter()
                subprocess.run(cmd, capture_output=True, check=True, env=cmd_env)
                runs.append(time.perf_counter() - start)
    finally:
        server.terminate()
        server.wait()
        Path(socket_path).unlink(missing_ok=True)
        os.rmdir(folder)
    return statistics.median(times[0]), statistics.median(times[1]), statistics.median(times[2])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--stage-repeat", type=int, default=7, help="pairs of stage-import processes (0: skip)")
    args = parser.parse_args()
    zoo = shutil.which("zoo") or str(__import__("pathlib").Path(sys.executable).with_name("zoo"))
    baseline = median_seconds([sys.executable, "-c", "pass"], args.repeat)
    help_time = median_seconds([zoo, "--help"], args.repeat)
    print(f"{'command':<22}{'median s':>10}{'ratio':>8}")
    print(f"{'python -c pass':<22}{baseline:>10.3f}{1.0:>8.2f}")
    print(f"{'zoo --help':<22}{help_time:>10.3f}{help_time / baseline:>8.2f}")
    verdict = "meets" if help_time < 0.5 else "MISSES"
    print(f"zoo --help {verdict} the 0.5 s target ({help_time:.3f} s, {help_time / baseline:.1f}x python -c pass)")
    if args.stage_repeat > 0:
        plain, paused, served = stage_imports(args.stage_repeat)
        print()
        print(f"{'a stage process: imports and exit':<40}{'median s':>10}{'ratio':>8}")
        print(f"{'plain imports':<40}{plain:>10.2f}{1.0:>8.2f}")
        print(f"{'import_heavy (collector paused, frozen)':<40}{paused:>10.2f}{paused / plain:>8.2f}")
        print(f"{'served by zoo warm (forked)':<40}{served:>10.2f}{served / plain:>8.2f}")
        print(f"import_heavy saves {plain - paused:.2f} s a stage, zoo warm {plain - served:.2f} s ({args.stage_repeat} rounds)")


if __name__ == "__main__":
    main()
