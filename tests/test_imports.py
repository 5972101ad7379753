"""What a ``zoo`` command imports. Every command validates ``params.yaml`` first, and most stages
(``fetch``, ``list``, ``compare``, ``reference`` of a non-image dataset) need no model: the
validation uses the models' ``Settings`` (``lightning_modules.settings``), and a model's module
(torch, Lightning) is imported only when that model is built or loaded. Each check runs a fresh
interpreter, since this test process has long imported everything. Nothing here is timed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import pipeline.tasks
from lightning_modules import MODELS, settings

REPO = Path(__file__).resolve().parents[1]
LIGHTNING = ("pytorch_lightning", "lightning", "lightning_fabric")
LIGHT_PACKAGE = {"lightning_modules", "lightning_modules.settings"}  # what validation may import of the models

def env() -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if k not in ("ZOO_ROOT", "MLFLOW_TRACKING_URI")}
    out["PYTHONPATH"] = str(REPO)
    return out


def modules_after(code: str, cwd: Path = REPO) -> set[str]:
    """The modules loaded once ``code`` has run in a fresh interpreter."""
    code += "\nimport sys, json\nprint('MODULES', json.dumps(sorted(sys.modules)))\n"
    proc = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    line = next(line for line in proc.stdout.splitlines() if line.startswith("MODULES "))
    return set(json.loads(line[len("MODULES "):]))


def cli_imports(folder: Path, *args: str) -> set[str]:
    """The modules ``zoo ARGS`` imports (``python -X importtime``'s report, on stderr)."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "pipeline", *args], cwd=folder, env=env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"zoo {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr[-3000:]}"
    return {line.rsplit("|", 1)[1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:") and "|" in line} - {"imported package"}


def models_imported(modules: set[str]) -> set[str]:
    return {m for m in modules if m.split(".")[0] in LIGHTNING or m.startswith("lightning_modules") and m not in LIGHT_PACKAGE}


VALIDATE = "from pathlib import Path\nimport pipeline.config as c\nc.load(Path('params.yaml'))\n"


def test_validating_params_yaml_imports_no_model():
    """The project's own params.yaml, every experiment's model settings included."""
    loaded = modules_after(VALIDATE)
    assert "lightning_modules.settings" in loaded
    assert models_imported(loaded) == set()


def test_validating_params_yaml_imports_no_torch():
    assert "torch" not in modules_after(VALIDATE)


def test_the_model_registry_imports_no_torch():
    loaded = modules_after(
        "from lightning_modules import CELL_NAMES, MODELS\n"
        "for entry in MODELS.values():\n"
        "    for head in entry.heads:\n"
        "        entry.settings_for(head)()\n"
        "        assert head in entry.heads\n"
        "    entry.family, entry.description\n"
    )
    assert "torch" not in loaded
    assert models_imported(loaded) == set()


@pytest.mark.parametrize("args", [("fetch", "parity"), ("list",)], ids=["fetch", "list"])
def test_stages_without_a_model_import_none(project, args):
    imported = cli_imports(project, *args)
    assert "lightning_modules.settings" in imported  # it did validate
    assert models_imported(imported) == set()


def test_fetch_imports_no_torch(project):
    assert "torch" not in cli_imports(project, "fetch", "parity")


def test_task_info_agrees_with_the_tasks():
    info = pipeline.tasks.TASK_INFO
    assert set(info) == set(pipeline.tasks.TASKS)
    for name, task_info in info.items():
        task = pipeline.tasks.TASKS[name]
        assert (task_info.name, task_info.head, frozenset(task_info.sources)) == (task.name, task.head, frozenset(task.sources))


def test_a_model_is_imported_alone():
    loaded = modules_after("from lightning_modules import MODELS\nMODELS['gan'].cls_for('sampler-2d')\n")
    assert {"lightning_modules.gan", "lightning_modules.gan_base"} <= loaded
    assert not loaded & {"lightning_modules.seq2seq", "lightning_modules.transformer", "lightning_modules.captioning",
                         "lightning_modules.recurrent", "lightning_modules.wgan", "lightning_modules.cells"}


def test_cell_names_agree_with_the_cells():
    from lightning_modules.cells import CELL_NAMES

    assert settings.CELL_NAMES == CELL_NAMES


@pytest.mark.parametrize("name,head", sorted((name, head) for name, entry in MODELS.items() for head in entry.heads))
def test_registry_settings_are_the_model_class_settings(name, head):
    entry = MODELS[name]
    cls = entry.cls_for(head)
    assert cls.Settings is entry.settings_for(head)
    assert entry.settings_for(head).__module__ == "lightning_modules.settings"
    assert entry.heads[head] is cls


def test_settings_keep_their_inheritance():
    assert issubclass(settings.DCGANSettings, settings.GANSettings)
    assert issubclass(settings.GANSettings, settings.GANBaseSettings)
    assert issubclass(settings.WGANSettings, settings.GANBaseSettings)
    assert issubclass(settings.WGANGPSettings, settings.GANBaseSettings)
    assert "clip" not in settings.WGANGPSettings.model_fields  # the penalty replaces clipping
    assert issubclass(settings.LuongSettings, settings.Seq2SeqSettings)
    assert issubclass(settings.AttentionSettings, settings.CaptionerSettings)
    assert issubclass(settings.SequenceClassifierSettings, settings.RecurrentSettings)


def test_unknown_class_attribute_is_an_attribute_error():
    import lightning_modules

    assert lightning_modules.GAN is MODELS["gan"].cls_for("sampler-2d")
    with pytest.raises(AttributeError):
        lightning_modules.NoSuchModel  # noqa: B018


@pytest.mark.parametrize("name,head,task_args", [
    ("gan", "sampler-2d", {"data_dim": 2}),
    ("wgan-gp", "sampler-image", {"image_shape": [1, 8, 8]}),
    ("lstm", "classifier", {"vocab_size": 3, "n_classes": 2}),
    ("seq2seq-luong", "seq2seq", {"source_vocab_size": 5, "target_vocab_size": 6}),
    ("transformer", "language-model", {"vocab_size": 5}),
])
def test_checkpoint_hyper_parameters_load(tmp_path, name, head, task_args):
    """A checkpoint's hyper-parameters are a plain dict: ``load_from_checkpoint`` rebuilds the
    model through its ``Settings``, wherever that class is defined."""
    import pytorch_lightning as pl
    import torch

    entry = MODELS[name]
    model = entry.build(head, entry.settings_for(head)(), **task_args)
    path = tmp_path / "model.ckpt"
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams), "pytorch-lightning_version": pl.__version__}, path)
    loaded = entry.cls_for(head).load_from_checkpoint(str(path), map_location="cpu")
    assert dict(loaded.hparams) == dict(model.hparams)
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)


def _gc_state_after(code: str) -> dict:
    code = "import gc, sys, json\nfrom pipeline.plumbing.startup import import_heavy\n" + code
    code += "\nprint('STATE', json.dumps({'enabled': gc.isenabled(), 'frozen': gc.get_freeze_count(), 'loaded': sorted(m for m in ('fractions', 'decimal') if m in sys.modules)}))\n"
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    line = next(line for line in proc.stdout.splitlines() if line.startswith("STATE "))
    return json.loads(line[len("STATE "):])


def test_a_stage_imports_its_heavy_modules_with_the_collector_paused_then_frozen():
    """``import_heavy`` imports what it is given, freezes what was allocated (so later
    collections and the exit skip it) and leaves the collector as it found it."""
    state = _gc_state_after("import_heavy('fractions', 'decimal')")
    assert state["loaded"] == ["decimal", "fractions"]
    assert state["enabled"] is True
    assert state["frozen"] > 1000  # everything imported so far, the interpreter's own objects included
    # A collector the caller turned off stays off.
    assert _gc_state_after("gc.disable(); import_heavy('fractions')")["enabled"] is False
    # Modules already there: nothing to import, nothing frozen (a test process, a stage calling another).
    assert _gc_state_after("import fractions, decimal\nimport_heavy('fractions', 'decimal')")["frozen"] == 0


def test_a_stage_imports_mlflows_database_store_only_for_a_database():
    from pipeline.plumbing.startup import DATABASE_STORE, HEAVY, stage_modules

    assert stage_modules("sqlite:////work/mlflow.db") == HEAVY + (DATABASE_STORE,)
    assert stage_modules("postgresql+psycopg2://u@db/mlflow") == HEAVY + (DATABASE_STORE,)
    assert stage_modules("http://127.0.0.1:5000") == HEAVY
    assert stage_modules("https://mlflow.example.org") == HEAVY


def test_the_train_and_evaluate_stages_freeze_after_importing_torch_lightning_and_mlflow():
    """The stages call ``import_heavy`` before their first heavy import (a task's module imports
    torch and Lightning; ``python benchmarks/cli_startup.py`` measures what it saves), and only
    after the experiment's name is checked."""
    import inspect

    from pipeline.stages import evaluate, reference, sample, train

    assert "stage_inputs(" in inspect.getsource(train.verify_inputs)  # train()'s first step
    assert "stage_inputs(" in inspect.getsource(evaluate.evaluate)
    for func, first_heavy in ((train.stage_inputs, "TASKS["), (reference.reference, "import torch"), (sample.sample, "TASKS[")):
        source = inspect.getsource(func)
        assert "import_heavy(" in source, func.__qualname__
        assert source.index("import_heavy(") < source.index(first_heavy), func.__qualname__
        assert source.index("config.") < source.index("import_heavy("), func.__qualname__
