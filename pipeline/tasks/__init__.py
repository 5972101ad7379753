"""Tasks: what a model is trained on and how it is measured.

A task knows which data sources and model families fit it, how to turn a fetched dataset
into loaders and the model's shape arguments, how to evaluate a trained model (metrics and
plots), and which metric ranks its leaderboard table.
"""

from __future__ import annotations

from pipeline.tasks.arithmetic import ArithmeticTask
from pipeline.tasks.captions import CaptionsTask
from pipeline.tasks.images import ImagesTask
from pipeline.tasks.language import CharLMTask, XMLTask
from pipeline.tasks.mixture import MixtureTask
from pipeline.tasks.parity import ParityTask
from pipeline.tasks.seq2seq import DatesTask, TranslationTask
from pipeline.tasks.sentiment import SentimentTask

TASKS = {
    task.name: task
    for task in [ParityTask(), ArithmeticTask(), XMLTask(), CharLMTask(), SentimentTask(), MixtureTask(),
                 DatesTask(), TranslationTask(), CaptionsTask(), ImagesTask()]
}
