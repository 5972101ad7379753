"""``zoo train EXPERIMENT``: fit the experiment's model on its dataset with Lightning, once
per seed, and track each seed in its own MLflow run ("<experiment> seed <s>").

Each seed trains until its validation monitor stops improving (EarlyStopping on the task's
``monitor``, or the experiment's ``plateau`` settings; ``max_epochs`` is the cap) and keeps
its best checkpoint by that monitor. Writes

    models/<experiment>/seed-<s>/model.ckpt   the kept model      (Layout.checkpoint)
    models/<experiment>/seed-<s>/curves.csv   its training curves
    models/<experiment>/run.json              {"experiment", "model", "task", "family",
        "parameters", "tracking_uri", "experiment_id",
        "seeds": {"<s>": {"run_id": ..., "training": RECORD}}}   (pipeline.training.training_record)
    curves/<experiment>.csv                   the first seed's curves (a DVC plot)

The folder is built under a temporary name and renamed into place only when every seed
succeeded.

A run that is killed or interrupted resumes where it stopped (``pipeline.training.resume``): the
next ``zoo train`` of the same experiment with the same settings keeps the seeds that had
finished, and continues the unfinished one from its last checkpoint and in its MLflow run.
A loss that becomes NaN stops training at once; with ``on_nonfinite_loss: fail`` (the
default) the run is marked FAILED (KILLED for Ctrl-C) and no model is written; with
``record`` the seed's training ends there as a result (stopped "diverged").
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.plumbing import leftovers, tracking, trainer_keys
from pipeline.plumbing.atomic import atomic_dir, write_json, write_text
from pipeline.plumbing.errors import ConfigError, Interrupted
from pipeline.plumbing.progress import training_bar
from pipeline.plumbing.startup import import_heavy, stage_modules


def quiet_lightning() -> None:
    """Silence advice that does not apply here (in-memory batches need no worker processes)."""
    import logging

    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*number of training batches.*smaller than the logging interval.*")
    warnings.filterwarnings("ignore", message=".*GPU available but not used.*")
    warnings.filterwarnings("ignore", message=".*isinstance.treespec, LeafSpec.*")
    warnings.filterwarnings("ignore", message=".*weights_only.*")
    warnings.filterwarnings("ignore", message=".*Checkpoint directory .* exists and is not empty.*")
    logging.getLogger("pytorch_lightning.utilities.rank_zero").setLevel(logging.WARNING)
    logging.getLogger("pytorch_lightning.accelerators.cuda").setLevel(logging.WARNING)
    logging.getLogger("pytorch_lightning.trainer.connectors.checkpoint_connector").setLevel(logging.WARNING)
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)  # "Create SQLAlchemy engine ..." per process


@contextlib.contextmanager
def _scratch():
    with tempfile.TemporaryDirectory(prefix="zoo-rank-") as folder:
        yield Path(folder)


@dataclass(frozen=True)
class Finished:
    """A trained seed: its outputs in ``folder`` (model.ckpt, curves.csv, seed.json)."""

    seed: int
    run_id: str | None
    training: dict[str, Any]
    parameters: int
    folder: Path


def train(config, layout, name: str) -> Path:
    started = time.perf_counter()
    exp, manifest, uri, task, entry = verify_inputs(config, layout, name)
    seeds = config.experiment_seeds(name)
    workers = seed_workers(config, exp, len(seeds))
    if workers > 1:
        # Each process opens its own database connections: none may cross the fork.
        os.environ.setdefault("MLFLOW_SQLALCHEMYSTORE_POOLCLASS", "NullPool")
    mlflow, experiment_id = open_tracking(config, layout, exp, uri)
    setup_seconds = time.perf_counter() - started
    if workers > 1:
        finished = train_seeds_side_by_side(workers, config, layout, name, seeds, manifest, uri, experiment_id, setup_seconds)
    else:
        finished = [
            train_seed(config, layout, name, seed, manifest, task, entry, uri, mlflow, experiment_id, setup_seconds if i == 0 else 0.0)
            for i, seed in enumerate(seeds)
        ]
    if mlflow is not None:  # rank zero: the experiment's outputs
        save_experiment(layout, name, exp, entry, uri, experiment_id, finished)
    return layout.checkpoint(name, seeds[0])


def stage_inputs(config, layout, name: str):
    """What the train and evaluate stages start from: the experiment, its verified dataset's
    manifest, the reachable tracking URI, its task and model entry, the heavy imports done."""
    from lightning_modules import MODELS
    from pipeline.stages.fetch import verify
    from pipeline.tasks import TASKS

    exp = config.experiment(name)
    manifest = verify(config, layout, exp.dataset)
    uri = tracking.resolve_uri(config, layout)
    tracking.check_reachable(uri)
    import_heavy(*stage_modules(uri))  # before the task's and model's modules, which import torch and Lightning
    task, entry = TASKS[exp.task], MODELS[exp.model]
    quiet_lightning()
    return exp, manifest, uri, task, entry


def verify_inputs(config, layout, name: str):
    """``stage_inputs``, and the trainer's keys checked before anything is written."""
    exp, manifest, uri, task, entry = stage_inputs(config, layout, name)
    trainer_keys.check_available(exp.trainer, f"experiments.{name}.trainer")
    return exp, manifest, uri, task, entry


def open_tracking(config, layout, exp, uri: str):
    """(MLflow client, experiment id) on rank zero; (None, None) on the other ranks."""
    if not tracking.is_rank_zero():
        return None, None
    mlflow = tracking.client(uri)
    return mlflow, tracking.experiment_id(mlflow, uri, tracking.experiment_name(config, exp.task), layout)


def save_experiment(layout, name: str, exp, entry, uri: str, experiment_id, finished: list[Finished]) -> None:
    """The trained seeds' folders and run.json moved into models/<experiment>/ at once, the
    first seed's curves copied to curves/<experiment>.csv, the resume folder removed."""
    first = finished[0].seed
    with atomic_dir(layout.model_dir(name)) as tmp:
        for seed_result in finished:
            folder = tmp / layout.seed_dir(name, seed_result.seed).name
            folder.mkdir()
            for file in ("model.ckpt", "curves.csv"):
                shutil.copy2(seed_result.folder / file, folder / file)
        write_text(  # not write_json: its sorted keys would lose the order of the seeds
            tmp / "run.json",
            json.dumps({
                "experiment": name,
                "model": exp.model,
                "task": exp.task,
                "family": entry.family,
                "parameters": finished[0].parameters,
                "tracking_uri": uri,
                "experiment_id": experiment_id,
                "seeds": {str(r.seed): {"run_id": r.run_id, "training": r.training} for r in finished},
            }, indent=2) + "\n",
        )
    layout.curves(name).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(layout.seed_dir(name, first) / "curves.csv", layout.curves(name))
    shutil.rmtree(layout.resume_dir(name), ignore_errors=True)
    outcomes = ", ".join(f"seed {r.seed} {r.training['stopped']} after {r.training['epochs']} epochs" for r in finished)
    print(
        f"trained {name} ({outcomes}): {layout.model_dir(name).relative_to(layout.root)}/seed-*/model.ckpt, "
        f"curves {layout.curves(name).relative_to(layout.root)}"
    )


def seed_workers(config, exp, n_seeds: int) -> int:
    """How many processes train an experiment's seeds side by side. ``seed_workers: auto``, when
    training runs on the CPU in one process: one per seed, up to one and a half per core (three
    on two cores). A small model keeps one core about as busy as two, so each process gets one
    core's share of the threads; with more processes than cores the system shares the cores
    out (costing ~2 %), where one process per core would leave a core idle while the last seed
    trains alone (``benchmarks/seed_workers.py``). One, training the seeds in turn, on an
    accelerator or under a distributed strategy. An integer sets the number."""
    if n_seeds < 2:
        return 1
    if config.seed_workers != "auto":
        return min(config.seed_workers, n_seeds)
    trainer = exp.trainer
    if trainer.accelerator not in ("auto", "cpu") or trainer.strategy != "auto" or trainer.num_nodes != 1 or trainer.devices not in ("auto", 1):
        return 1
    if trainer.accelerator == "auto":
        import torch

        if torch.cuda.is_available() or torch.backends.mps.is_available():
            return 1
    cores = os.cpu_count() or 1
    return max(1, min(n_seeds, cores + cores // 2))


def train_seeds_side_by_side(workers: int, config, layout, name: str, seeds: list[int], manifest, uri, experiment_id, setup_seconds: float) -> list[Finished]:
    """``train_seed`` for every seed, ``workers`` processes at a time, each forked from this one
    (the imports are done) with its share of the cores. A failure in one seed is reported as
    that seed's, with its exit code, once the seeds running beside it have ended; Ctrl-C
    reaches every process of the group, and each keeps its checkpoint as ``train_seed`` does."""
    import multiprocessing
    import multiprocessing.connection
    import signal

    context = multiprocessing.get_context("fork")
    threads = max(1, (os.cpu_count() or 1) // workers)
    pending, running, results = list(enumerate(seeds)), {}, {}
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # the children handle Ctrl-C and report it
    try:
        while pending or running:
            while pending and len(running) < workers:
                i, seed = pending.pop(0)
                receive, send = context.Pipe(duplex=False)
                args = (send, config, layout, name, seed, manifest, uri, experiment_id, setup_seconds if i == 0 else 0.0, threads)
                process = context.Process(target=_seed_process, args=args, name=f"{name} seed {seed}")
                process.start()
                send.close()
                running[seed] = (process, receive)
            ready = multiprocessing.connection.wait([receive for _, receive in running.values()])
            for seed, (process, receive) in list(running.items()):
                if receive in ready:
                    try:
                        results[seed] = receive.recv()
                    except EOFError:  # the process died without a word (killed)
                        results[seed] = ("failed", 1, f"training of {name} seed {seed} ended without a result (exit code {process.exitcode})")
                        process.join()  # gone: what it opened is this process's to close
                        leftovers.close_dead_seed(uri, layout, name, seed)
                    process.join()
                    del running[seed]
    finally:
        signal.signal(signal.SIGINT, previous)
    for seed in seeds:
        outcome = results[seed]
        if outcome[0] != "ok":
            from pipeline.plumbing.errors import ZooError

            error = ZooError(outcome[2])
            error.exit_code = outcome[1]
            raise error
    return [results[seed][1] for seed in seeds]


def _seed_process(send, config, layout, name, seed, manifest, uri, experiment_id, setup_seconds, threads) -> None:
    """One seed's training in a forked process; sends ("ok", Finished) or ("failed", exit code, message)."""
    import signal
    import traceback

    import torch

    from lightning_modules import MODELS
    from pipeline.plumbing.errors import ZooError
    from pipeline.tasks import TASKS

    signal.signal(signal.SIGINT, signal.default_int_handler)  # the parent ignores it while it waits
    torch.set_num_threads(threads)
    exp = config.experiment(name)
    try:
        mlflow = tracking.client(uri) if tracking.is_rank_zero() else None
        finished = train_seed(config, layout, name, seed, manifest, TASKS[exp.task], MODELS[exp.model], uri, mlflow, experiment_id, setup_seconds)
        send.send(("ok", finished))
    except ZooError as exc:
        send.send(("failed", exc.exit_code, str(exc)))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which fails the stage
        traceback.print_exc()
        send.send(("failed", 1, f"training of {name} seed {seed} failed: {type(exc).__name__}: {exc}"))
    finally:
        send.close()


def train_seed(config, layout, name: str, seed: int, manifest, task, entry, uri, mlflow, experiment_id, setup_seconds: float) -> Finished:
    """Train one seed into its resume folder's ``done/`` (or find it there, finished by an
    earlier, interrupted run of the stage). On any failure its MLflow run is closed as FAILED
    (KILLED when interrupted) and a resume folder with nothing to resume is removed."""
    try:
        with leftovers.RunGuard(mlflow) as guard:
            return fit_seed(config, layout, name, seed, manifest, task, entry, uri, mlflow, experiment_id, setup_seconds, guard)
    except BaseException:
        if mlflow is not None:
            leftovers.drop_unresumable(layout, name, seed)
        raise


@dataclass
class SeedSetup:
    """What training one seed needs, built before the trainer: the prepared data, the model,
    the trainer's arguments, the monitor and the callbacks that record the seed's training."""

    prepared: Any
    model: Any
    trainer_args: dict[str, Any]
    bar: list
    profiler: Any
    monitor: str
    task_callbacks: list
    finite: Any = None
    monitored: Any = None
    norms: Any = None
    history: Any = None
    interrupt: Any = None
    stopper: Any = None
    best: Any = None


def fit_seed(config, layout, name: str, seed: int, manifest, task, entry, uri, mlflow, experiment_id: str, setup_seconds: float, guard) -> Finished:
    from pipeline.training.batched_logger import BatchedMLFlowLogger
    from pipeline.training.resume import ResumeState, checkpoint_step, fingerprint

    started = time.perf_counter()
    label = f"{name} seed {seed}"
    rank_zero = mlflow is not None
    resume = ResumeState(layout.seed_resume_dir(name, seed), fingerprint(config, name, manifest, seed))
    resume_from, previous_run, note = resume.find(owner=rank_zero)
    if note and rank_zero:
        print(f"{label}: {note}")
    earlier = finished_earlier(resume, seed, label, rank_zero)
    if earlier is not None:
        return earlier
    setup = build_seed(config, layout, name, seed, manifest, task, entry, resume)
    run_id, logger = None, False
    if rank_zero:
        run_id = seed_run(config, layout, name, seed, entry, setup.prepared.model_args, manifest, mlflow, experiment_id, previous_run, guard)
        resume.start(run_id)
        logger = BatchedMLFlowLogger(experiment_name=config.tracking.experiment, tracking_uri=uri, run_id=run_id)
    if resume_from is not None and rank_zero:
        print(f"resuming {label} at step {checkpoint_step(resume_from)} from {resume_from.relative_to(layout.root)} (MLflow run {run_id})")
    setup_seconds += time.perf_counter() - started
    # Only rank zero writes the seed's folder; other processes of a distributed run get a
    # scratch folder (Lightning's checkpoint saving is collective but writes on rank zero).
    with (atomic_dir(resume.done) if rank_zero else _scratch()) as tmp:
        trainer = make_trainer(setup, resume, logger, tmp)
        fit_seconds = fit(trainer, setup, resume, resume_from, layout, name, label, mlflow, run_id)
        training, parameters = save_seed(trainer, setup, tmp, seed, mlflow, run_id, setup_seconds, fit_seconds)
    if rank_zero:
        report_seed(resume, setup, label, run_id, training, setup_seconds, fit_seconds)
    if setup.interrupt.requested:  # Ctrl-C after the last epoch's last batch: the seed finished first
        raise Interrupted(f"training of {name} interrupted after {label} finished: `zoo train {name}` goes on from there, keeping the finished seed")
    return Finished(seed, run_id, training, parameters, resume.done)


def finished_earlier(resume, seed: int, label: str, rank_zero: bool) -> Finished | None:
    """The seed as an earlier, interrupted run of the stage finished it (its done/ folder), or None."""
    done_file = resume.done / "seed.json"
    if not done_file.is_file():
        return None
    done = json.loads(done_file.read_text(encoding="utf-8"))
    if rank_zero:
        print(f"{label}: finished by an earlier run of the stage (MLflow run {done['run_id']}); not trained again")
    return Finished(seed, done["run_id"], done["training"], done["parameters"], resume.done)


def build_seed(config, layout, name: str, seed: int, manifest, task, entry, resume) -> SeedSetup:
    """Seeded: the task's loaders, the model, the trainer's arguments and the callbacks."""
    import pytorch_lightning as pl

    from pipeline.training.history import EpochHistory
    from pipeline.training.resume import BestCheckpoint, FiniteLoss, GracefulInterrupt
    from pipeline.training.training_record import GradientNorms, MonitorRecord, PlateauStopping

    exp = config.experiment(name)
    pl.seed_everything(seed, workers=True, verbose=False)
    data_dir = layout.dataset(exp.dataset)
    prepared = task.prepare(data_dir, manifest, exp.common, seed)
    model = entry.build(task.head, exp.settings, **prepared.model_args)
    trainer_args = exp.trainer.model_dump(exclude_none=True)
    trainer_args["enable_progress_bar"], bar = training_bar(trainer_args.get("enable_progress_bar", True))
    if not model.automatic_optimization and "gradient_clip_val" in trainer_args:
        raise ConfigError(
            f"experiments.{name}.trainer.gradient_clip_val",
            f"model '{exp.model}' optimises manually (a GAN); Lightning cannot clip its gradients",
        )
    profiler = trainer_args.pop("profiler", None)  # None: Lightning's default, no profiling
    plateau = exp.common.plateau
    monitor, mode = plateau.monitor or task.monitor, plateau.mode or task.monitor_mode
    extra = task.training_callbacks(data_dir, manifest, exp.common, seed, **task.evaluation_inputs(config, layout, exp.dataset))
    return SeedSetup(
        prepared, model, trainer_args, bar, profiler, monitor, extra,
        finite=FiniteLoss(name, on_nonfinite=exp.common.on_nonfinite_loss, monitor=monitor),
        monitored=MonitorRecord(name, monitor, mode, plateau.target, required=plateau.monitor is not None),
        norms=GradientNorms(),
        history=EpochHistory(),
        interrupt=GracefulInterrupt(),
        stopper=PlateauStopping(
            warmup=plateau.warmup, monitor=monitor, mode=mode, patience=plateau.patience, min_delta=plateau.min_delta, strict=False, check_finite=False,
            ceiling=task.ceilings.get(monitor) if mode == "max" else None,
        ),
        best=BestCheckpoint(resume.best, monitor, mode),
    )


def make_trainer(setup: SeedSetup, resume, logger, root: Path):
    import pytorch_lightning as pl

    from pipeline.training.resume import AtomicCheckpointIO, EpochCheckpoint, RandomState

    # Lightning runs callbacks in list order, checkpoint callbacks last: the task's callbacks
    # log their validation metrics before the record, EarlyStopping and the best checkpoint read them.
    return pl.Trainer(
        **setup.trainer_args,
        logger=logger,
        callbacks=[
            *setup.task_callbacks,
            RandomState(),
            setup.finite,
            setup.history,
            setup.monitored,
            setup.norms,
            setup.interrupt,
            setup.stopper,
            EpochCheckpoint(resume.folder),
            setup.best,
            *setup.bar,
        ],
        enable_model_summary=False,
        profiler=setup.profiler,
        plugins=[AtomicCheckpointIO()],
        default_root_dir=root,
    )


def fit(trainer, setup: SeedSetup, resume, resume_from, layout, name: str, label: str, mlflow, run_id) -> float:
    """``trainer.fit``; its seconds. A failure closes the seed's MLflow run (KILLED when
    interrupted, keeping the checkpoint to resume from; FAILED otherwise)."""
    fit_started = time.perf_counter()
    try:
        with setup.interrupt:
            trainer.fit(setup.model, setup.prepared.train, setup.prepared.val, ckpt_path=resume_from)
    except BaseException as exc:
        interrupted = isinstance(exc, (KeyboardInterrupt, SystemExit)) and trainer.interrupted
        if mlflow is not None:
            mlflow.set_terminated(run_id, "KILLED" if interrupted else "FAILED")
        if interrupted:
            saved = resume.checkpoint.relative_to(layout.root) if resume.checkpoint.is_file() else None
            raise Interrupted(
                f"training of {label} interrupted; "
                + (f"checkpoint {saved} kept: `zoo train {name}` resumes from it" if saved else "no epoch finished, nothing to resume")
            ) from None
        raise
    return time.perf_counter() - fit_started


def save_seed(trainer, setup: SeedSetup, folder: Path, seed: int, mlflow, run_id, setup_seconds: float, fit_seconds: float):
    """The seed's record, kept model, curves and seed.json in ``folder``; logged to its MLflow run."""
    from pipeline.training.training_record import record

    training = record(setup.monitored, setup.stopper, setup.finite, setup.norms)
    checkpoint = folder / "model.ckpt"
    keep_model(trainer, setup.best, checkpoint)
    parameters = sum(p.numel() for p in setup.model.parameters())
    if mlflow is not None:
        setup.history.write(folder / "curves.csv")
        write_json(folder / "seed.json", {"seed": seed, "run_id": run_id, "training": training, "parameters": parameters})
        tracking.log_metrics(mlflow, run_id, {"time_setup_s": setup_seconds, "time_fit_s": fit_seconds})
        mlflow.set_tag(run_id, "zoo.stopped", training["stopped"])
        mlflow.log_artifact(run_id, str(checkpoint), "model")
    return training, parameters


def report_seed(resume, setup: SeedSetup, label: str, run_id, training: dict, setup_seconds: float, fit_seconds: float) -> None:
    resume.checkpoint.unlink(missing_ok=True)  # done/ holds what is needed now
    shutil.rmtree(resume.best, ignore_errors=True)
    monitor = setup.monitor
    best_text = f"best {monitor} {training['best_score']:.4g} at epoch {training['best_epoch']}" if training["best_score"] is not None else f"no finite {monitor}"
    print(f"trained {label} in {fit_seconds:.1f} s (set-up {setup_seconds:.1f} s): stopped {training['stopped']} after {training['epochs']} epochs, {best_text} (MLflow run {run_id})")


def seed_run(config, layout, name: str, seed: int, entry, model_args: dict, manifest: dict, mlflow, experiment_id: str, previous_run: str | None, guard) -> str:
    """The seed's MLflow run: the interrupted run's, when it still exists, else a new one
    named "<experiment> seed <s>", with the seed as a tag and a parameter. Either way the
    ``guard`` closes it if the seed fails, and its tags name this process."""
    if previous_run and tracking.run_exists(mlflow, previous_run):
        mlflow.update_run(guard.opened(previous_run), status="RUNNING")
        for key, value in leftovers.process_tags().items():
            mlflow.set_tag(previous_run, key, value)
        return previous_run
    exp = config.experiment(name)
    label = f"{name} seed {seed}"
    tags = {**tracking.experiment_tags(config, layout, name, entry.family), "mlflow.runName": label, "zoo.seed": str(seed), **leftovers.process_tags()}
    run_id = guard.opened(mlflow.create_run(experiment_id, run_name=label, tags=tags).info.run_id)
    tracking.log_params(mlflow, run_id, {**exp.flat_params(), **model_args, "family": entry.family, "seed": seed})
    tracking.log_dataset(mlflow, run_id, exp.dataset, layout.dataset(exp.dataset), manifest)
    return run_id


def keep_model(trainer, best, checkpoint: Path) -> None:
    """Write the seed's model: the best checkpoint by the monitor; without one (no validation
    gave a finite value, e.g. divergence in the first epoch, or the model does not log the
    monitor) the weights as training ended. Every process calls it (saving is collective)."""
    from pipeline.training.resume import save_atomically

    kept = Path(best.best_model_path) if best.best_model_path else None
    if kept is None:
        save_atomically(trainer, checkpoint)
    elif trainer.is_global_zero:
        shutil.copy2(kept, checkpoint)
