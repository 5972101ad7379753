"""A stand-in stage for tests/test_warm.py: the warm server forks it instead of pipeline.cli.

argv: [script, "train", ACTION, ...]; ACTION is echo WORDS, exit CODE, info NAME (JSON of the
child's pid, folder, an environment variable, what it would delegate to), or wait (prints
its pid, then sleeps until interrupted)."""

from __future__ import annotations

import json
import os
import select
import signal
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
        # Not time.sleep: a Ctrl-C that came after Python's last check for signals and before
        # the sleep began would end it only after 120 s. A signal also writes to the wakeup fd,
        # which ends the select below even if it came first.
        wakeup_r, wakeup_w = os.pipe()
        os.set_blocking(wakeup_w, False)
        signal.set_wakeup_fd(wakeup_w)
        try:  # before the print: the test interrupts as soon as it reads the pid
            print(os.getpid(), flush=True)
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                select.select([wakeup_r], [], [], deadline - time.monotonic())
        except KeyboardInterrupt:
            print("interrupted", flush=True)
            raise SystemExit(130)
