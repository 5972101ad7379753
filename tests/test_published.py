"""The published figures beside the zoo's (``pipeline/reporting/published.yaml``): each names a
real task, metric, model and setting, applies only to the same data, and is cited in the
README. How the leaderboard shows them: test_report.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.reporting import published

ROOT = Path(__file__).resolve().parents[1]


def test_every_published_figure_names_the_zoos_task_metrics_and_models():
    from lightning_modules import MODELS
    from pipeline.config import COMMON_KEYS
    from pipeline.datasets import SOURCES
    from pipeline.tasks import TASKS

    sources = published.load()
    assert {s.dataset["source"] for s in sources} >= {"ring", "grid", "tiny-shakespeare"}
    for source in sources:
        assert source.task in TASKS, source.citation
        assert source.dataset["source"] in SOURCES
        settings = SOURCES[source.dataset["source"]].Settings.model_fields
        assert set(source.dataset) - {"source"} <= set(settings), source.citation
        columns = {c.key for c in TASKS[source.task].columns}
        assert source.url.startswith("https://") and source.setting and source.spread
        for figure in source.figures:
            assert figure.values and set(figure.values) <= columns, (source.citation, figure.label)
            if figure.zoo:
                head = TASKS[source.task].head
                known = set(MODELS[figure.zoo["model"]].settings_for(head).model_fields) | COMMON_KEYS
                assert set(figure.zoo) - {"model"} <= known, (source.citation, figure.label)


def test_a_source_applies_only_to_its_own_task_and_data():
    from pipeline.config import Dataset
    from pipeline.datasets import SOURCES

    (ring,) = [s for s in published.load() if s.dataset["source"] == "ring"]

    def data(source, **settings):
        return Dataset(name="d", source=source, settings=SOURCES[source].Settings(**settings))

    assert ring.applies_to("mixture-2d", data("ring"))
    assert ring.applies_to("mixture-2d", data("ring", n_train=1000))  # the sample count is ours to choose
    assert not ring.applies_to("mixture-2d", data("ring", std=0.05))  # another distribution: not like with like
    assert not ring.applies_to("mixture-2d", data("ring", n_components=6))
    assert not ring.applies_to("mixture-2d", data("grid"))
    assert not ring.applies_to("charlm", data("ring"))


def test_a_figure_matches_the_experiments_of_its_model_and_settings():
    from pipeline.config import load

    config = load(ROOT / "params.yaml")
    (ring,) = [s for s in published.load() if s.dataset["source"] == "ring"]
    (gan,) = [f for f in ring.figures if f.label == "GAN"]
    assert gan.matches(config.experiments["ring-gan"])
    assert not gan.matches(config.experiments["ring-gan-minimax"])  # the minimax loss: not PacGAN's GAN
    assert not gan.matches(config.experiments["ring-wgan-gp"])
    assert all(not f.matches(config.experiments["ring-gan"]) for f in ring.figures if f.label != "GAN")


@pytest.mark.parametrize(
    "entry, message",
    [
        ({"task": "mixture-2d"}, "missing"),
        ({"task": "x", "dataset": {}, "citation": "c", "url": "u", "setting": "s", "spread": "p", "figures": []}, "needs a source"),
        ({"task": "x", "dataset": {"source": "ring"}, "citation": "c", "url": "u", "setting": "s", "spread": "p",
          "figures": [{"label": "GAN", "values": {"modes_covered": "six"}}]}, "expected a number"),
    ],
)
def test_a_malformed_entry_is_refused_naming_it(entry, message):
    with pytest.raises(ValueError, match=message):
        published.parse([entry])


def test_numbers_print_as_published():
    assert published.number(6.3, 0.5) == "6.3 ± 0.5"
    assert published.number(0.7, None) == "0.7"
    assert published.number(2.1203, None) == "2.1203"


def test_the_readme_cites_every_published_source():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for source in published.load():
        assert source.citation.split(" (")[0] in readme and source.url in readme, source.citation
