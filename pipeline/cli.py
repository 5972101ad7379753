"""``zoo``: run one stage of the pipeline at a time (the same commands ``dvc repro`` runs).

Start-up stays light: this module imports only the standard library and Typer; torch,
Lightning and MLflow are imported inside the commands that need them, so ``zoo --help`` and
shell completion are fast.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Callable, List, Optional

import typer

app = typer.Typer(
    name="zoo",
    help="Train, evaluate and compare recurrent networks and GANs. Run from the project folder.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

_state = {"verbose": False, "params": None}
_STARTED = time.perf_counter()  # process start, near enough: imports before this are light
# A stage forked from the warm server (pipeline/plumbing/warm.py) started when its `zoo` process did.
# ZOO_WARM_STARTED and ZOO_WARM_SOCKET (below) are warm.STARTED_ENV and warm.ENV, spelt out
# so that `zoo --help` need not import pipeline.plumbing.warm.
_WARM_STARTED = os.environ.pop("ZOO_WARM_STARTED", None)
if _WARM_STARTED:
    _STARTED = float(_WARM_STARTED)


def _raw_names(section: str) -> list[str]:
    """Names in a params.yaml section, for shell completion (no validation, no heavy imports)."""
    try:
        import yaml

        from pipeline.plumbing.paths import find_root

        raw = yaml.safe_load((find_root() / "params.yaml").read_text())
        return list((raw or {}).get(section) or {})
    except Exception:
        return []


def _complete(section: str) -> Callable[[str], list[str]]:
    return lambda incomplete: [n for n in _raw_names(section) if n.startswith(incomplete)]


def _context():
    from pipeline import config as config_mod
    from pipeline.plumbing.paths import Layout

    layout = Layout.here()
    params = Path(_state["params"]) if _state["params"] else layout.params
    return layout, params, config_mod


def _run(action: Callable, overrides: Optional[List[str]] = None) -> None:
    """Run a command; a user's error ends in one line and its exit code (README: exit codes)."""
    from pipeline.plumbing.errors import EXIT_INTERRUPTED, ConfigError, ZooError

    layout = None
    try:
        layout, params, config_mod = _context()
        config = config_mod.load(params, overrides)
        started = time.perf_counter()
        action(config, layout)
        _record_stage(layout, time.perf_counter() - started)
    except ZooError as exc:
        if not isinstance(exc, ConfigError):  # a bad setting writes nothing, not even a log
            _log_traceback(layout)
        elif _state["verbose"]:
            import traceback

            traceback.print_exc()
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(exc.exit_code)
    except BrokenPipeError:  # `zoo list | head`: the reader left, nothing is wrong
        sys.stderr.close()
        raise typer.Exit(0)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        raise typer.Exit(EXIT_INTERRUPTED)
    except Exception as exc:  # an unexpected failure: still one line, traceback in the log
        where = _log_traceback(layout)
        typer.echo(f"error: {type(exc).__name__}: {exc} (traceback in {where}; --verbose shows it)", err=True)
        raise typer.Exit(1)


def _record_stage(layout, seconds: float) -> None:
    """One line per finished stage in ``logs/stages.jsonl`` (wall time, peak memory) for
    ``benchmarks/pipeline.py``; ``zoo list`` and other read-only commands are not recorded."""
    command = sys.argv[1:2]
    if not command or command[0] not in ("fetch", "reference", "train", "evaluate", "compare"):
        return
    try:
        import datetime
        import json
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
        entry = {
            "stage": command[0],
            "target": " ".join(a for a in sys.argv[2:3] if not a.startswith("-")),
            "seconds": round(seconds, 2),
            "process_seconds": round(time.perf_counter() - _STARTED, 2),
            "peak_rss_mib": round(peak, 1),
            "warm": bool(_WARM_STARTED),
            "finished": datetime.datetime.now().isoformat(timespec="seconds"),
        }
        layout.log_file.parent.mkdir(parents=True, exist_ok=True)
        with (layout.log_file.parent / "stages.jsonl").open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry) + "\n")
    except (OSError, ImportError):  # bookkeeping must never fail a stage (no `resource` on Windows)
        pass


def _log_traceback(layout) -> str:
    import traceback

    text = traceback.format_exc()
    if _state["verbose"]:
        sys.stderr.write(text)
    try:
        from pipeline.plumbing.paths import Layout

        path = (layout or Layout.here()).log_file
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as fh:
            import datetime

            fh.write(f"--- {datetime.datetime.now().isoformat()} zoo {' '.join(sys.argv[1:])}\n{text}\n")
        return str(path)
    except OSError:
        return "stderr"


SetOption = typer.Option(None, "--set", help="Override a setting for this run, e.g. --set trainer.max_epochs=2 (validated like params.yaml).")


@app.callback()
def _main(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show tracebacks."),
    params: Optional[Path] = typer.Option(None, "--params", help="Settings file (default: params.yaml of the project)."),
) -> None:
    _state["verbose"] = verbose
    _state["params"] = params


@app.command("list")
def list_experiments(
    format: str = typer.Option("table", "--format", "-f", help="table or json"),
) -> None:
    """List the experiments: name, family, task, model, dataset, trained, evaluated."""
    if format not in ("table", "json"):
        typer.echo("error: --format must be table or json", err=True)
        raise typer.Exit(2)

    def action(config, layout):
        from lightning_modules import MODELS

        rows = [
            {
                "name": name,
                "family": MODELS[e.model].family,
                "task": e.task,
                "model": e.model,
                "dataset": e.dataset,
                "trained": layout.checkpoint(name).is_file(),
                "evaluated": layout.metrics(name).is_file(),
            }
            for name, e in config.experiments.items()
        ]
        if format == "json":
            import json

            typer.echo(json.dumps(rows, indent=2))
            return
        headers = list(rows[0]) if rows else ["name"]
        table = [[str(r[h]) if not isinstance(r[h], bool) else ("yes" if r[h] else "no") for h in headers] for r in rows]
        widths = [max(len(h), *(len(row[i]) for row in table)) if table else len(h) for i, h in enumerate(headers)]
        typer.echo("  ".join(h.ljust(w) for h, w in zip(headers, widths)))
        typer.echo("  ".join("-" * w for w in widths))
        for row in table:
            typer.echo("  ".join(c.ljust(w) for c, w in zip(row, widths)))

    _run(action)


@app.command()
def fetch(dataset: str = typer.Argument(..., help="A dataset of params.yaml.", autocompletion=_complete("datasets"))) -> None:
    """Generate or download a dataset into data/raw/DATASET (atomic, with a manifest)."""

    def action(config, layout):
        from pipeline.stages.fetch import fetch as run

        path = run(config, layout, dataset)
        typer.echo(f"fetched {dataset} -> {path.relative_to(layout.root)}/")

    _run(action)


@app.command()
def train(
    experiment: str = typer.Argument(..., help="An experiment of params.yaml.", autocompletion=_complete("experiments")),
    overrides: Optional[List[str]] = SetOption,
) -> None:
    """Train an experiment's model; track it in MLflow; write models/EXPERIMENT/."""

    def action(config, layout):
        from pipeline.stages.train import train as run

        run(config, layout, experiment)

    _run(action, overrides)


@app.command()
def evaluate(
    experiment: str = typer.Argument(..., help="An experiment of params.yaml.", autocompletion=_complete("experiments")),
    overrides: Optional[List[str]] = SetOption,
) -> None:
    """Evaluate a trained experiment; write metrics/EXPERIMENT.json and plots/EXPERIMENT/."""

    def action(config, layout):
        from pipeline.stages.evaluate import evaluate as run

        run(config, layout, experiment)

    _run(action, overrides)


@app.command()
def sample(
    experiment: str = typer.Argument(..., help="A trained experiment of params.yaml.", autocompletion=_complete("experiments")),
    prompt: Optional[str] = typer.Option(None, "--prompt", help="Language models: the text to continue (default: the experiment's sampling.prompt)."),
    temperature: Optional[float] = typer.Option(None, "--temperature", min=0.0, help="Language models: divides the logits; 1 samples the model's distribution, 0 is greedy (argmax) (default: the experiment's sampling.temperature, as its evaluation)."),
    length: Optional[int] = typer.Option(None, "--length", min=1, help="Language models: characters to generate after the prompt (default: the experiment's sampling.length)."),
    input: Optional[str] = typer.Option(None, "--input", help="Seq2seq, arithmetic and classifiers: the input, e.g. 'Thursday, 26 November 2026', '12+345', '0110' (default: a few test examples)."),
    beam: Optional[int] = typer.Option(None, "--beam", min=1, help="Seq2seq and captioners: beam width, 1 = greedy (default: the model's beam_width, as its evaluation)."),
    n: Optional[int] = typer.Option(None, "--n", "-n", min=1, help="How many: test examples shown (5; captions 8), GAN samples (image GANs 64, 2-D GANs 2500)."),
    label: Optional[int] = typer.Option(None, "--label", min=0, help="Conditional image GANs (cgan, acgan): the class of every sample (default: one column per class)."),
    seed: Optional[int] = typer.Option(None, "--seed", min=0, help="Fixes every random choice: the same seed gives the same output (default: the experiment's seed)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="File to write: a GAN's picture (default samples/EXPERIMENT-SEED.png), a captioner's captioned images, or a copy of the printed text."),
) -> None:
    """Generate from a trained experiment: text from a language model, outputs of a seq2seq model,
    captions, a classifier's prediction, or a GAN's samples as a picture. Prints what it made;
    the last line (on stderr) says what was written where."""

    def action(config, layout):
        from pipeline.stages.sample import Options
        from pipeline.stages.sample import sample as run

        options = Options(prompt=prompt, temperature=temperature, length=length, input=input, beam=beam, n=n, label=label, seed=seed, output=output)
        result = run(config, layout, experiment, options)
        if result.text is not None:
            typer.echo(result.text)
        typer.echo(result.summary, err=True)

    _run(action)


@app.command()
def reference(dataset: str = typer.Argument(..., help="A dataset of params.yaml (an image dataset trains a classifier).", autocompletion=_complete("datasets"))) -> None:
    """Train an image dataset's reference classifier (models/reference-DATASET/), whose features and
    predictions measure the image GANs; its accuracy and the real-data metrics go to metrics/."""

    def action(config, layout):
        from pipeline.stages.reference import reference as run

        run(config, layout, dataset)

    _run(action)


@app.command()
def compare() -> None:
    """Write reports/leaderboard.md (one table per task, best first) and log it to MLflow."""

    def action(config, layout):
        from pipeline.stages.compare import compare as run

        run(config, layout)

    _run(action)


@app.command()
def show(
    task: Optional[str] = typer.Option(None, "--task", help="Only this task's leaderboard (e.g. parity, mixture-2d)."),
    claims: bool = typer.Option(True, "--claims/--no-claims", help="Also the claims' verdicts."),
    open_page: bool = typer.Option(False, "--open", help="Open reports/index.html in the browser as well."),
) -> None:
    """Print the leaderboard and the claims' verdicts from reports/ (what `zoo compare` wrote)."""
    from pipeline.plumbing.paths import Layout
    from pipeline.reporting.show import show as render

    reports = Layout.here().reports
    try:
        typer.echo(render(reports, task=task, claims=claims), nl=False)
    except (FileNotFoundError, ValueError) as exc:
        typer.echo(f"zoo show: {exc}", err=True)
        raise typer.Exit(2)
    if open_page:
        import webbrowser

        webbrowser.open((reports / "index.html").resolve().as_uri())


@app.command()
def ui(
    port: int = typer.Option(5000, help="Port of the dashboard."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
) -> None:
    """Open the MLflow dashboard on this project's tracking store."""

    def action(config, layout):
        import os

        from pipeline.plumbing import tracking

        uri = tracking.resolve_uri(config, layout)
        if uri.startswith(("http://", "https://")):
            typer.echo(f"runs are tracked on the server {uri}: open it in a browser")
            return
        typer.echo(f"MLflow dashboard on http://{host}:{port} (store {uri}); Ctrl-C stops it")
        mlflow = Path(sys.executable).with_name("mlflow")
        # One worker and no job runner: a dashboard for one person starts in seconds, not half a minute.
        cmd = [str(mlflow) if mlflow.exists() else "mlflow", "ui", "--backend-store-uri", uri, "--host", host, "--port", str(port), "--workers", "1"]
        os.environ.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
        os.execvp(cmd[0], cmd)

    _run(action)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def warm(
    command: List[str] = typer.Argument(..., help="The command to run, e.g. dvc repro (`--` before its options).", metavar="COMMAND", show_default=False),
) -> None:
    """Run COMMAND (e.g. `dvc repro`) beside a server that imports torch, Lightning and MLflow
    once: each `zoo` stage it starts forks from there instead of importing them again (several
    seconds a stage). `make repro` runs `zoo warm dvc repro`."""
    import shutil

    from pipeline.plumbing import warm as warm_mod

    if shutil.which(command[0]) is None:
        typer.echo(f"error: command not found: {command[0]}", err=True)
        raise typer.Exit(127)
    code = warm_mod.run(list(command))
    _close_stale_runs()  # a stage DVC restored from its run-cache ran no zoo process that would have
    raise typer.Exit(code)


def _close_stale_runs() -> None:
    """After ``zoo warm COMMAND``: close the runs that killed trainings left RUNNING, and their
    resume folders, in experiments whose outputs are complete again (``pipeline.plumbing.leftovers``)."""
    from pipeline.plumbing.errors import ZooError
    from pipeline.plumbing.leftovers import sweep

    layout, params, config_mod = _context()
    if not params.is_file():
        return
    try:
        config = config_mod.load(params)
    except ZooError:
        return
    sweep(config, layout)


def main() -> None:
    if os.environ.get("ZOO_WARM_SOCKET"):  # under `zoo warm`: a stage runs in a process forked from its server
        from pipeline.plumbing.warm import delegate

        delegate(_STARTED)
    app()


if __name__ == "__main__":
    main()
