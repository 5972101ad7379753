"""``zoo train EXPERIMENT``: fit the experiment's model on its dataset with Lightning and
track it in MLflow.

Writes ``models/<experiment>/model.ckpt`` and ``run.json`` (the MLflow run id, which the
evaluate stage logs into). The folder is built under a temporary name and renamed into
place only when training succeeded.

A run that is killed or interrupted resumes where it stopped (``pipeline.resume``): the
next ``zoo train`` of the same experiment with the same settings continues from the last
checkpoint and the same MLflow run. A loss that becomes NaN stops training at once; the
run is marked FAILED (KILLED for Ctrl-C) and no model is written.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
import warnings
from pathlib import Path

from pipeline import tracking
from pipeline.atomic import atomic_dir, write_json
from pipeline.errors import ConfigError, Interrupted
from pipeline.progress import training_bar
from pipeline.startup import import_heavy, stage_modules


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


@contextlib.contextmanager
def _scratch():
    with tempfile.TemporaryDirectory(prefix="zoo-rank-") as folder:
        yield Path(folder)


def train(config, layout, name: str) -> Path:
    from lightning_modules import MODELS
    from pipeline.stages.fetch import verify
    from pipeline.tasks import TASKS

    started = time.perf_counter()
    exp = config.experiment(name)
    manifest = verify(config, layout, exp.dataset)
    uri = tracking.resolve_uri(config, layout)
    tracking.check_reachable(uri)
    import_heavy(*stage_modules(uri))  # before the task's and model's modules, which import torch and Lightning
    task, entry = TASKS[exp.task], MODELS[exp.model]

    import pytorch_lightning as pl

    from pipeline.batched_logger import BatchedMLFlowLogger

    quiet_lightning()
    seed = config.experiment_seed(name)
    pl.seed_everything(seed, workers=True, verbose=False)
    prepared = task.prepare(layout.dataset(exp.dataset), manifest, exp.common, seed)
    model = entry.build(task.head, exp.settings, **prepared.model_args)
    trainer_args = exp.trainer.model_dump(exclude_none=True)
    trainer_args["enable_progress_bar"], bar = training_bar(trainer_args.get("enable_progress_bar", True))
    if not model.automatic_optimization and "gradient_clip_val" in trainer_args:
        raise ConfigError(
            f"experiments.{name}.trainer.gradient_clip_val",
            f"model '{exp.model}' optimises manually (a GAN); Lightning cannot clip its gradients",
        )

    from pipeline.callback_group import CallbackGroup
    from pipeline.history import EpochHistory
    from pipeline.profiler import NoProfiler
    from pipeline.resume import EpochCheckpoint, FiniteLoss, GracefulInterrupt, RandomState, ResumeState, checkpoint_step, fingerprint

    profiler = trainer_args.pop("profiler", None) or NoProfiler()
    resume = ResumeState(layout.resume_dir(name), fingerprint(config, name, manifest))
    rank_zero = tracking.is_rank_zero()
    resume_from, previous_run, note = resume.find(owner=rank_zero)
    if note and rank_zero:
        print(f"{name}: {note}")
    run_id = experiment_id = None
    logger = False
    if rank_zero:
        mlflow = tracking.client(uri)
        experiment_id = tracking.experiment_id(mlflow, uri, tracking.experiment_name(config, exp.task), layout)
        if previous_run and tracking.run_exists(mlflow, previous_run):
            run_id = previous_run
            mlflow.update_run(run_id, status="RUNNING")
        else:
            run = mlflow.create_run(experiment_id, run_name=name, tags=tracking.experiment_tags(config, layout, name, entry.family))
            run_id = run.info.run_id
            tracking.log_params(mlflow, run_id, {**exp.flat_params(), **prepared.model_args, "family": entry.family, "seed": seed})
        resume.start(run_id)
        logger = BatchedMLFlowLogger(experiment_name=config.tracking.experiment, tracking_uri=uri, run_id=run_id)
    if resume_from is not None and rank_zero:
        print(f"resuming {name} at step {checkpoint_step(resume_from)} from {resume_from.relative_to(layout.root)} (MLflow run {run_id})")
    setup_seconds = time.perf_counter() - started

    # Only rank zero writes the model folder; other processes of a distributed run get a
    # scratch folder (Lightning's checkpoint saving is collective but writes on rank zero).
    with (atomic_dir(layout.model_dir(name)) if rank_zero else _scratch()) as tmp:
        trainer = pl.Trainer(
            **trainer_args,
            logger=logger,
            callbacks=[
                EpochCheckpoint(resume.folder),
                CallbackGroup(RandomState(), FiniteLoss(name), history := EpochHistory(), interrupt := GracefulInterrupt()),
                *bar,
            ],
            enable_model_summary=False,
            profiler=profiler,
            default_root_dir=tmp,
        )
        fit_started = time.perf_counter()
        try:
            with interrupt:
                trainer.fit(model, prepared.train, prepared.val, ckpt_path=resume_from)
        except BaseException as exc:
            interrupted = isinstance(exc, (KeyboardInterrupt, SystemExit)) and trainer.interrupted
            if rank_zero:
                mlflow.set_terminated(run_id, "KILLED" if interrupted else "FAILED")
            if interrupted:
                saved = resume.checkpoint.relative_to(layout.root) if resume.checkpoint.is_file() else None
                raise Interrupted(
                    f"training of {name} interrupted; "
                    + (f"checkpoint {saved} kept: `zoo train {name}` resumes from it" if saved else "no epoch finished, nothing to resume")
                ) from None
            raise
        fit_seconds = time.perf_counter() - fit_started
        checkpoint = tmp / "model.ckpt"
        trainer.save_checkpoint(checkpoint)
        if rank_zero:
            tracking.log_metrics(mlflow, run_id, {"time_setup_s": setup_seconds, "time_fit_s": fit_seconds})
            mlflow.log_artifact(run_id, str(checkpoint), "model")
            write_json(
                tmp / "run.json",
                {
                    "experiment": name,
                    "run_id": run_id,
                    "experiment_id": experiment_id,
                    "tracking_uri": uri,
                    "model": exp.model,
                    "task": exp.task,
                    "family": entry.family,
                    "parameters": sum(p.numel() for p in model.parameters()),
                },
            )
    if not rank_zero:
        return layout.checkpoint(name)
    history.write(layout.curves(name))
    resume.clear()
    print(
        f"trained {name} in {fit_seconds:.1f} s (set-up {setup_seconds:.1f} s): {layout.checkpoint(name).relative_to(layout.root)}, "
        f"curves {layout.curves(name).relative_to(layout.root)}, MLflow run {run_id}"
    )
    return layout.checkpoint(name)
