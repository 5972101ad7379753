"""The README's "Adding a model", done as it says: the GAN variant's file and its registry
line, taken from the README itself, then an experiment on it trained, evaluated and ranked."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from conftest import write_params

REPO = Path(__file__).resolve().parents[1]


def readme_code(start: str) -> str:
    blocks = re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(), flags=re.S)
    return next(b for b in blocks if b.lstrip().startswith(start))


def test_a_gan_variant_in_one_file_and_one_registry_line_trains_evaluates_and_ranks(project, small_params, tmp_path, monkeypatch):
    import lightning_modules
    from lightning_modules import MODELS, Head, ModelEntry
    from lightning_modules import settings as S

    package = tmp_path / "extra"
    (package / "lightning_modules").mkdir(parents=True)
    (package / "lightning_modules" / "my_gan.py").write_text(readme_code("# lightning_modules/my_gan.py"))
    # lightning_modules is a regular package: let it find the new file where the test wrote it
    monkeypatch.setattr(lightning_modules, "__path__", [*lightning_modules.__path__, str(package / "lightning_modules")])
    line = readme_code("ModelEntry(").strip().rstrip(",")
    entry = eval(line, {"ModelEntry": ModelEntry, "Head": Head, "S": S, "_M": "lightning_modules"})
    monkeypatch.setitem(MODELS, entry.name, entry)
    sys.modules.pop("lightning_modules.my_gan", None)

    small_params["experiments"] = {
        name: body for name, body in small_params["experiments"].items() if body["dataset"] == "ring" and body["model"] == "gan"
    }
    small_params["experiments"]["ring-hinge-gan"] = {"dataset": "ring", "task": "mixture-2d", "model": "hinge-gan", "trainer": {"max_epochs": 1, "limit_train_batches": 4, "limit_val_batches": 2}}
    write_params(project, small_params)

    from pipeline import config as config_mod
    from pipeline.plumbing.paths import Layout
    from pipeline.stages.compare import compare
    from pipeline.stages.evaluate import evaluate
    from pipeline.stages.fetch import fetch
    from pipeline.stages.train import train

    config, layout = config_mod.load(project / "params.yaml"), Layout(project)
    fetch(config, layout, "ring")
    for name in config.experiments:
        train(config, layout, name)
        evaluate(config, layout, name)
    metrics = json.loads(layout.metrics("ring-hinge-gan").read_text())
    assert {"modes_covered", "high_quality_pct", "reverse_kl"} <= set(metrics)
    model = MODELS["hinge-gan"].cls_for("sampler-2d")
    assert model.__name__ == "HingeGAN" and model.__module__ == "lightning_modules.my_gan"
    compare(config, layout)
    assert "`ring-hinge-gan`" in (project / "reports" / "leaderboard.md").read_text()
