"""The real pipeline, end to end: a copy of the repository with shrunken parameters, run by
``dvc repro`` as a user would (``pipeline_copy`` in conftest.py, shared with test_registry and
test_ui), then checked on disk and in the MLflow store."""

from __future__ import annotations

import copy
import json
import math
import re
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from conftest import PIPELINE_DATASETS as DATASETS, PIPELINE_EXPERIMENTS as EXPERIMENTS, run, write_params

pytestmark = pytest.mark.slow

PARITY_METRICS = {"accuracy", "accuracy_train_lengths", "accuracy_longer", "accuracy_max_length", "grad_log10_decay", "grad_log10_decay_init"}
EXPECTED_METRICS = {
    "parity-rnn": PARITY_METRICS,
    "parity-lstm": PARITY_METRICS,
    "ring-gan": {"modes_covered", "high_quality_pct", "reverse_kl"},
    "digits-cgan": {"frechet_distance", "classes_covered", "class_kl", "class_accuracy", "precision", "recall"},
}


def stages_run(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", output))


def test_every_stage_runs(pipeline_copy):
    dest, _, output = pipeline_copy
    expected = {f"{stage}@{name}" for stage in ("fetch", "reference") for name in DATASETS} | {"compare"}
    expected |= {f"{stage}@{name}" for stage in ("train", "evaluate") for name in EXPERIMENTS}
    assert stages_run(output) == expected
    # `zoo warm` served every stage from one process that imported torch, Lightning and MLflow
    recorded = [json.loads(line) for line in (dest / "logs" / "stages.jsonl").read_text().splitlines()]
    assert sorted(f"{e['stage']}@{e['target']}" if e["target"] else e["stage"] for e in recorded) == sorted(expected)
    assert all(e["warm"] for e in recorded), [e for e in recorded if not e["warm"]]
    assert f"zoo warm: {len(expected)} stage processes forked from the warm server (imports" in output


# The training record of every seed (pipeline.training.training_record); null where it does not apply.
RECORD_METRICS = {"plateau", "diverged", "epochs", "best_epoch", "diverged_step", "epochs_to_target"}
GRAD_NORM_METRICS = {"grad_norm_max", "grad_norm_p50", "grad_norm_p90", "grad_norm_p99"}  # automatic optimisation only
MAY_BE_NULL = {"diverged_step", "epochs_to_target", "best_epoch"}


def expected_seed_metrics(name: str) -> set[str]:
    return EXPECTED_METRICS[name] | RECORD_METRICS | (GRAD_NORM_METRICS if name.startswith("parity") else set())


def test_metrics_files_have_the_expected_finite_values(pipeline_copy):
    dest, env, _ = pipeline_copy
    for name in EXPERIMENTS:
        metrics = json.loads((dest / "metrics" / f"{name}.json").read_text())
        assert metrics["n_seeds"] == len(metrics["seeds"]) == 1  # shrink(): the first seed only
        assert set(metrics) == expected_seed_metrics(name) | {"n_seeds", "seeds"}
        (per_seed,) = metrics["seeds"].values()
        assert set(per_seed) == expected_seed_metrics(name)
        for key, value in per_seed.items():
            assert (value is None and key in MAY_BE_NULL) or (isinstance(value, (int, float)) and math.isfinite(value)), (name, key, value)
            assert metrics[key] == pytest.approx(value)  # one seed: the mean is its value
        assert per_seed["diverged"] == 0.0 and per_seed["epochs"] == 1
    shown = json.loads(run(["dvc", "metrics", "show", "--json"], dest, env))
    listed = {Path(p).stem for entry in shown.values() for p in entry["data"]}
    assert set(EXPERIMENTS) <= listed
    assert (dest / "reports" / "leaderboard.md").is_file()
    assert (dest / "plots" / "parity-lstm" / "accuracy_by_length.png").stat().st_size > 1000
    assert (dest / "plots" / "ring-gan" / "samples.png").stat().st_size > 1000
    assert (dest / "plots" / "digits-cgan" / "samples_per_class.png").stat().st_size > 1000
    reference = json.loads((dest / "metrics" / "reference-digits.json").read_text())
    assert reference["accuracy"] > 0.5 and reference["classes_covered"] == 10
    assert json.loads((dest / "metrics" / "reference-ring.json").read_text()) == {}  # not images: nothing trained
    board = (dest / "reports" / "leaderboard.md").read_text()
    assert "| — | real held-out images | reference classifier, test accuracy" in board


def test_mlflow_holds_one_finished_run_per_experiment(pipeline_copy):
    from mlflow.tracking import MlflowClient

    dest, _, _ = pipeline_copy
    client = MlflowClient(tracking_uri=f"sqlite:///{dest / 'mlflow.db'}")
    exp = client.get_experiment_by_name("rnngan-zoo")  # the report's and the reference classifiers'
    assert client.search_runs([exp.experiment_id], "tags.`zoo.kind` = 'experiment'") == []
    runs = []
    for task in ("parity", "mixture-2d", "images"):  # one MLflow experiment per task
        found = client.search_runs([client.get_experiment_by_name(f"rnngan-zoo/{task}").experiment_id], "tags.`zoo.kind` = 'experiment'")
        assert found and all(r.data.tags["zoo.task"] == task for r in found)
        runs += found
    assert sorted(r.data.tags["zoo.experiment"] for r in runs) == sorted(EXPERIMENTS)  # one seed each (shrink)
    for r in runs:
        name, seed = r.data.tags["zoo.experiment"], r.data.tags["zoo.seed"]
        assert r.info.run_name == f"{name} seed {seed}" and r.data.params["seed"] == seed
        assert r.info.status == "FINISHED"
        assert r.data.tags["mlflow.source.git.commit"]
        assert r.data.params["batch_size"] and r.data.params["trainer.max_epochs"] == "1"
        assert not any(key.startswith("model.") for key in r.data.params)  # each model setting once, under its own name
        metrics = json.loads((dest / "metrics" / f"{name}.json").read_text())["seeds"][seed]
        for key, value in metrics.items():
            if value is not None:
                assert r.data.metrics[key] == pytest.approx(value)
        loss = "val_loss" if name.startswith("parity") else "val_d_loss"
        assert len(client.get_metric_history(r.info.run_id, loss)) == 1  # one epoch
        artifacts = {f.path for f in client.list_artifacts(r.info.run_id)}
        assert {"model", "metrics", "plots"} <= artifacts
        assert [f.path for f in client.list_artifacts(r.info.run_id, "model")] == ["model/model.ckpt"]
        assert json.loads((dest / "models" / name / "run.json").read_text())["seeds"][seed]["run_id"] == r.info.run_id
    references = client.search_runs([exp.experiment_id], "tags.`zoo.kind` = 'reference'")
    assert [r.info.run_name for r in references] == ["reference-digits"]
    assert references[0].data.metrics["accuracy"] == pytest.approx(json.loads((dest / "metrics" / "reference-digits.json").read_text())["accuracy"])
    reports = client.search_runs([exp.experiment_id], "tags.`zoo.kind` = 'report'")
    assert len(reports) == 1
    assert "reports/leaderboard.md" in {f.path for f in client.list_artifacts(reports[0].info.run_id, "reports")}


def test_second_repro_runs_nothing_and_one_change_reruns_one_experiment(pipeline_copy):
    dest, env, _ = pipeline_copy
    again = run(["dvc", "repro"], dest, env)
    assert stages_run(again) == set()
    assert "up to date" in again

    params = yaml.safe_load((dest / "params.yaml").read_text())
    params["experiments"]["parity-rnn"]["hidden_size"] = 16
    write_params(dest, params)
    changed = run(["zoo", "warm", "dvc", "repro"], dest, env)  # as `make repro` runs it
    assert stages_run(changed) == {"train@parity-rnn", "evaluate@parity-rnn", "compare"}

    # a new reference classifier retrains and re-evaluates the image GANs on its dataset (their
    # plateau metric is measured in its features), and nothing else
    params["references"]["digits"]["epochs"] = 3
    write_params(dest, params)
    retrained = stages_run(run(["zoo", "warm", "dvc", "repro"], dest, env))
    assert {"reference@digits", "train@digits-cgan", "evaluate@digits-cgan", "compare"} <= retrained
    assert not any(s.startswith("fetch@") for s in retrained)
    assert {s for s in retrained if s.startswith(("train@", "evaluate@"))} == {"train@digits-cgan", "evaluate@digits-cgan"}


def test_dvc_plots_show_renders_the_training_curves_of_every_experiment(pipeline_copy):
    dest, env, _ = pipeline_copy
    shown = json.loads(run(["dvc", "plots", "show", "--json"], dest, env))
    assert not shown.get("errors"), shown["errors"]
    for name in EXPERIMENTS:
        (plot,) = shown["data"][f"curves/{name}.csv"]
        assert plot["type"] == "vega"
        spec = plot["content"]
        assert spec["facet"]["field"] == "metric"  # .dvc/plots/training-curves.json
        rows = spec["data"]["values"]
        epochs = {int(r["epoch"]) for r in rows}
        assert epochs == set(range(1, max(epochs) + 1)) and max(epochs) >= 1
        metrics = {r["metric"] for r in rows}
        assert ({"d_loss", "g_loss"} if "gan" in name else {"loss", "accuracy"}) <= metrics, metrics
        assert {r["split"] for r in rows} == {"train", "validation"}
        assert all(math.isfinite(float(r["value"])) for r in rows)


# Every file `zoo compare` reads, as dvc.yaml must declare it (a dep, or inside one): editing any
# of them must make DVC rerun the comparison.
COMPARE_INPUTS = {
    "metrics/parity-rnn.json": "metrics",
    "metrics/reference-digits.json": "metrics",  # the real images' sanity row, claim 10
    "models/parity-rnn/run.json": "models",  # MLflow run ids, parameter counts
    "plots/parity-rnn/accuracy_by_length.csv": "plots",
    "plots/ring-gan/samples.png": "plots",  # reports/index.html embeds it
    "curves/parity-rnn.csv": "curves",  # the comparison plots' curves
    "data/raw/parity/manifest.json": "data/raw",  # parity's longest training length
    "pipeline/tasks/parity.py": "pipeline/tasks",
    "lightning_modules/__init__.py": "lightning_modules/__init__.py",
    **{f"pipeline/reporting/{f}": "pipeline/reporting" for f in ("claims.py", "report_page.py", "registry.py")},
    **{f"pipeline/{f}": f"pipeline/{f}" for f in ("training/history.py", "plumbing/tracking.py", "stages/compare.py")},
}


def compare_status(dest: Path, env: dict) -> dict:
    return json.loads(run(["dvc", "status", "compare", "--json"], dest, env)).get("compare", [{}])[0].get("changed deps", {})


def test_editing_any_input_of_compare_makes_dvc_rerun_it(pipeline_copy):
    dest, env, _ = pipeline_copy
    run(["dvc", "repro"], dest, env)  # whatever an earlier test changed
    assert compare_status(dest, env) == {}
    for rel, dep in COMPARE_INPUTS.items():
        path = dest / rel
        original = path.read_bytes()
        try:
            path.write_bytes(original + b"\n")
            assert compare_status(dest, env) == {dep: "modified"}, rel
        finally:
            path.write_bytes(original)
    params = yaml.safe_load((dest / "params.yaml").read_text())
    for section, body in (("experiments", "parity-rnn"), ("defaults", "parity")):
        changed = copy.deepcopy(params)
        changed[section][body]["lr"] = 0.01
        write_params(dest, changed)
        try:
            assert compare_status(dest, env) == {"params.yaml": {section: "modified"}}
        finally:
            write_params(dest, params)
    assert compare_status(dest, env) == {}


def test_a_two_point_sweep_queued_with_dvc_exp_runs_both_at_once_and_dvc_exp_show_lists_them(pipeline_copy, tmp_path):
    """README's sweep: queue two values of one experiment's setting, run the queue with two
    workers (both at once, in DVC's temporary copies), then compare them."""
    from mlflow.tracking import MlflowClient

    dest, env, _ = pipeline_copy
    run(["dvc", "repro"], dest, env)
    # the sweep's MLflow runs and champions in a store of their own: test_registry reads the pipeline's
    store = f"sqlite:///{tmp_path / 'sweep.db'}"
    env = {**env, "MLFLOW_TRACKING_URI": store}
    run(["git", "add", "-A"], dest, env)  # the baseline: this pipeline, built (dvc.lock)
    run(["git", "commit", "-qm", "built", "--allow-empty"], dest, env)
    run(["dvc", "exp", "run", "--queue", "-S", "++experiments.parity-rnn.hidden_size=8,12"], dest, env)
    # README's way: two queue workers in the background, then the queue's status until both
    # points are done (not `dvc exp run --run-all`, which waits for the workers to exit: a worker
    # can outlive its empty queue, treeverse/dvc#10398, and hang it), then each point's log
    run(["dvc", "queue", "start", "-j", "2"], dest, env)
    deadline = time.monotonic() + 600
    while True:
        status = run(["dvc", "queue", "status"], dest, env)
        tasks = [line.split() for line in status.splitlines() if re.match(r"[0-9a-f]{7} ", line)]
        if len(tasks) == 2 and all(task[-1] in ("Success", "Failed") for task in tasks):
            break
        assert time.monotonic() < deadline, status
        time.sleep(2)
    run(["dvc", "queue", "stop"], dest, env)  # a worker left waiting on the empty queue goes too
    assert [task[-1] for task in tasks] == ["Success", "Success"], status
    ran = [stage for task in tasks for stage in re.findall(r"Running stage '([^']+)'", run(["dvc", "queue", "logs", task[0]], dest, env))]
    # each point reruns only its experiment and the comparison (the rest: DVC's run-cache)
    assert sorted(ran) == sorted(2 * ["train@parity-rnn", "evaluate@parity-rnn", "compare"]), ran

    shown = json.loads(run(["dvc", "exp", "show", "--json"], dest, env))
    (baseline,) = [entry for entry in shown if entry.get("experiments")]
    points = {}
    for exp in baseline["experiments"]:
        (revision,) = exp["revs"]
        assert revision["error"] is None, revision
        hidden = revision["data"]["params"]["params.yaml"]["data"]["experiments"]["parity-rnn"]["hidden_size"]
        points[hidden] = revision["data"]["metrics"]["metrics/parity-rnn.json"]["data"]  # read from DVC's cache
    assert sorted(points) == [8, 12]
    assert all(0.0 <= m["accuracy"] <= 1.0 and m["n_seeds"] == 1 for m in points.values())
    # both runs, trained at once in two temporary copies, landed in the one store the sweep named
    client = MlflowClient(store)
    runs = client.search_runs([client.get_experiment_by_name("rnngan-zoo/parity").experiment_id], "tags.`zoo.kind` = 'experiment'")
    assert sorted((r.info.status, r.data.params["hidden_size"]) for r in runs) == [("FINISHED", "12"), ("FINISHED", "8")]
    # `dvc plots diff` between the two draws both on one comparison plot
    names = [exp["revs"][0]["name"] for exp in baseline["experiments"]]
    diff = json.loads(run(["dvc", "plots", "diff", *names, "--json", "--targets", "comparison/by_length/parity.csv"], dest, env))
    assert not diff.get("errors"), diff["errors"]
    (plot,) = diff["data"]["comparison/by_length/parity.csv"]
    assert {r["rev"] for r in plot["content"]["data"]["values"]} == set(names)


def test_dvc_plots_show_opens_on_each_tasks_experiments_overlaid_and_loads_every_plot(pipeline_copy):
    dest, env, _ = pipeline_copy
    proc = subprocess.run(["dvc", "plots", "show"], cwd=dest, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "failed to load" not in proc.stdout + proc.stderr, proc.stderr  # no samples.txt among the plots
    shown = json.loads(run(["dvc", "plots", "show", "--json"], dest, env))
    ids = list(shown["data"])
    comparisons = ["comparison/by_length/parity.csv", "comparison/curves/images-digits.csv", "comparison/curves/mixture-2d-ring.csv", "comparison/curves/parity.csv"]
    assert sorted(ids[: len(comparisons)]) == comparisons  # dvc.yaml's top-level plots come first

    def lines(plot_id):
        (plot,) = shown["data"][plot_id]
        spec = plot["content"]
        assert spec["spec"]["encoding"]["color"]["field"] == "experiment"  # .dvc/plots/compare.json
        return spec, {(r["experiment"], r["metric"]) for r in spec["data"]["values"]}

    spec, drawn = lines("comparison/curves/parity.csv")
    assert spec["spec"]["encoding"]["x"]["field"] == "epoch"
    assert drawn == {(n, m) for n in ("parity-rnn", "parity-lstm") for m in ("accuracy (validation)", "loss (validation)")}
    _, drawn = lines("comparison/curves/mixture-2d-ring.csv")
    assert {m for _, m in drawn} == {"d_loss (train)", "g_loss (train)", "modes_covered (validation)", "mode_mass_pct (validation)"}
    spec, drawn = lines("comparison/by_length/parity.csv")
    assert spec["spec"]["encoding"]["x"]["field"] == "length" and drawn == {("parity-rnn", "accuracy"), ("parity-lstm", "accuracy")}
    lengths = sorted(int(r["length"]) for r in spec["data"]["values"] if r["experiment"] == "parity-rnn")
    assert lengths == sorted(set(lengths)) and len(lengths) > 1  # one point per length, not per row
    # each experiment's own curve, against its length too
    (own,) = shown["data"]["plots/parity-rnn/accuracy_by_length.csv"]
    assert own["content"]["encoding"]["x"]["field"] == "length"
