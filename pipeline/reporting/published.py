"""Published figures beside the zoo's own: ``published.yaml`` read into ``Source``s.

A ``Source`` is one paper's (or official repository's) table for one task on one data set,
with its citation and setting; its ``Figure``s are the published results, each with the
zoo's model it corresponds to where there is one. ``zoo compare`` adds a "paper" column to
every leaderboard table that a source applies to and lists the source under the table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Optional, Sequence

import yaml

TABLE = Path(__file__).with_name("published.yaml")


@dataclass(frozen=True)
class Figure:
    label: str  # the paper's name for the model: "GAN", "PacGAN4"
    values: dict[str, tuple[float, Optional[float]]]  # metric key -> (value, spread or None)
    zoo: dict[str, Any]  # the zoo's counterpart: model and the settings that must match ({}: none)

    def matches(self, experiment) -> bool:
        """``experiment`` (a ``pipeline.config.Experiment``) is this figure's counterpart."""
        if not self.zoo:
            return False
        for key, wanted in self.zoo.items():
            if key == "model":
                have = experiment.model
            else:
                have = getattr(experiment.settings, key, getattr(experiment.common, key, None))
            if have != wanted:
                return False
        return True


@dataclass(frozen=True)
class Source:
    task: str
    dataset: dict[str, Any]  # the source and the data settings that must match
    citation: str
    url: str
    setting: str
    spread: str
    figures: tuple[Figure, ...]
    code: Optional[str] = None

    def applies_to(self, task: str, dataset) -> bool:
        """This source measured ``task`` on the data of ``dataset`` (a ``pipeline.config.Dataset``)."""
        if task != self.task:
            return False
        for key, wanted in self.dataset.items():
            have = dataset.source if key == "source" else getattr(dataset.settings, key, None)
            if isinstance(wanted, float) and isinstance(have, (int, float)):
                if not math.isclose(have, wanted, rel_tol=1e-9):
                    return False
            elif have != wanted:
                return False
        return True

    def figure_for(self, experiment) -> Optional[Figure]:
        return next((f for f in self.figures if f.matches(experiment)), None)


def _value(raw, where: str) -> tuple[float, Optional[float]]:
    if isinstance(raw, (int, float)) and not isinstance(raw, bool):
        return float(raw), None
    if isinstance(raw, list) and len(raw) == 2 and all(isinstance(v, (int, float)) for v in raw):
        return float(raw[0]), float(raw[1])
    raise ValueError(f"{where}: expected a number or [number, spread], got {raw!r}")


def parse(entries: list[dict]) -> list[Source]:
    """``published.yaml``'s list of sources, checked (a ValueError names the bad entry)."""
    sources = []
    for i, entry in enumerate(entries):
        where = f"published source {i + 1} ({entry.get('citation', '?')})"
        missing = {"task", "dataset", "citation", "url", "setting", "spread", "figures"} - set(entry)
        if missing:
            raise ValueError(f"{where}: missing {', '.join(sorted(missing))}")
        if "source" not in entry["dataset"]:
            raise ValueError(f"{where}: dataset needs a source")
        figures = tuple(
            Figure(
                label=str(f["label"]),
                values={k: _value(v, f"{where}, {f['label']}.{k}") for k, v in f["values"].items()},
                zoo=dict(f.get("zoo") or {}),
            )
            for f in entry["figures"]
        )
        sources.append(
            Source(task=entry["task"], dataset=dict(entry["dataset"]), citation=entry["citation"], url=entry["url"],
                   setting=" ".join(str(entry["setting"]).split()), spread=entry["spread"], figures=figures,
                   code=entry.get("code"))
        )
    return sources


@lru_cache(maxsize=None)
def _load(path: Path) -> tuple[Source, ...]:
    return tuple(parse(yaml.safe_load(path.read_text(encoding="utf-8")) or []))


def load(path: Path = TABLE) -> tuple[Source, ...]:
    return _load(Path(path))


def for_table(task: str, dataset, sources: Sequence[Source] | None = None) -> list[Source]:
    """The sources that measured ``task`` on ``dataset``'s data."""
    return [s for s in (load() if sources is None else sources) if s.applies_to(task, dataset)]


def number(value: float, spread: Optional[float]) -> str:
    """A published number as printed: ``6.3 ± 0.5``, ``0.45``."""
    return f"{value:g}" + (f" ± {spread:g}" if spread is not None else "")


def describe(figure: Figure, columns) -> str:
    """``figure``'s values under the task's column labels, in the table's column order."""
    labels = {c.key: c.label for c in columns}
    keys = [c.key for c in columns if c.key in figure.values] + [k for k in figure.values if k not in labels]
    return ", ".join(f"{labels.get(k, k)} {number(*figure.values[k])}" for k in keys)


def footnote(index: int, source: Source, columns) -> str:
    """The line under a table: citation, setting, spread and every figure of the source."""
    figures = "; ".join(f"{f.label}: {describe(f, columns)}" for f in source.figures)
    code = f", code {source.code}" if source.code and source.code != source.url else ""
    return f"[{index}] {source.citation} ({source.url}{code}). Setting: {source.setting}. ± is the {source.spread}. {figures}."
