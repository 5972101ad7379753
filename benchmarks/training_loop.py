"""Training throughput of the pipeline against a minimal hand-written PyTorch loop.

    python benchmarks/training_loop.py [--batches 60] [--seconds 2] [--repeat 5] [--only parity-lstm ...]

For one default experiment of each family, the same model (built from ``params.yaml``), the
same data and batch size are trained
- by the pipeline: ``pipeline.stages.train.train`` (Lightning ``Trainer`` with the project's
  callbacks, the MLflow logger, per-step gradient-norm logging, the epoch-end checkpoint),
  its fit time read back from the run's ``time_fit_s``;
- by a hand-written loop: ``zero_grad``, loss, ``backward``, ``step`` over the same batches,
  nothing else (for a GAN, one critic step and one generator step per batch, as the pipeline).
Throughput is the steady state: each side runs N batches and three times as many, and
the rate is the extra samples over the extra time, so one-off costs (the Trainer's set-up,
the first checkpoint) cancel. N is ``--batches``, or more where the loop would take less than
``--seconds`` for them (the small models: this machine's timings vary by a tenth or more
from one second to the next, which a short window cannot average out). A repeat runs the
four (loop and pipeline, short and long) in a shuffled order, ``--repeat`` times; the ratio
printed is of the medians (pipeline samples/s divided by the loop's), with the lowest and
highest ratio of one repeat's runs beside it to show the noise, and the ratio from each
side's fastest runs (as ``timeit`` advises: slower runs are mostly other load, not the code).
Target (issue 8): at least 0.9, checked on the median ratio.

Runs in a temporary project (datasets fetched there), so it leaves the working tree alone.
Uses the GPU when there is one, like the pipeline.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

FAMILIES = {
    "recurrent classifier": "parity-lstm",
    "language model": "charlm-lstm",
    "seq2seq": "dates-seq2seq-bahdanau",
    "GAN, 2-D": "ring-gan",
    "GAN, images": "digits-dcgan",
}


def project(folder: Path, names: list[str], batches: int | dict[str, int], epochs: dict[str, int] | None = None) -> None:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    used = {params["experiments"][n]["dataset"] for n in names}
    params["datasets"] = {k: v for k, v in params["datasets"].items() if k in used}
    if "references" in params:
        params["references"] = {k: v for k, v in params["references"].items() if k in used}
    params["experiments"] = {n: params["experiments"][n] for n in names}
    params["trainer"].update(enable_progress_bar=False)
    for name, body in params["experiments"].items():
        # One seed, as the hand-written loop trains: an experiment's seeds would otherwise
        # share the cores, and the first seed's fit time would count their work as overhead.
        seeds = body.get("seeds") or params.get("defaults", {}).get(body["task"], {}).get("seeds")
        if seeds and "seed" not in body:
            body["seeds"] = seeds[:1]
        limit = batches[name] if isinstance(batches, dict) else batches
        body.setdefault("trainer", {}).update(max_epochs=(epochs or {}).get(name, 1), limit_train_batches=limit, limit_val_batches=0)
    (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def pipeline_seconds(config, layout, name: str) -> float:
    import json

    from mlflow.tracking import MlflowClient

    from pipeline.stages.train import train

    train(config, layout, name)
    run = json.loads(layout.run_file(name).read_text())
    return MlflowClient(tracking_uri=run["tracking_uri"]).get_run(next(iter(run["seeds"].values()))["run_id"]).data.metrics["time_fit_s"]


def loop_seconds(config, layout, name: str, batches: int, per_epoch: int, device: str | None = None, skip: int = 0) -> float:
    """Seconds of ``batches`` hand-written training steps over batches of the first
    ``per_epoch`` (cycled), on ``device`` (default: the GPU when there is one); with ``skip``,
    only the steps after the first ``skip`` are timed (the steady state, measured in one run:
    never the difference of two noisy runs)."""
    import pytorch_lightning as pl
    import torch

    from lightning_modules import MODELS
    from pipeline.stages.fetch import verify
    from pipeline.tasks import TASKS

    exp = config.experiment(name)
    task, entry = TASKS[exp.task], MODELS[exp.model]
    seed = config.experiment_seed(name)
    pl.seed_everything(seed, verbose=False)
    prepared = task.prepare(layout.dataset(exp.dataset), verify(config, layout, exp.dataset), exp.common, seed)
    model = entry.build(task.head, exp.settings, **prepared.model_args)
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model.to(device).train()
    optimisers = model.configure_optimizers()
    if isinstance(optimisers, dict):
        optimisers = optimisers["optimizer"]
    if isinstance(optimisers, tuple) and len(optimisers) == 2 and isinstance(optimisers[0], list):
        optimisers = optimisers[0]
    optimisers = list(optimisers) if isinstance(optimisers, (list, tuple)) else [optimisers]

    def step(batch, i):
        if model.automatic_optimization:
            loss = model.training_step(batch, i)
            loss = loss["loss"] if isinstance(loss, dict) else loss
            optimisers[0].zero_grad(set_to_none=True)
            loss.backward()
            optimisers[0].step()
            return
        opt_g, opt_d = optimisers  # GANBase: (generator, discriminator)
        real, labels, other = model.unpack(batch)
        d_loss, _ = model.critic_loss(real, labels, other)
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        model.after_critic_step()
        if (i + 1) % model.settings.critic_steps == 0:
            g_loss, _ = model.generator_loss(real.shape[0], labels, other)
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            opt_g.step()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # self.log() outside a Trainer: a no-op here
        started = time.perf_counter()
        done = 0
        while done < batches:  # epochs of at most per_epoch batches, as the pipeline's
            for i, batch in enumerate(prepared.train):
                if i == per_epoch or done == batches:
                    break
                if done == skip and skip:
                    if device.type == "cuda":
                        torch.cuda.synchronize()
                    started = time.perf_counter()
                step([t.to(device) for t in batch], done)
                done += 1
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - started


def train_batches(config, layout, name: str) -> int:
    from pipeline.stages.fetch import verify
    from pipeline.tasks import TASKS

    exp = config.experiment(name)
    prepared = TASKS[exp.task].prepare(layout.dataset(exp.dataset), verify(config, layout, exp.dataset), exp.common, 0)
    return len(prepared.train)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=60, help="training batches per measurement, at least")
    parser.add_argument("--seconds", type=float, default=2.0, help="more batches where the loop trains --batches faster than this")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--verbose", action="store_true", help="print every measurement")
    parser.add_argument("--only", nargs="*", help="experiments to measure (default: one per family)")
    args = parser.parse_args()
    names = args.only or list(FAMILIES.values())
    family = {v: k for k, v in FAMILIES.items()}

    from pipeline import config as config_mod
    from pipeline.plumbing.paths import Layout
    from pipeline.stages.fetch import fetch
    from pipeline.stages.train import quiet_lightning

    quiet_lightning()
    with tempfile.TemporaryDirectory(prefix="zoo-bench-") as tmp:
        root = Path(tmp)
        project(root, names, args.batches)
        config, layout = config_mod.load(root / "params.yaml"), Layout(root)
        for dataset in {config.experiments[n].dataset for n in names}:
            fetch(config, layout, dataset)
        if getattr(config, "references", None):
            from pipeline.stages.reference import reference

            for dataset in config.references:
                reference(config, layout, dataset)
        # The short run trains at least --batches batches and at least --seconds of the loop's
        # time, in whole epochs (of at most that many batches); the long one three times as many.
        target, per_epoch = {}, {}
        for n in names:
            in_data = train_batches(config, layout, n)
            probe = min(20, args.batches, in_data)
            loop_seconds(config, layout, n, min(5, probe), in_data)  # warm-up: first-call costs
            per_batch = loop_seconds(config, layout, n, probe, in_data) / probe
            target[n] = max(args.batches, math.ceil(args.seconds / per_batch))
            per_epoch[n] = min(target[n], in_data)
        epochs = {n: -(-target[n] // per_epoch[n]) for n in names}
        project(root, names, per_epoch, epochs)
        config = config_mod.load(root / "params.yaml")
        long_root = root / "long"
        long_root.mkdir()
        project(long_root, names, per_epoch, {n: 3 * e for n, e in epochs.items()})
        (long_root / "data").symlink_to(root / "data")
        long_config, long_layout = config_mod.load(long_root / "params.yaml"), Layout(long_root)
        if (root / "models").is_dir():
            (long_root / "models").mkdir()
            for ref in (root / "models").glob("reference-*"):
                (long_root / "models" / ref.name).symlink_to(ref)
        rows = []
        for name in names:
            short, pe = epochs[name] * per_epoch[name], per_epoch[name]
            loop_seconds(config, layout, name, min(5, pe), pe)  # warm-up: first-call costs
            pipe, loop, runs = [], [], []
            for repeat in range(args.repeat):
                measure = {
                    "loop long": lambda: loop_seconds(config, layout, name, 3 * short, pe),
                    "loop short": lambda: loop_seconds(config, layout, name, short, pe),
                    "pipeline long": lambda: pipeline_seconds(long_config, long_layout, name),
                    "pipeline short": lambda: pipeline_seconds(config, layout, name),
                }
                order = list(measure)
                random.Random(repeat).shuffle(order)  # no side always runs first, or last
                times = {key: None for key in measure}
                for key in order:
                    times[key] = measure[key]()
                runs.append(times)
                loop.append(times["loop long"] - times["loop short"])
                pipe.append(times["pipeline long"] - times["pipeline short"])
                if args.verbose:
                    print(f"{name}: " + ", ".join(f"{key} {seconds:.2f} s" for key, seconds in times.items()), flush=True)
            samples = config.experiments[name].common.batch_size * 2 * short
            # each repeat's pair, measured back to back, gives one ratio: the spread shows the noise
            ratios = sorted(lo / pi for lo, pi in zip(loop, pipe))
            fastest = {key: min(run[key] for run in runs) for key in runs[0]}
            best = (fastest["loop long"] - fastest["loop short"]) / (fastest["pipeline long"] - fastest["pipeline short"])
            rows.append((family.get(name, name), name, samples / statistics.median(loop), samples / statistics.median(pipe), ratios, best))

    print()
    print(f"{'family':<22}{'experiment':<26}{'loop samples/s':>16}{'pipeline samples/s':>20}{'ratio':>8}{'repeats':>12}{'fastest':>9}")
    for fam, name, loop_rate, pipe_rate, ratios, best in rows:
        spread = f"{ratios[0]:.2f}-{ratios[-1]:.2f}"
        print(f"{fam:<22}{name:<26}{loop_rate:>16.0f}{pipe_rate:>20.0f}{pipe_rate / loop_rate:>8.2f}{spread:>12}{best:>9.2f}")
    worst = min(r[3] / r[2] for r in rows)
    print(f"lowest ratio {worst:.2f}: {'meets' if worst >= 0.9 else 'MISSES'} the 0.9 target")
    print("(ratio: of the median rates; repeats: the lowest and highest ratio of one repeat's four runs;")
    print(" fastest: the ratio from each side's fastest long and fastest short run, the least disturbed by other load)")


if __name__ == "__main__":
    main()
