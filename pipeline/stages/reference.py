"""``zoo reference DATASET``: train the reference classifier of an image dataset.

Writes ``models/reference-<dataset>/`` (``classifier.pt``, ``reference.json``) and
``metrics/reference-<dataset>.json``: its test accuracy and the image metrics of the held-out
real test images (the leaderboard's sanity row: Fréchet distance near 0, every class covered,
precision and recall near 1). Logged to an MLflow run of its own (tag ``zoo.kind = reference``).

``dvc.yaml`` runs this stage for every dataset, so that each evaluate stage can depend on
``models/reference-<its dataset>``: for a dataset that is not images the folder holds only
``reference.json`` saying so and the metrics file is empty; nothing is trained.
"""

from __future__ import annotations

import time
from pathlib import Path

from pipeline.plumbing import tracking
from pipeline.plumbing.atomic import atomic_dir, write_json
from pipeline.plumbing.startup import import_heavy

KIND_REFERENCE = "reference"


def reference(config, layout, dataset: str) -> Path:
    from pipeline.datasets.images import IMAGE_SOURCES  # light: no torch for the note-only case

    source = config.dataset(dataset).source
    folder, metrics_path = layout.reference_dir(dataset), layout.reference_metrics(dataset)
    if source not in IMAGE_SOURCES:
        with atomic_dir(folder) as tmp:
            write_json(tmp / "reference.json", {"dataset": dataset, "classifier": None, "why": f"source '{source}' is not images"})
        write_json(metrics_path, {})
        print(f"reference {dataset}: not an image dataset, nothing to train -> {folder.relative_to(layout.root)}/")
        return folder

    import_heavy("torch", "mlflow")

    import torch

    from pipeline.evaluation.reference_classifier import accuracy, save_reference, train_reference
    from pipeline.stages.fetch import verify
    from pipeline.tasks.images import image_metrics, load_images, n_classes_of

    manifest = verify(config, layout, dataset)
    uri = tracking.resolve_uri(config, layout)
    tracking.check_reachable(uri)
    settings = config.reference(dataset)
    data_dir = layout.dataset(dataset)
    train, val, test = (load_images(data_dir, split) for split in ("train", "val", "test"))
    n_classes = n_classes_of(data_dir)
    started = time.perf_counter()
    model, history = train_reference(train, val, n_classes, settings, config.seed)
    fit_seconds = time.perf_counter() - started
    real_features, _ = model.read(torch.from_numpy(train["x"]))
    metrics = {
        "accuracy": accuracy(model, test["x"], test["label"]),
        "val_accuracy": max(h["val_accuracy"] for h in history),
        **image_metrics(model, real_features, torch.from_numpy(test["x"]), n_classes, requested=test["label"]),
    }
    with atomic_dir(folder) as tmp:
        save_reference(model, tmp)
        write_json(tmp / "reference.json", {
            "dataset": dataset, "classifier": "classifier.pt", "settings": settings.model_dump(),
            "n_train": len(train["x"]), "n_test": len(test["x"]), "history": history, "fit_seconds": fit_seconds,
            "data_sha256": {k: v["sha256"] for k, v in manifest["files"].items()},
        })
    write_json(metrics_path, metrics)

    run_id = None
    if tracking.is_rank_zero():
        mlflow = tracking.client(uri)
        experiment_id = tracking.experiment_id(mlflow, uri, config.tracking.experiment, layout)
        name = f"reference-{dataset}"
        tags = {"zoo.kind": KIND_REFERENCE, "zoo.dataset": dataset, "mlflow.runName": name}
        commit = tracking.git_commit(layout.root)
        if commit:
            tags["mlflow.source.git.commit"] = commit
        run_id = mlflow.create_run(experiment_id, run_name=name, tags=tags).info.run_id
        tracking.log_params(mlflow, run_id, {**settings.model_dump(), "dataset": dataset, "seed": config.seed})
        series = {"val_accuracy": {h["epoch"]: h["val_accuracy"] for h in history}, "train_loss": {h["epoch"]: h["train_loss"] for h in history}}
        tracking.log_metrics(mlflow, run_id, {**metrics, "time_fit_s": fit_seconds}, series)
        mlflow.log_artifacts(run_id, str(folder), "reference")
        mlflow.log_artifact(run_id, str(metrics_path), "metrics")
        mlflow.set_terminated(run_id, "FINISHED")
    summary = ", ".join(f"{k} {v:.3g}" for k, v in metrics.items())
    print(f"reference {dataset} in {fit_seconds:.1f} s: {summary} -> {folder.relative_to(layout.root)}/ (MLflow run {run_id})")
    return folder
