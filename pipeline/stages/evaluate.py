"""``zoo evaluate EXPERIMENT``: measure every seed's trained model on its task's test data.

Writes ``metrics/<experiment>.json``:

    {<metric>: mean over the seeds, ..., "n_seeds": 3,
     "seeds": {"<s>": {<metric>: value, ..., "plateau": 1.0 | 0.0, "diverged": 0.0 | 1.0,
                       "epochs", "best_epoch", "diverged_step", "epochs_to_target",
                       "grad_norm_max", "grad_norm_p50", "grad_norm_p90", "grad_norm_p99"}}}

A seed's entry holds the task's metrics and its training record (``run.json``, turned into
numbers by ``pipeline.training.training_record.record_metrics``). Non-finite values are null; a
top-level mean is over the seeds with a finite value (null when none has one), so top-level
``plateau`` is the fraction of seeds stopped on a plateau. ``plots/<experiment>/`` holds the
first seed's plots, ``samples/<experiment>/`` its text outputs (for a task without any, a
``samples.txt`` that says so: DVC warns on an empty output folder).
Each seed's metrics are logged into that seed's MLflow run (from ``models/<experiment>/run.json``),
the plots and texts into the first seed's.
"""

from __future__ import annotations

import json
import math
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from pipeline.plumbing import leftovers, tracking
from pipeline.plumbing.atomic import atomic_dir, write_json
from pipeline.plumbing.errors import ModelError
from pipeline.stages.train import stage_inputs
from pipeline.tasks.base import Evaluation


def load_model(cls, model_name: str, checkpoint: Path):
    if not checkpoint.is_file():
        experiment = checkpoint.parent.parent.name if checkpoint.parent.name.startswith("seed-") else checkpoint.parent.name
        raise ModelError(f"{checkpoint} does not exist: train the experiment first (`zoo train {experiment}`)")
    try:
        return cls.load_from_checkpoint(str(checkpoint), map_location="cpu")
    except Exception as exc:  # torch raises many kinds for a corrupt or foreign file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"cannot load checkpoint {checkpoint} as model '{model_name}': {first[:200]}") from exc


def finite_or_none(value: Any) -> float | None:
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value if math.isfinite(value) else None


def seed_means(per_seed: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Every numeric key's mean over the seeds that have a finite value (null when none has)."""
    keys: list[str] = []
    for metrics in per_seed.values():
        keys += [k for k in metrics if k not in keys]
    out: dict[str, Any] = {}
    for key in keys:
        values = [v for m in per_seed.values() if (v := finite_or_none(m.get(key))) is not None]
        out[key] = float(sum(values) / len(values)) if values else None
    return out


def evaluate(config, layout, name: str) -> Path:
    from pipeline.training.training_record import record_metrics

    exp, manifest, uri, task, entry = stage_inputs(config, layout, name)
    seeds = config.experiment_seeds(name)
    models = {seed: load_model(entry.cls_for(task.head), entry.name, layout.checkpoint(name, seed)) for seed in seeds}
    run_file = layout.run_file(name)
    run_info = json.loads(run_file.read_text()) if run_file.is_file() else {}
    trained = run_info.get("seeds") or {}

    per_seed: dict[str, dict[str, Any]] = {}
    series: dict[int, dict] = {}
    with atomic_dir(layout.plots(name)) as plots_tmp, atomic_dir(layout.samples(name)) as texts_tmp, tempfile.TemporaryDirectory(prefix="zoo-plots-") as scratch:
        for i, seed in enumerate(seeds):
            plots_dir = plots_tmp if i == 0 else Path(scratch) / f"seed-{seed}"
            plots_dir.mkdir(exist_ok=True)
            result = evaluate_seed(config, layout, name, task, models[seed], manifest, plots_dir, seed)
            if i == 0:
                texts = result.texts or {"samples.txt": f"# {name}: the {task.name} task writes no text samples; its pictures are in plots/{name}/\n"}
                for file_name, text in texts.items():
                    (texts_tmp / file_name).write_text(text, encoding="utf-8")
            training = (trained.get(str(seed)) or {}).get("training") or {}
            metrics = {**result.metrics, **(record_metrics(training) if training else {})}
            per_seed[str(seed)] = {k: finite_or_none(v) for k, v in metrics.items()}
            series[seed] = result.series
    metrics = {**seed_means(per_seed), "n_seeds": len(seeds), "seeds": per_seed}
    try:
        write_json(layout.metrics(name), metrics)
        if tracking.is_rank_zero():
            mlflow = tracking.client(uri)
            for i, seed in enumerate(seeds):
                run_id = (trained.get(str(seed)) or {}).get("run_id")
                run_id = log_seed(config, layout, name, entry, mlflow, uri, run_id, seed, per_seed[str(seed)], series[seed], plots=i == 0)
    except BaseException:
        leftovers.remove(layout.metrics(name), layout.plots(name), layout.samples(name))  # never half-written
        raise
    if tracking.is_rank_zero():
        leftovers.close_stale_runs(mlflow, config, layout)  # runs of killed trainings whose outputs are current again
    summary = ", ".join(f"{k} {v:.3g}" for k, v in metrics.items() if isinstance(v, (int, float)) and v is not None)
    print(f"evaluated {name} ({len(seeds)} seed{'s' if len(seeds) > 1 else ''}): {summary} -> {layout.metrics(name).relative_to(layout.root)}, {layout.plots(name).relative_to(layout.root)}/")
    return layout.metrics(name)


def evaluate_seed(config, layout, name: str, task, model, manifest, plots_dir: Path, seed: int) -> Evaluation:
    """The task's metrics and series of one seed's model (and its gradient flow, for recurrent models)."""
    import pytorch_lightning as pl

    exp = config.experiment(name)
    pl.seed_everything(seed, verbose=False)
    data_dir = layout.dataset(exp.dataset)
    extra = task.evaluation_inputs(config, layout, exp.dataset)
    result = task.evaluate(model, data_dir, manifest, plots_dir, seed, title=name, common=exp.common, **extra)
    flow_batch = task.gradient_flow_batch(data_dir, manifest, exp.common) if hasattr(model, "hidden_gradient_norms") else None
    if flow_batch is not None:
        from pipeline.evaluation.diagnostics import gradient_flow

        flow_metrics, flow_series = gradient_flow(model, flow_batch, seed, plots_dir, name)
        result = replace(result, metrics={**result.metrics, **flow_metrics}, series={**result.series, **flow_series})
    return result


def log_seed(config, layout, name: str, entry, mlflow, uri: str, run_id: str | None, seed: int, metrics: dict, series: dict, plots: bool) -> str:
    """Log a seed's metrics (and, for the first seed, the plots) into its training run."""
    exp = config.experiment(name)
    created = not run_id or not tracking.run_exists(mlflow, run_id)
    if created:
        # The training run is gone (deleted in the UI, another store): record the
        # evaluation in a new run and say why.
        experiment_id = tracking.experiment_id(mlflow, uri, tracking.experiment_name(config, exp.task), layout)
        tags = {**tracking.experiment_tags(config, layout, name, entry.family), "mlflow.runName": f"{name} seed {seed}", "zoo.seed": str(seed)}
        tags["zoo.note"] = f"training run {run_id or '(none)'} not found in {uri}; evaluation logged in a new run"
        run_id = mlflow.create_run(experiment_id, run_name=f"{name} seed {seed}", tags=tags).info.run_id
    # Into the finished training run as it is: its status and end time stay the training's, so
    # the runs table's Duration is how long the seed trained, not until DVC got to evaluating it.
    with leftovers.closed_on_failure(mlflow, run_id if created else None):
        tracking.log_metrics(mlflow, run_id, metrics, series)
        mlflow.log_artifact(run_id, str(layout.metrics(name)), "metrics")
        if plots:
            mlflow.log_artifacts(run_id, str(layout.plots(name)), "plots")
            mlflow.log_artifacts(run_id, str(layout.samples(name)), "samples")
    if created:
        mlflow.set_terminated(run_id, "FINISHED")
    return run_id
