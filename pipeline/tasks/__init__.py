"""Tasks: what a model is trained on and how it is measured.

A task knows which data sources and model families fit it, how to turn a fetched dataset
into loaders and the model's shape arguments, how to evaluate a trained model (metrics and
plots), and which metric ranks its leaderboard table.

``TASKS`` maps a task's name to its object and imports a task's module (and so torch) only
when that task is looked up; ``TASK_INFO`` holds what validating ``params.yaml`` needs (the
head a task trains and the data sources it accepts) without importing any of them.
``tests/test_imports.py`` checks the two agree.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from pipeline.datasets.images import IMAGE_SOURCES


@dataclass(frozen=True)
class TaskInfo:
    name: str
    head: str
    sources: frozenset[str]
    target: str  # "module:Class" of the Task

    def load(self):
        module, _, cls = self.target.partition(":")
        return getattr(importlib.import_module(module), cls)()


TASK_INFO: dict[str, TaskInfo] = {
    info.name: info
    for info in [
        TaskInfo("parity", "classifier", frozenset({"parity"}), "pipeline.tasks.parity:ParityTask"),
        TaskInfo("arithmetic", "language-model", frozenset({"arithmetic"}), "pipeline.tasks.arithmetic:ArithmeticTask"),
        TaskInfo("xml", "language-model", frozenset({"xml"}), "pipeline.tasks.language:XMLTask"),
        TaskInfo("charlm", "language-model", frozenset({"pydoc-topics", "python-stdlib", "tiny-shakespeare"}), "pipeline.tasks.language:CharLMTask"),
        TaskInfo("sentiment", "classifier", frozenset({"imdb"}), "pipeline.tasks.sentiment:SentimentTask"),
        TaskInfo("mixture-2d", "sampler-2d", frozenset({"ring", "grid"}), "pipeline.tasks.mixture:MixtureTask"),
        TaskInfo("dates", "seq2seq", frozenset({"dates"}), "pipeline.tasks.seq2seq:DatesTask"),
        TaskInfo("translation", "seq2seq", frozenset({"translation"}), "pipeline.tasks.seq2seq:TranslationTask"),
        TaskInfo("captions", "captioner", frozenset({"captions"}), "pipeline.tasks.captions:CaptionsTask"),
        TaskInfo("images", "sampler-image", IMAGE_SOURCES, "pipeline.tasks.images:ImagesTask"),
    ]
}


class _Tasks(Mapping):
    """Task name -> Task object, each built on first use."""

    def __init__(self) -> None:
        self._built: dict[str, object] = {}

    def __getitem__(self, name: str):
        if name not in self._built:
            self._built[name] = TASK_INFO[name].load()
        return self._built[name]

    def __iter__(self) -> Iterator[str]:
        return iter(TASK_INFO)

    def __len__(self) -> int:
        return len(TASK_INFO)


TASKS = _Tasks()
