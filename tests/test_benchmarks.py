"""The benchmarks run and print their tables. benchmarks/gpu.py, the GPU check, where there is no GPU: it says so and exits 0, and its
CPU rehearsal runs every step it would run on a GPU (data, both trainings, the device checks,
the cells, the table)."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch

from conftest import REPO

GPU_SCRIPT = [sys.executable, str(REPO / "benchmarks" / "gpu.py")]
FAMILIES = ["recurrent classifier", "language model", "seq2seq", "GAN, 2-D", "GAN, images"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present: the script runs fully")
def test_gpu_script_without_a_gpu_says_so_and_exits_0():
    proc = subprocess.run(GPU_SCRIPT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "no CUDA GPU present (torch.cuda.is_available() is False): nothing to benchmark; exit 0"


@pytest.mark.slow
def test_gpu_script_rehearsed_on_the_cpu_runs_every_family_and_prints_the_table():
    proc = subprocess.run([*GPU_SCRIPT, "--rehearse-on-cpu", "--batches", "2", "--seconds", "600"], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert "custom cells against nn.LSTM (CPU):" in out and "lstm" in out.split("custom cells", 1)[1]
    lines = out.splitlines()
    header = max(i for i, line in enumerate(lines) if line.startswith("family") and "pipeline samples/s" in line)
    table = [line for line in lines[header + 1:] if line.strip() and not line.startswith("total")]
    rows = {line[:22].strip(): line.split() for line in table}
    assert sorted(rows) == sorted(FAMILIES), table
    for family, fields in rows.items():
        assert fields[-4] == "32-true", fields  # fp32 on the CPU
        # the table's shape: three finite numbers (their values are the machine's, not the test's)
        assert all(math.isfinite(float(x)) for x in fields[-3:]), (family, fields)
    # one experiment of the paper profile at its own size: samples per second (peak GPU memory on a GPU only)
    paper = out.split("\npaper profile (", 1)[1].splitlines()
    assert "its data's stand-in: pydoc-topics" in paper[0] and paper[1].split() == ["experiment", "precision", "samples/s", "peak", "GPU", "memory"]
    name, precision, rate, *memory = paper[2].split()
    assert (name, precision, memory) == ("shakespeare-transformer", "32-true", ["—", "(CPU)"]) and float(rate) > 0


def test_kept_pieces_benchmark_prints_both_comparisons():
    """benchmarks/kept_pieces.py, on one short repeat: a row per kept piece with two times, a
    ratio and the repeats' range (their values are the machine's, not the test's)."""
    script = REPO / "benchmarks" / "kept_pieces.py"
    proc = subprocess.run([sys.executable, str(script), "--repeat", "1", "--epochs", "1", "--batches", "4"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| ") and " s |" in line]
    assert [row.split("|")[1].split("(")[0].strip() for row in rows] == ["epoch means", "MLflow logger"]
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert all(math.isfinite(float(c.removesuffix(" s"))) and float(c.removesuffix(" s")) > 0 for c in cells[1:4]), row
