"""A stand-in stage for tests/test_warm.py: the warm server forks it instead of pipeline.cli.

argv: [script, "train", ACTION, ...]; ACTION is echo WORDS, exit CODE, info NAME (JSON of the
child's pid, folder, an environment variable, what it would delegate to), or wait (prints
its pid, then sleeps until interrupted)."""

from __future__ import annotations

import json
import os
import sys
import time


def main() -> None:
    action, *rest = sys.argv[2:]
    if action == "echo":
        print("out", *rest)
        print("err", *rest, file=sys.stderr)
    elif action == "exit":
        raise SystemExit(int(rest[0]))
    elif action == "info":
        print(json.dumps({
            "pid": os.getpid(),
            "cwd": os.getcwd(),
            "value": os.environ.get(rest[0]),
            "socket": os.environ.get("ZOO_WARM_SOCKET"),
            "main_file": sys.modules["__main__"].__file__,
        }))
    elif action == "wait":
        try:  # before the print: the test interrupts as soon as it reads the pid
            print(os.getpid(), flush=True)
            time.sleep(120)
        except KeyboardInterrupt:
            print("interrupted", flush=True)
            raise SystemExit(130)
