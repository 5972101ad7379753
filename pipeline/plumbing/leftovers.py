"""No failure leaves a trace: what a failed, interrupted or killed stage leaves behind, and how
it is closed.

- A stage that fails after it opened an MLflow run marks the run FAILED (KILLED for Ctrl-C)
  before the error reaches the user (``closed_on_failure``), and removes what it started: a
  seed's resume folder when nothing resumable was saved in it (``drop_unresumable``), an
  evaluation's half-written outputs (``remove``).
- A process killed outright (SIGKILL, power loss) has no chance to do either: its run stays
  RUNNING and its ``checkpoints/<experiment>/`` folder stays. ``close_stale_runs`` finds them
  once the experiment's outputs are complete again (retrained, resumed, or restored by DVC
  from its run-cache, which runs no training at all), closes the run as KILLED and removes
  the folder when it was saved with the current settings; ``zoo evaluate``, ``zoo compare``
  and ``zoo warm`` (after its command) call it. A run is only closed when no live process owns it:
  every training run records its process (``process_tags``), and a run of a process still
  alive on this machine, or of another machine, is left alone.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
from pathlib import Path
from typing import Iterator

from pipeline.plumbing.errors import Interrupted

TAG_PID = "zoo.pid"
TAG_HOST = "zoo.host"


def process_tags() -> dict[str, str]:
    """Tags that say which process owns a run (``close_stale_runs`` leaves live owners' runs alone)."""
    return {TAG_PID: str(os.getpid()), TAG_HOST: socket.gethostname()}


def failure_status(exc: BaseException) -> str:
    return "KILLED" if isinstance(exc, (KeyboardInterrupt, SystemExit, Interrupted)) else "FAILED"


class RunGuard:
    """Within ``with RunGuard(client) as guard``: every run passed to ``guard.opened(run_id)`` is
    marked FAILED (KILLED for an interruption) when the block ends in an exception."""

    def __init__(self, mlflow_client):
        self.client = mlflow_client
        self.run_ids: list[str] = []

    def opened(self, run_id: str) -> str:
        self.run_ids.append(run_id)
        return run_id

    def __enter__(self) -> "RunGuard":
        return self

    def __exit__(self, kind, exc, traceback) -> bool:
        if exc is not None and self.client is not None:
            for run_id in self.run_ids:
                with contextlib.suppress(Exception):  # the store may be what failed; the error to report is exc
                    self.client.set_terminated(run_id, failure_status(exc))
        return False


@contextlib.contextmanager
def closed_on_failure(mlflow_client, run_id: str | None) -> Iterator[None]:
    """``RunGuard`` for one run (none: nothing to close)."""
    with RunGuard(mlflow_client) as guard:
        if run_id:
            guard.opened(run_id)
        yield


def resumable(seed_folder: Path) -> bool:
    """Whether a seed's resume folder holds something a next ``zoo train`` continues from."""
    return (seed_folder / "last.ckpt").is_file() or (seed_folder / "done" / "seed.json").is_file()


def drop_unresumable(layout, name: str, seed: int) -> None:
    """After a seed failed: remove its resume folder when nothing in it can be resumed, and the
    experiment's when no seed's is left."""
    folder = layout.seed_resume_dir(name, seed)
    if folder.is_dir() and not resumable(folder):
        shutil.rmtree(folder, ignore_errors=True)
    parent = layout.resume_dir(name)
    with contextlib.suppress(OSError):
        parent.rmdir()  # only when empty


def close_dead_seed(uri: str, layout, name: str, seed: int) -> None:
    """A seed's process died without a word (killed, out of memory): close the run it opened as
    KILLED, and drop its resume folder when nothing in it can be resumed. Run by the stage that
    forked it (``pipeline.stages.train.train_seeds_side_by_side``)."""
    from pipeline.plumbing import tracking

    try:
        meta = json.loads((layout.seed_resume_dir(name, seed) / "resume.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        meta = {}
    run_id = meta.get("run_id")
    if run_id:
        with contextlib.suppress(Exception):  # the failure reported is the seed's
            mlflow_client = tracking.client(uri)
            if mlflow_client.get_run(run_id).info.status == "RUNNING":
                mlflow_client.set_terminated(run_id, "KILLED")
    drop_unresumable(layout, name, seed)


def remove(*paths: Path) -> None:
    """A failed stage's outputs: never left half-written."""
    for path in paths:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def outputs_complete(layout, config, name: str) -> dict | None:
    """``run.json`` of an experiment whose model folder is complete (every seed's model), else None."""
    run_file = layout.run_file(name)
    try:
        run = json.loads(run_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    seeds = config.experiment_seeds(name)
    if not all(layout.checkpoint(name, seed).is_file() for seed in seeds):
        return None
    return run


def _alive(run) -> bool:
    """Whether the process that owns a RUNNING run may still be running. Without the tags (a run
    of an older zoo) it is taken as dead; on another machine it cannot be told, so it is alive."""
    tags = run.data.tags
    pid, host = tags.get(TAG_PID), tags.get(TAG_HOST)
    if pid is None:
        return False
    if host != socket.gethostname():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError):
        return True
    return True


def close_stale_runs(mlflow_client, config, layout, names=None) -> list[str]:
    """``find_and_close_stale_runs``, as bookkeeping that never fails the stage it follows:
    a problem is reported on stderr."""
    import sys

    try:
        return find_and_close_stale_runs(mlflow_client, config, layout, names)
    except Exception as exc:  # noqa: BLE001 - the stage's own result stands
        print(f"warning: could not close runs left RUNNING by killed processes: {exc}", file=sys.stderr)
        return []


def find_and_close_stale_runs(mlflow_client, config, layout, names=None) -> list[str]:
    """For each experiment (of ``names``, default all) whose outputs are complete: mark KILLED
    each of its RUNNING runs that ``run.json`` does not record and whose process is gone, and,
    when no live process trains into ``checkpoints/<experiment>/``, remove the resume folders
    its outputs supersede (``drop_superseded``). One query to the store finds every RUNNING
    run. Returns the runs closed."""
    names = list(config.experiments if names is None else names)
    complete = {name: run for name in names if (run := outputs_complete(layout, config, name)) is not None}
    if not complete:
        return []
    experiment_ids = sorted({str(run["experiment_id"]) for run in complete.values() if run.get("experiment_id")})
    try:
        running = mlflow_client.search_runs(experiment_ids, "attributes.status = 'RUNNING'") if experiment_ids else []
    except Exception:  # noqa: BLE001 - an experiment is gone or the store changed: nothing to close
        running = []
    closed, live = [], set()
    for found in running:
        name = found.data.tags.get("zoo.experiment")
        if name not in complete or found.data.tags.get("zoo.kind") != "experiment":
            continue
        recorded = {entry.get("run_id") for entry in (complete[name].get("seeds") or {}).values()}
        if found.info.run_id in recorded:
            continue
        if _alive(found):
            live.add(name)
            continue
        mlflow_client.set_terminated(found.info.run_id, "KILLED")
        mlflow_client.set_tag(found.info.run_id, "zoo.note", "its process ended without closing it (killed); closed once the experiment's outputs were complete again")
        closed.append(found.info.run_id)
        print(f"{name}: closed run {found.info.run_id}, left RUNNING by a killed process, as KILLED")
    for name in complete:
        if name not in live:
            drop_superseded(config, layout, name)
    return closed


def drop_superseded(config, layout, name: str) -> None:
    """Remove the resume folders of ``name``'s seeds that its complete outputs supersede: those
    saved with the settings and data params.yaml gives now (a killed run of what is now
    trained). A folder of other settings stays: ``zoo train`` with those settings (a one-off
    ``--set``) resumes it, and with the current ones discards it itself."""
    folder = layout.resume_dir(name)
    if not folder.is_dir():
        return
    for seed_folder in sorted(folder.glob("seed-*")):
        try:
            saved = json.loads((seed_folder / "resume.json").read_text(encoding="utf-8")).get("fingerprint")
            seed = int(seed_folder.name.removeprefix("seed-"))
        except (OSError, ValueError):
            saved = seed = None
        if saved is None or saved == _fingerprint(config, layout, name, seed):
            shutil.rmtree(seed_folder, ignore_errors=True)
    with contextlib.suppress(OSError):
        folder.rmdir()  # only when empty


def _fingerprint(config, layout, name: str, seed: int) -> str | None:
    """``pipeline.training.resume.fingerprint`` under the current settings (None: the data is not there)."""
    from pipeline.training.resume import fingerprint

    try:
        manifest = json.loads((layout.dataset(config.experiment(name).dataset) / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return fingerprint(config, name, manifest, seed)


def sweep(config, layout) -> None:
    """``close_stale_runs`` for every experiment, run after a whole pipeline (``zoo warm``):
    a stage that DVC restored from its run-cache runs no ``zoo`` process that could do it.
    Never fails the command it follows."""
    import sys

    from pipeline.plumbing import tracking

    # A killed training always leaves its resume folder: without one, nothing to look for (and no
    # store is opened, or created, by `zoo warm dvc status` in a fresh clone).
    if not any(layout.resume_dir(name).is_dir() and outputs_complete(layout, config, name) for name in config.experiments):
        return
    try:
        uri = tracking.resolve_uri(config, layout)
        tracking.check_reachable(uri)
        mlflow_client = tracking.client(uri)
    except Exception as exc:  # noqa: BLE001 - bookkeeping after the command; its result stands
        print(f"warning: could not close runs left RUNNING by killed processes: {exc}", file=sys.stderr)
        return
    close_stale_runs(mlflow_client, config, layout)
