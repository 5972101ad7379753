"""``zoo compare``: the leaderboard, one table per task, best first.

Reads ``metrics/<experiment>.json``, ``models/<experiment>/run.json``, ``plots/<experiment>/``
and ``curves/<experiment>.csv`` of every experiment in ``params.yaml``; writes
``reports/leaderboard.md`` and the side-by-side plots, the data of DVC's comparison plots
(``comparison/curves/<table>.csv``, ``comparison/by_length/<table>.csv``: dvc.yaml's top-level ``plots``),
``reports/claims.md`` (the tutorial's claims judged by ``pipeline.reporting.claims``) and
``reports/index.html`` (all of it on one self-contained page, pictures embedded), and logs
them to an MLflow run of their own (tag ``zoo.kind = report``, a ``zoo.claim.<n>`` tag per verdict)
in the experiment ``tracking.experiment``. Then the best seed of the best experiment of each
table becomes the ``champion`` of its model in the MLflow model registry (``pipeline.reporting.registry``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from pipeline.plumbing import leftovers, tracking
from pipeline.reporting import claims, published
from pipeline.plumbing.atomic import atomic_dir


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


@dataclass(frozen=True)
class Cell:
    """A table cell, written the same way to Markdown and HTML."""

    text: str
    code: bool = False  # a name: `name` / <code>
    href: Optional[str] = None


@dataclass(frozen=True)
class Table:
    task: str
    dataset: str
    intro: str
    header: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    numeric_from: int = 3  # columns from this one on (but the last ``text_after``) are right-aligned
    sanity_rows: int = 0  # the first rows: unranked sanity checks (real data)
    text_after: int = 2  # the last columns (paper, notes, MLflow run) are text
    footnotes: tuple[str, ...] = ()  # published figures' sources, numbered as the "paper" cells cite them

    @property
    def title(self) -> str:
        return f"{self.task} on `{self.dataset}`"

    def numeric(self, column: int) -> bool:
        return self.numeric_from <= column < len(self.header) - self.text_after


def groups(config, tasks):
    """(task, dataset, experiment names): one leaderboard table each, in task order."""
    for task in tasks.values():
        datasets = dict.fromkeys(e.dataset for e in config.experiments.values() if e.task == task.name)
        for dataset in datasets:
            yield task, dataset, [n for n, e in config.experiments.items() if e.task == task.name and e.dataset == dataset]


def ranking_of(task) -> tuple[tuple[str, bool], ...]:
    """The task's leaderboard order: (metric, higher is better), each breaking the ties of the one before."""
    return tuple(task.ranking) or ((task.primary, task.higher_is_better),)


def _stat(values) -> Optional[claims.Stat]:
    finite = tuple(float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v))
    return claims.Stat(finite) if finite else None


@dataclass(frozen=True)
class Row:
    """One experiment of a leaderboard table: its config, ``metrics/<name>.json`` and ``run.json``."""

    name: str
    exp: Any
    metrics: dict
    run: dict

    @property
    def seeds(self) -> dict[str, dict]:
        return claims.per_seed(self.metrics)

    def stat(self, key: str) -> Optional[claims.Stat]:
        """``key`` over the seeds where it is finite; None where it is nowhere."""
        return _stat(m.get(key) for m in self.seeds.values())

    def capped(self) -> list[str]:
        """Seeds that stopped at the epoch cap (not on their plateau, not diverged)."""
        if "seeds" not in self.metrics:
            return []
        return [s for s, m in self.seeds.items() if isinstance(m.get("plateau"), (int, float)) and m["plateau"] < 1 and not m.get("diverged")]

    def diverged(self) -> list[str]:
        return [s for s, m in self.seeds.items() if m.get("diverged")]

    def rank_key(self, ranking) -> tuple:
        return tuple(_order(self.stat(key), higher) for key, higher in ranking)

    def best_seed(self, ranking) -> Optional[str]:
        """The seed that ranks first by ``ranking`` on its own values (None: no seed has the first metric)."""
        scored = [(tuple(_order(_stat([m.get(k)]), h) for k, h in ranking), s) for s, m in self.seeds.items()]
        scored = [(key, s) for key, s in scored if key[0][0] == 0]
        return min(scored)[1] if scored else None

    def run_id(self, seed: Optional[str]) -> Optional[str]:
        """The MLflow run of ``seed`` (run.json's ``seeds``), or the one run of an older run.json."""
        seeds = self.run.get("seeds")
        if isinstance(seeds, dict):
            return (seeds.get(seed) or {}).get("run_id") if seed is not None else None
        return self.run.get("run_id")


def _order(stat: Optional[claims.Stat], higher_is_better: bool) -> tuple[int, float]:
    if stat is None:
        return (1, 0.0)  # unmeasured: last
    return (0, -stat.mean if higher_is_better else stat.mean)


def ranked(config, layout):
    """(task, dataset, rows best first) per leaderboard table; a row is a ``Row``, ranked by the
    task's ``ranking`` on the means over seeds (lexicographic), unmeasured ones last."""
    from pipeline.tasks import TASKS

    for task, dataset, names in groups(config, TASKS):
        rows = [Row(name, config.experiments[name], _read(layout.metrics(name)) or {}, _read(layout.run_file(name)) or {}) for name in names]
        rows.sort(key=lambda row, ranking=ranking_of(task): row.rank_key(ranking))
        yield task, dataset, rows


def close_to(row: Row, above: Row, ranking) -> bool:
    """``row`` not separated from the one ranked above it: on the first ranking metric where
    their means differ, Welch's two-sided test at 5 % does not reject equal means (or every
    mean is equal). Unknown (False) where a side has fewer than two seeds."""
    for key, higher in ranking:
        a, b = row.stat(key), above.stat(key)
        if a is None or b is None:
            return False
        if a.mean != b.mean:
            if a.n < 2 or b.n < 2:
                return False
            return claims.welch(a, b, higher).within_noise
    return True


def _fmt(fmt: str, n: int) -> str:
    """A column's format for a mean over ``n`` seeds: a whole-number column gets one decimal."""
    return fmt.replace("{:.0f}", "{:.1f}") if n > 1 else fmt


def _value(col, row_seeds: int, stat: Optional[claims.Stat]) -> Cell:
    if stat is None:
        return Cell("—")
    fmt = _fmt(col.fmt, stat.n)
    text = stat.text(fmt.format)
    return Cell(text + (f" (n = {stat.n})" if stat.n < row_seeds else ""))


def _notes(row: Row) -> str:
    def seeds(label, which):
        return f"{label} (seed{'s' if len(which) > 1 else ''} {', '.join(which)})" if which else ""

    return "; ".join(t for t in (seeds("epoch cap", row.capped()), seeds("diverged", row.diverged())) if t)


def _intro(task, ranking) -> str:
    def one(key, higher):
        return f"`{key}` ({'higher' if higher else 'lower'} is better)"

    order = one(*ranking[0]) + "".join(f", ties broken by {one(*k)}" if i == 0 else f", then {one(*k)}" for i, k in enumerate(ranking[1:]))
    return f"{task.description}. Ranked by {order}, on the means over seeds."


def tables(config, layout, ranking=None) -> list[Table]:
    """The leaderboard: one table per (task, dataset), best first, sanity rows on top; a
    "paper" column where ``pipeline.reporting.published`` has figures for the task on that data."""
    from lightning_modules import MODELS

    out = []
    for task, dataset, rows in ranking if ranking is not None else ranked(config, layout):
        order = ranking_of(task)
        sources = published.for_table(task.name, config.datasets[dataset]) if dataset in config.datasets else []
        paper = ("paper",) if sources else ()
        header = ("#", "experiment", "model", "parameters", "seeds", *(c.label for c in task.columns), *paper, "notes", "MLflow run")
        cells = []
        for label, description, metrics in task.extra_rows(dataset, layout):
            values = (_value(c, 1, _stat([metrics.get(c.key)])) for c in task.columns)
            cells.append((Cell("—"), Cell(label), Cell(description), Cell("—"), Cell("—"), *values, *(Cell("") for _ in paper), Cell(""), Cell("sanity check")))
        for i, row in enumerate(rows):
            n = len(row.seeds) if row.metrics else 0
            seed = row.best_seed(order)
            run_id = row.run_id(seed)
            if run_id:
                label = run_id[:8] + (f" (seed {seed})" if "seeds" in row.run else "")
                link = Cell(label, code=True, href=tracking.ui_link({"experiment_id": row.run.get("experiment_id"), "run_id": run_id}))
            else:
                link = Cell("not trained")
            rank = str(i + 1) + (" ≈" if i and close_to(row, rows[i - 1], order) else "")
            parameters = row.run.get("parameters")
            cells.append(
                (Cell(rank), Cell(row.name, code=True), Cell(f"{row.exp.model} ({MODELS[row.exp.model].description})"),
                 Cell(f"{parameters:,}" if isinstance(parameters, int) else "—"), Cell(str(n) if n else "—"),
                 *(_value(c, n, row.stat(c.key)) for c in task.columns), *(_paper(row.exp, sources, task.columns) for _ in paper),
                 Cell(_notes(row)), link)
            )
        extra = len(cells) - len(rows)
        notes = tuple(published.footnote(i + 1, s, task.columns) for i, s in enumerate(sources))
        out.append(Table(task.name, dataset, _intro(task, order), header, tuple(cells), sanity_rows=extra,
                         text_after=2 + len(paper), footnotes=notes))
    return out


def _paper(experiment, sources, columns) -> Cell:
    """The published figure of ``experiment``'s model on this table's data, citing its source."""
    for i, source in enumerate(sources):
        figure = source.figure_for(experiment)
        if figure is not None:
            return Cell(f"{figure.label}: {published.describe(figure, columns)} [{i + 1}]")
    return Cell("—")


LEGEND = (
    "Each number is the mean ± the standard deviation over the experiment's seeds (\"seeds\" = n; "
    "\"(n = k)\" where a metric is finite in fewer). Rows are ranked on the means, by the table's metrics in turn. "
    "**≈** next to a rank: not separated from the row above by Welch's two-sided t-test at 5 % on the first "
    "metric where their means differ (within the seeds' spread). Notes: **epoch cap**: a seed stopped at "
    "`max_epochs` before its plateau (its number may still be rising); **diverged**: a seed's loss became "
    "non-finite (its number is from before). The MLflow run is the best seed's, the one registered as champion."
)


def _markdown_cell(cell: Cell) -> str:
    text = f"`{cell.text}`" if cell.code else cell.text.replace("|", "\\|")
    return f"[{text}]({cell.href})" if cell.href else text


def leaderboard_markdown(boards: list[Table], plots: list[str] = ()) -> str:
    lines = [
        "# Leaderboard",
        "",
        "Generated by `zoo compare` from `metrics/` and the MLflow runs; do not edit by hand.",
        "Open a run with `make ui` (the links assume its default address).",
        "The tutorial's claims, judged on these numbers: [claims.md](claims.md); everything on one page: [index.html](index.html).",
        "",
        LEGEND,
        "",
    ]
    for table in boards:
        lines += [f"## {table.title}", "", table.intro, ""]
        lines.append("| " + " | ".join(table.header) + " |")
        lines.append("|" + "|".join("---:" if table.numeric(i) else "---" for i in range(len(table.header))) + "|")
        lines += ["| " + " | ".join(_markdown_cell(c) for c in row) + " |" for row in table.rows]
        lines.append("")
        if table.footnotes:
            lines += ["Published figures (**paper**; compare like with like: the settings differ as stated):", ""]
            lines += [f"- {note}" for note in table.footnotes] + [""]
    if plots:
        lines += ["## Plots", ""] + [f"![{name}]({name})" for name in plots] + [""]
    return "\n".join(lines)


def leaderboard(config, layout) -> str:
    return leaderboard_markdown(tables(config, layout))


def evidence(config, layout) -> dict[str, dict]:
    """What the claims read: every experiment's metrics with its parameter count, and the
    reference classifiers' scores on real images as ``reference-<dataset>``."""
    out = {}
    for name in config.experiments:
        metrics = _read(layout.metrics(name))
        if metrics is None:
            continue
        run = _read(layout.run_file(name)) or {}
        if isinstance(run.get("parameters"), (int, float)):
            metrics["parameters"] = run["parameters"]
        out[name] = metrics
    for dataset in config.datasets:
        metrics = _read(layout.reference_metrics(dataset))
        if metrics:
            out[f"reference-{dataset}"] = metrics
    return out


def profile_experiments(config) -> set[str]:
    """What this profile trains, as the claims name it: its experiments, and the reference
    classifier of each of its datasets (``reference-<dataset>``, as ``evidence`` reads them)."""
    return set(config.experiments) | {f"reference-{dataset}" for dataset in config.datasets}


def gallery(config, layout) -> list[tuple[str, list[tuple[str, Path]]]]:
    """(task on dataset, [(experiment, picture)]): the pictures each task names in ``gallery``."""
    from pipeline.tasks import TASKS

    out = []
    for task, dataset, names in groups(config, TASKS):
        pictures = [(name, layout.plots(name) / f) for name in names for f in task.gallery if (layout.plots(name) / f).is_file()]
        if pictures:
            out.append((f"{task.name} on {dataset}", pictures))
    return out


# plots/<experiment>/: length, then the metric (accuracy, exact_match; the seq2seq tasks' BLEU)
BY_LENGTH = ("accuracy_by_length.csv", "bleu_by_length.csv")


def table_id(task, dataset: str) -> str:
    """A table's file name: its task, and its dataset where that is another name."""
    return task.name if dataset == task.name else f"{task.name}-{dataset}"


def _csv(path: Path, header: str, rows: list[tuple]) -> Optional[Path]:
    if not rows:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + "\n" + "".join(",".join(str(v) for v in row) + "\n" for row in rows), encoding="utf-8")
    return path


def comparison_data(config, layout, out_dir: Path) -> list[Path]:
    """The data of DVC's comparison plots, one long CSV per table (task on dataset), an
    ``experiment`` column telling the experiments apart (``.dvc/plots/compare.json`` draws a
    line per experiment, a panel per metric):

    - ``curves/<table>.csv`` (epoch, experiment, metric, value): the per-epoch means of
      ``curves/<experiment>.csv`` that the task names in ``compare_curves``;
    - ``by_length/<table>.csv`` (length, experiment, metric, value): each experiment's
      ``plots/<experiment>/accuracy_by_length.csv`` and ``bleu_by_length.csv``, where its task
      writes them (a panel per metric).
    """
    import csv

    from pipeline.training.history import SPLITS, read_csv
    from pipeline.tasks import TASKS

    written = []
    for task, dataset, names in groups(config, TASKS):
        wanted = [(SPLITS[key.partition("_")[0]], key.partition("_")[2]) for key in task.compare_curves]
        curves, by_length = [], []
        for name in names:
            if layout.curves(name).is_file():
                rows = read_csv(layout.curves(name))
                for split, metric in wanted:
                    curves += [(r["epoch"], name, f"{metric} ({split})", r["value"]) for r in rows if (r["split"], r["metric"]) == (split, metric)]
            for file in BY_LENGTH:
                if (layout.plots(name) / file).is_file():
                    with open(layout.plots(name) / file, newline="", encoding="utf-8") as fh:
                        reader = csv.reader(fh)
                        _, metric = next(reader)
                        by_length += [(int(length), name, metric, float(value)) for length, value in reader]
        table = table_id(task, dataset)
        written += [p for p in (
            _csv(out_dir / "curves" / f"{table}.csv", "epoch,experiment,metric,value", curves),
            _csv(out_dir / "by_length" / f"{table}.csv", "length,experiment,metric,value", by_length),
        ) if p is not None]
    return written


def compare(config, layout) -> Path:
    from pipeline.reporting.report_page import page
    from pipeline.tasks import TASKS

    ranking = list(ranked(config, layout))
    boards = tables(config, layout, ranking)
    results = claims.judge(evidence(config, layout), profile=profile_experiments(config))
    with atomic_dir(layout.comparison) as tmp:
        comparison_data(config, layout, tmp)
    with atomic_dir(layout.reports) as tmp:
        plots = []
        for task, dataset, names in groups(config, TASKS):
            plots += task.compare_plots({n: dataset for n in names}, layout, tmp)
        (tmp / "leaderboard.md").write_text(leaderboard_markdown(boards, [p.name for p in plots]), encoding="utf-8")
        (tmp / "claims.md").write_text(claims.markdown(results), encoding="utf-8")
        (tmp / "index.html").write_text(page(boards, results, plots, gallery(config, layout)), encoding="utf-8")

    run_id = None
    if tracking.is_rank_zero():
        uri = tracking.resolve_uri(config, layout)
        tracking.check_reachable(uri)
        mlflow = tracking.client(uri)
        leftovers.close_stale_runs(mlflow, config, layout)  # runs left RUNNING by killed trainings whose outputs DVC restored
        experiment_id = tracking.experiment_id(mlflow, uri, tracking.experiment_name(config), layout)
        commit = tracking.git_commit(layout.root)
        tags = {"zoo.kind": tracking.KIND_REPORT, "mlflow.runName": "leaderboard"}
        if commit:
            tags["mlflow.source.git.commit"] = commit
        run_id = mlflow.create_run(experiment_id, run_name="leaderboard", tags=tags).info.run_id
        with leftovers.closed_on_failure(mlflow, run_id):
            mlflow.log_artifacts(run_id, str(layout.reports), "reports")
            for result in results:
                mlflow.set_tag(run_id, f"zoo.claim.{result.claim.number}", claims.verdict_label(result))
        mlflow.set_terminated(run_id, "FINISHED")
        register(config, layout, mlflow, uri, ranking)
    supported = sum(r.verdict == claims.SUPPORTED for r in results)
    judged = sum(r.verdict != claims.ELSEWHERE for r in results)  # the others are another profile's
    reports = layout.reports.relative_to(layout.root)
    print(
        f"compared {len(config.experiments)} experiments -> {reports}/leaderboard.md, {reports}/index.html; "
        f"claims supported {supported}/{judged} -> {reports}/claims.md (MLflow run {run_id})"
    )
    return layout.reports / "leaderboard.md"


def register(config, layout, mlflow_client, uri: str, ranking) -> None:
    """Each table's best experiment becomes the ``champion`` of its registered model
    (``pipeline.reporting.registry``); a table that fails is reported and the others go on."""
    import sys

    from pipeline.reporting.registry import register_champions

    for outcome in register_champions(config, layout, mlflow_client, uri, ranking):
        if outcome.action == "failed":
            print(f"warning: model registry: {outcome.line()}", file=sys.stderr)
        elif outcome.action != "skipped" or outcome.experiment:
            print(f"model registry: {outcome.line()}")
