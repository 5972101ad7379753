"""The GPU check: every family's default experiment trained on a CUDA GPU, against the same
hand-written loop on the GPU, and the custom recurrent cells against cuDNN's nn.LSTM.

    python benchmarks/gpu.py [--batches 60] [--seconds 420]
    python benchmarks/gpu.py --rehearse-on-cpu --batches 2   # the same steps on the CPU

On a machine without a CUDA GPU it says so and exits 0 without running anything else.
``--rehearse-on-cpu`` runs every step on the CPU instead (fp32), with the same checks that
the model and batches are where they should be, so that the script is tested where no GPU
is (tests/test_benchmarks.py); its numbers say nothing about a GPU.
With one, for each family (the experiments of ``benchmarks/training_loop.py``):
- builds the model from ``params.yaml`` on data generated into a temporary folder (no network),
- trains it with a Lightning ``Trainer`` set up as the train stage does (``accelerator: gpu``,
  bf16 mixed precision where the GPU supports it, the project's callbacks; no MLflow, so the
  script needs only torch, Lightning, numpy, pydantic and PyYAML),
- checks that the parameters and a batch really live on the GPU,
- times the steady-state throughput (one epoch against three) against the hand-written loop
  on the GPU (fp32), as ``training_loop.py`` does on the CPU;
then trains one experiment of the paper profile as it is set there (``PAPER_EXPERIMENT``, its
largest network) for a fixed number of steps and reports its samples per second and peak GPU
memory: the measure the paper profile's time estimates are made from. Its data, downloaded in
the profile, is replaced by a stand-in of the same kind generated here (no network on a device
machine): CPython's help text as the character stream in place of tiny-shakespeare. Then it
runs ``benchmarks/cells.py`` on the GPU (custom cells vs nn.LSTM/cuDNN). It stops
adding work once ``--seconds`` have passed, so it finishes within 8 minutes, and prints a
short table last. Target (issue 8): at least 0.9 of the hand-written loop.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # before this folder, whose pipeline.py would shadow the package
if str(REPO / "benchmarks") not in sys.path:
    sys.path.append(str(REPO / "benchmarks"))  # training_loop


def trainer_seconds(config, layout, name: str, per_epoch: int, epochs: int, precision: str, device: str = "cuda") -> float:
    """Time of the epochs after the first (all of them when ``epochs`` is 1) of a fit of ``epochs``
    epochs of ``per_epoch`` batches with the train stage's Trainer set-up, on ``device`` (``cuda``:
    the GPU; ``cpu`` for the rehearsal)."""
    import pytorch_lightning as pl
    import torch

    from lightning_modules import MODELS
    from pipeline.training.resume import FiniteLoss, RandomState
    from pipeline.stages.fetch import verify
    from pipeline.tasks import TASKS

    exp = config.experiment(name)
    task, entry = TASKS[exp.task], MODELS[exp.model]
    seed = config.experiment_seed(name)
    pl.seed_everything(seed, verbose=False)
    prepared = task.prepare(layout.dataset(exp.dataset), verify(config, layout, exp.dataset), exp.common, seed)
    model = entry.build(task.head, exp.settings, **prepared.model_args)
    args = exp.trainer.model_dump(exclude_none=True)
    profiler = args.pop("profiler", None)
    args.update(accelerator="gpu" if device == "cuda" else "cpu", devices=1, strategy="auto", precision=precision, max_epochs=epochs, limit_train_batches=per_epoch,
                limit_val_batches=0, enable_progress_bar=False)
    where = {}

    class OnDevice(pl.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if batch_idx == 0:
                where["parameters"] = {p.device.type for p in pl_module.parameters()}
                where["batch"] = {t.device.type for t in batch}

    class SteadyClock(pl.Callback):
        """Times the epochs after the first (the steady state) within this one fit."""

        def on_train_epoch_start(self, trainer, pl_module):
            if trainer.current_epoch == min(1, epochs - 1):
                if device == "cuda":
                    torch.cuda.synchronize()
                where["started"] = time.perf_counter()

    trainer = pl.Trainer(**args, logger=False, enable_checkpointing=False, enable_model_summary=False, profiler=profiler,
                         callbacks=[RandomState(), FiniteLoss(name), OnDevice(), SteadyClock()])
    trainer.fit(model, prepared.train)
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - where["started"]
    if where.get("parameters") != {device} or where.get("batch") != {device}:
        raise SystemExit(f"{name}: training did not run on {device} (parameters on {where.get('parameters')}, batch on {where.get('batch')})")
    return seconds


PAPER_EXPERIMENT = "shakespeare-transformer"  # 6 layers, 384 wide, context 256, batch 64 (nanoGPT's shakespeare_char)
PAPER_STAND_IN = {"source": "pydoc-topics"}  # a character stream as tiny-shakespeare is, bundled with Python


def paper_experiment(root: Path, steps: int, precision: str, device: str, batch_size: int | None = None) -> tuple[str, float, float, int]:
    """``PAPER_EXPERIMENT`` with the paper profile's settings, on ``PAPER_STAND_IN``, timed over
    ``steps`` steps (at most an epoch) after as many of warm-up: (name, samples per second, peak GPU memory in
    GiB (NaN on the CPU), the steps timed). ``batch_size`` replaces the profile's (the CPU rehearsal's, to be quick)."""
    import torch
    import yaml

    from pipeline import config as config_mod
    from pipeline.plumbing.paths import Layout
    from pipeline.stages.fetch import fetch

    profile = config_mod.with_base(yaml.safe_load((REPO / "profiles" / "paper" / "params.yaml").read_text()), REPO / "profiles" / "paper" / "params.yaml")
    body = dict(profile["experiments"][PAPER_EXPERIMENT])
    body["seeds"] = body.get("seeds", [1])[:1]
    if batch_size is not None:
        body["batch_size"] = batch_size
    params = {**profile, "datasets": {body["dataset"]: PAPER_STAND_IN}, "experiments": {PAPER_EXPERIMENT: body}, "references": {}}
    params["trainer"] = {**params["trainer"], "enable_progress_bar": False}
    root.mkdir(parents=True, exist_ok=True)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    config, layout = config_mod.load(root / "params.yaml"), Layout(root)
    fetch(config, layout, body["dataset"])
    from training_loop import train_batches

    steps = min(steps, train_batches(config, layout, PAPER_EXPERIMENT))
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    seconds = trainer_seconds(config, layout, PAPER_EXPERIMENT, steps, 2, precision, device)  # the second epoch, timed
    peak = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else float("nan")
    return PAPER_EXPERIMENT, config.experiments[PAPER_EXPERIMENT].common.batch_size * steps / seconds, peak, steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=60)
    parser.add_argument("--seconds", type=float, default=420, help="stop adding work after this long")
    parser.add_argument("--rehearse-on-cpu", action="store_true", help="every step on the CPU (fp32), to test the script without a GPU")
    args = parser.parse_args()

    import torch

    device = "cpu" if args.rehearse_on_cpu else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        print("no CUDA GPU present (torch.cuda.is_available() is False): nothing to benchmark; exit 0")
        return
    started = time.monotonic()
    if device == "cuda":
        print(f"GPU: {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    else:
        print(f"rehearsal on the CPU ({torch.get_num_threads()} threads), torch {torch.__version__}: the numbers say nothing about a GPU")
    bf16 = device == "cuda" and torch.cuda.is_bf16_supported()

    from pipeline import config as config_mod
    from pipeline.plumbing.paths import Layout
    from pipeline.stages.fetch import fetch
    from pipeline.stages.train import quiet_lightning
    from training_loop import FAMILIES, loop_seconds, project, train_batches

    quiet_lightning()
    warnings.filterwarnings("ignore")
    rows = []
    with tempfile.TemporaryDirectory(prefix="zoo-gpu-") as tmp:
        root = Path(tmp)
        names = list(FAMILIES.values())
        project(root, names, args.batches)
        config, layout = config_mod.load(root / "params.yaml"), Layout(root)
        for dataset in {config.experiments[n].dataset for n in names}:
            fetch(config, layout, dataset)
        for family, name in FAMILIES.items():
            if time.monotonic() - started > args.seconds:
                rows.append((family, name, "skipped: time budget", float("nan"), float("nan")))
                continue
            pe = min(args.batches, train_batches(config, layout, name))
            precision = "bf16-mixed" if bf16 and config.experiments[name].model not in ("wgan-gp",) else "32-true"
            loop_seconds(config, layout, name, min(5, pe), pe, device)  # warm-up (CUDA context, kernels)
            trainer_seconds(config, layout, name, min(5, pe), 1, precision, device)
            # the steady state, each timed within one run (epochs 2 and 3): a rate that cannot go negative
            loop = statistics.median(loop_seconds(config, layout, name, 3 * pe, pe, device, skip=pe) for _ in range(2))
            pipe = statistics.median(trainer_seconds(config, layout, name, pe, 3, precision, device) for _ in range(2))
            samples = config.experiments[name].common.batch_size * 2 * pe
            rows.append((family, name, precision, samples / loop, samples / pipe))

        paper = None
        if time.monotonic() - started < args.seconds:
            precision = "bf16-mixed" if bf16 else "32-true"
            paper = (precision, *paper_experiment(root / "paper", args.batches, precision, device, None if device == "cuda" else 4))

    cells = "not run: time budget"
    if time.monotonic() - started < args.seconds:
        cells_args = ["--device", "cuda", "--repeat", "3"] if device == "cuda" else ["--device", "cpu", "--repeat", "1", "--steps", "10"]
        out = subprocess.run([sys.executable, str(REPO / "benchmarks" / "cells.py"), *cells_args],
                             capture_output=True, text=True, timeout=max(30, 470 - (time.monotonic() - started)))
        cells = out.stdout.strip() or out.stderr.strip()[-2000:]
    print(f"\ncustom cells against nn.LSTM ({'cuDNN' if device == 'cuda' else 'CPU'}):\n" + cells)
    print(f"\npaper profile ({paper[-1] if paper else args.batches} steps after as many of warm-up; its data's stand-in: {PAPER_STAND_IN['source']})")
    print(f"{'experiment':<26}{'precision':<12}{'samples/s':>12}{'peak GPU memory':>18}")
    if paper is None:
        print(f"{PAPER_EXPERIMENT:<26}skipped: time budget")
    else:
        precision, name, rate, peak, _ = paper
        print(f"{name:<26}{precision:<12}{rate:>12.1f}{(f'{peak:.2f} GiB' if peak == peak else '— (CPU)'):>18}")
    print(f"\n{'family':<22}{'experiment':<26}{'precision':<12}{'loop samples/s':>16}{'pipeline samples/s':>20}{'ratio':>8}")
    for family, name, precision, loop_rate, pipe_rate in rows:
        print(f"{family:<22}{name:<26}{precision:<12}{loop_rate:>16.0f}{pipe_rate:>20.0f}{pipe_rate / loop_rate:>8.2f}")
    print(f"total {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
