"""``zoo evaluate EXPERIMENT``: measure the trained model on its task's test data.

Writes ``metrics/<experiment>.json`` (flat keys: DVC metrics) and ``plots/<experiment>/``,
and logs both into the experiment's MLflow run (from ``models/<experiment>/run.json``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from pipeline import tracking
from pipeline.atomic import atomic_dir, write_json
from pipeline.errors import ModelError
from pipeline.stages.train import quiet_lightning
from pipeline.startup import import_heavy, stage_modules
from pipeline.tasks.base import Evaluation


def load_model(cls, model_name: str, checkpoint: Path):
    if not checkpoint.is_file():
        raise ModelError(f"{checkpoint} does not exist: train the experiment first (`zoo train {checkpoint.parent.name}`)")
    try:
        return cls.load_from_checkpoint(str(checkpoint), map_location="cpu")
    except Exception as exc:  # torch raises many kinds for a corrupt or foreign file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"cannot load checkpoint {checkpoint} as model '{model_name}': {first[:200]}") from exc


def evaluate(config, layout, name: str) -> Path:
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
    model = load_model(entry.cls_for(task.head), entry.name, layout.checkpoint(name))

    import pytorch_lightning as pl

    seed = config.experiment_seed(name)
    pl.seed_everything(seed, verbose=False)
    with atomic_dir(layout.plots(name)) as plots_tmp:
        data_dir = layout.dataset(exp.dataset)
        extra = task.evaluation_inputs(config, layout, exp.dataset)
        result = task.evaluate(model, data_dir, manifest, plots_tmp, seed, title=name, common=exp.common, **extra)
        flow_batch = task.gradient_flow_batch(data_dir, manifest, exp.common) if hasattr(model, "hidden_gradient_norms") else None
        if flow_batch is not None:
            from pipeline.diagnostics import gradient_flow

            flow_metrics, flow_series = gradient_flow(model, flow_batch, seed, plots_tmp, name)
            result = Evaluation({**result.metrics, **flow_metrics}, {**result.series, **flow_series})
    metrics = {k: (v if v is None or math.isfinite(v) else None) for k, v in result.metrics.items()}
    write_json(layout.metrics(name), metrics)

    run_id = None
    if tracking.is_rank_zero():
        mlflow = tracking.client(uri)
        run_file = layout.run_file(name)
        run_info = json.loads(run_file.read_text()) if run_file.is_file() else {}
        run_id = run_info.get("run_id")
        if not run_id or not tracking.run_exists(mlflow, run_id):
            # The training run is gone (deleted in the UI, another store): record the
            # evaluation in a new run and say why.
            experiment_id = tracking.experiment_id(mlflow, uri, tracking.experiment_name(config, exp.task), layout)
            tags = tracking.experiment_tags(config, layout, name, entry.family)
            tags["zoo.note"] = f"training run {run_id or '(none)'} not found in {uri}; evaluation logged in a new run"
            run_id = mlflow.create_run(experiment_id, run_name=name, tags=tags).info.run_id
        else:
            mlflow.update_run(run_id, status="RUNNING")
        tracking.log_metrics(mlflow, run_id, metrics, result.series)
        mlflow.log_artifact(run_id, str(layout.metrics(name)), "metrics")
        mlflow.log_artifacts(run_id, str(layout.plots(name)), "plots")
        mlflow.set_terminated(run_id, "FINISHED")
    summary = ", ".join(f"{k} {v:.3g}" for k, v in metrics.items() if v is not None)
    print(f"evaluated {name}: {summary} -> {layout.metrics(name).relative_to(layout.root)}, {layout.plots(name).relative_to(layout.root)}/ (MLflow run {run_id})")
    return layout.metrics(name)
