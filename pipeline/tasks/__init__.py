"""Tasks: what a model is trained on and how it is measured.

A task knows which data sources and model families fit it, how to turn a fetched dataset
into loaders and the model's shape arguments, how to evaluate a trained model (metrics and
plots), and which metric ranks its leaderboard table.
"""

from __future__ import annotations

from pipeline.tasks.mixture import MixtureTask
from pipeline.tasks.parity import ParityTask

TASKS = {task.name: task for task in [ParityTask(), MixtureTask()]}
