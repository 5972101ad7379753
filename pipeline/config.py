"""``params.yaml``: its schema, and validation before anything runs or is written.

Every error names the key path that is wrong (``experiments.parity-lstm.hiden_size: unknown
key``) and, for an unknown name, the valid choices. The shared sections are pydantic models;
a dataset's settings come from its source (``pipeline.datasets``), an experiment's model
settings from its model (``lightning_modules``), so adding either needs no change here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Optional, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from pipeline.plumbing import trainer_keys
from pipeline.plumbing.errors import ConfigError


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TrackingSettings(Strict):
    uri: Optional[str] = Field(None, description="MLflow tracking URI; default sqlite:///<project>/mlflow.db")
    experiment: str = Field("rnngan-zoo", min_length=1)


class TrainerSettings(BaseModel):
    """Handed to ``pytorch_lightning.Trainer`` as they are. Any other keyword of the Trainer that
    takes a plain value may be set too (``pipeline.plumbing.trainer_keys.MORE``, validated by
    ``validate_trainer``); those the zoo sets itself are refused with the reason."""

    model_config = ConfigDict(extra="allow", frozen=True)

    accelerator: str = "auto"
    devices: Union[int, str, list[int]] = "auto"
    num_nodes: int = Field(1, ge=1)
    strategy: str = Field("auto", description="a strategy's name (ddp, deepspeed, ...)")
    precision: Union[int, str] = "32-true"
    max_epochs: int = Field(10, ge=1)
    gradient_clip_val: Optional[float] = Field(None, ge=0)
    gradient_clip_algorithm: Literal["norm", "value"] = "norm"
    log_every_n_steps: int = Field(50, ge=1)
    enable_progress_bar: bool = True
    deterministic: Union[bool, Literal["warn"]] = False
    limit_train_batches: Optional[Union[int, float]] = Field(None, gt=0)
    limit_val_batches: Optional[Union[int, float]] = Field(None, ge=0)
    check_val_every_n_epoch: int = Field(1, ge=1)
    val_check_interval: Optional[Union[int, float]] = Field(None, gt=0, description="validate every N batches (int) or this fraction of an epoch (float)")
    min_epochs: Optional[int] = Field(None, ge=0, description="train at least this long before the plateau may stop it")
    max_steps: int = Field(-1, ge=-1)
    min_steps: Optional[int] = Field(None, ge=0)
    max_time: Optional[str] = Field(None, description="DD:HH:MM:SS: stop after this long")
    accumulate_grad_batches: int = Field(1, ge=1)
    overfit_batches: Union[int, float] = Field(0.0, ge=0)
    fast_dev_run: Union[bool, int] = False
    num_sanity_val_steps: Optional[int] = Field(None, ge=-1)
    profiler: Optional[Literal["simple", "advanced", "pytorch"]] = Field(
        None, description="Lightning's report of where the time goes; none: no profiling"
    )

    @field_validator("precision")
    @classmethod
    def _known_precision(cls, value: Any) -> Any:
        return trainer_keys.check_precision(value)

    @field_validator("accelerator")
    @classmethod
    def _known_accelerator(cls, value: str) -> str:
        return trainer_keys.check_accelerator(value)

    @field_validator("devices")
    @classmethod
    def _devices_form(cls, value: Any) -> Any:
        return trainer_keys.check_devices(value)


class SamplingSettings(Strict):
    """Text generated from a trained language model at evaluation (an MLflow artifact)."""

    prompt: str = "\n"
    temperature: float = Field(0.8, ge=0, description="0 = greedy")
    length: int = Field(500, ge=1)


class ReferenceSettings(Strict):
    """The reference classifier of an image dataset (``zoo reference DATASET``), whose features
    and predictions measure the image GANs (REFERENCE.md, "Metrics")."""

    epochs: int = Field(10, ge=1)
    batch_size: int = Field(128, ge=1)
    lr: float = Field(1e-3, gt=0)
    features: int = Field(128, ge=2, description="width of the penultimate layer (the Fréchet distance's feature space)")


class PlateauSettings(Strict):
    """When a seed's training ends before ``max_epochs``: Lightning's EarlyStopping on a
    validation metric. The kept model is the best checkpoint by the same metric."""

    monitor: Optional[str] = Field(None, description="validation metric to watch; none: the task's (Task.monitor)")
    mode: Optional[Literal["min", "max"]] = Field(None, description="none: the task's (Task.monitor_mode)")
    patience: int = Field(3, ge=1, description="validations without improvement before stopping")
    min_delta: float = Field(0.0, ge=0, description="smallest change that counts as an improvement")
    warmup: int = Field(0, ge=0, description="epochs trained before the patience starts counting (a GAN sits near zero for its first thousands of steps)")
    target: Optional[float] = Field(None, description="record the first epoch the monitor reaches this value (epochs_to_target)")


class ExperimentCommon(Strict):
    """Keys every experiment has; all other keys are the model's own settings."""

    dataset: str
    task: str
    model: str
    seed: Optional[int] = Field(None, ge=0, description="the one-seed form of seeds; overrides the top-level seed")
    seeds: Optional[list[int]] = Field(None, min_length=1, description="train and evaluate once per seed, in this order")
    plateau: PlateauSettings = Field(default_factory=PlateauSettings)
    on_nonfinite_loss: Literal["fail", "record"] = Field(
        "fail", description="fail: a NaN or infinite loss fails the stage; record: it ends that seed's training as a result (diverged)"
    )
    batch_size: int = Field(64, ge=1)
    trainer: dict[str, Any] = Field(default_factory=dict, description="overrides of the trainer section")
    sequence_length: int = Field(100, ge=2, description="text tasks: characters per training window (truncated BPTT)")
    carry_state: bool = Field(
        False,
        description="recurrent text models: each batch row reads its own contiguous stretch of the stream and carries "
        "its recurrent state (detached) from one window to the next, in training and validation (stateful truncated BPTT)",
    )
    sampling: SamplingSettings = Field(default_factory=SamplingSettings)

    @field_validator("seeds")
    @classmethod
    def _distinct_non_negative(cls, seeds: Optional[list[int]]) -> Optional[list[int]]:
        if seeds is not None:
            if any(s < 0 for s in seeds):
                raise ValueError("seeds must be non-negative integers")
            if len(set(seeds)) != len(seeds):
                raise ValueError("a seed is listed twice")
        return seeds


COMMON_KEYS = set(ExperimentCommon.model_fields)


class Experiment(BaseModel):
    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    name: str
    common: ExperimentCommon
    settings: BaseModel  # the model's own Settings
    trainer: TrainerSettings  # the top-level trainer section with this experiment's overrides

    @property
    def dataset(self) -> str:
        return self.common.dataset

    @property
    def task(self) -> str:
        return self.common.task

    @property
    def model(self) -> str:
        return self.common.model

    def flat_params(self) -> dict[str, Any]:
        """The experiment's settings and the trainer's, flattened (for MLflow)."""
        out: dict[str, Any] = {}
        for key, value in self.common.model_dump(exclude={"trainer", "sampling", "seed", "seeds", "plateau"}).items():
            out[key] = value
        for key, value in self.common.plateau.model_dump().items():
            out[f"plateau.{key}"] = value
        for key, value in self.settings.model_dump().items():
            out[f"model.{key}"] = value
        for key, value in self.trainer.model_dump().items():
            out[f"trainer.{key}"] = value
        return out


class Dataset(BaseModel):
    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    name: str
    source: str
    settings: BaseModel


class Config(BaseModel):
    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    seed: int
    tracking: TrackingSettings
    trainer: TrainerSettings
    datasets: dict[str, Dataset]
    experiments: dict[str, Experiment]
    references: dict[str, ReferenceSettings] = Field(default_factory=dict)  # image datasets' classifiers
    seed_workers: Union[int, Literal["auto"]] = "auto"  # processes training an experiment's seeds side by side
    source: Optional[Path] = None

    def experiment(self, name: str) -> Experiment:
        if name not in self.experiments:
            raise ConfigError("", f"unknown experiment '{name}'; choose from: {', '.join(self.experiments) or '(none)'}")
        return self.experiments[name]

    def dataset(self, name: str) -> Dataset:
        if name not in self.datasets:
            raise ConfigError("", f"unknown dataset '{name}'; choose from: {', '.join(self.datasets) or '(none)'}")
        return self.datasets[name]

    def reference(self, dataset: str) -> ReferenceSettings:
        """The reference classifier's settings of an image dataset (defaults when not set)."""
        return self.references.get(dataset) or ReferenceSettings()

    def experiment_seeds(self, name: str) -> list[int]:
        """The seeds an experiment trains and evaluates, in order: ``seeds``, or ``[seed]``, or
        ``[top-level seed]``."""
        common = self.experiment(name).common
        if common.seeds is not None:
            return list(common.seeds)
        return [self.seed if common.seed is None else common.seed]

    def experiment_seed(self, name: str) -> int:
        """The first seed: the one whose model ``zoo sample`` and the plots use."""
        return self.experiment_seeds(name)[0]


# ---------------------------------------------------------------------------------------
# Validation


def _first_error(exc: ValidationError, prefix: str) -> ConfigError:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    path = f"{prefix}.{loc}" if prefix and loc else (prefix or loc)
    kind = err["type"]
    if kind == "extra_forbidden":
        message = "unknown key"
    elif kind == "missing":
        message = "missing required key"
    elif kind == "value_error":  # a validator's own message, which names the value
        message = err["msg"].removeprefix("Value error, ")
    else:
        message = f"{err['msg']} (got {err.get('input')!r})"
    return ConfigError(path, message)


def _validate(model: type[BaseModel], data: Any, prefix: str) -> BaseModel:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(prefix, f"expected a mapping, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _first_error(exc, prefix) from None


def validate_trainer(data: Any, prefix: str) -> TrainerSettings:
    """A ``trainer`` section: TrainerSettings' keys, and the Trainer's other plain keywords
    (``trainer_keys.MORE``) typed as Lightning's signature types them."""
    from pydantic import TypeAdapter

    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(prefix, f"expected a mapping, got {type(data).__name__}")
    for key, value in data.items():
        if key in trainer_keys.REFUSED:
            raise ConfigError(f"{prefix}.{key}", trainer_keys.REFUSED[key])
        if key in trainer_keys.MORE:
            try:
                TypeAdapter(trainer_keys.MORE[key]).validate_python(value, strict=True)
            except ValidationError as exc:
                raise _first_error(exc, f"{prefix}.{key}") from None
        elif key not in TrainerSettings.model_fields:
            raise ConfigError(f"{prefix}.{key}", "unknown key")
    return _validate(TrainerSettings, data, prefix)


def _choice(value: Any, choices: Any, path: str, what: str) -> str:
    names = sorted(choices)
    if not isinstance(value, str) or value not in choices:
        raise ConfigError(path, f"unknown {what} {value!r}; choose from: {', '.join(names)}")
    return value


TOP_LEVEL = {"seed", "tracking", "trainer", "datasets", "experiments"}
OPTIONAL_TOP_LEVEL = {"references", "defaults", "seed_workers"}
NESTED_KEYS = {"trainer", "plateau", "sampling"}  # merged key by key with a task's defaults


def with_defaults(body: dict, shared: dict) -> dict:
    """An experiment's keys over its task's ``defaults`` (the sections in ``NESTED_KEYS`` are
    merged key by key), so params.yaml states each experiment's differences only."""
    merged = {**shared, **body}
    for key in NESTED_KEYS:
        if isinstance(shared.get(key), dict) and isinstance(body.get(key), dict):
            merged[key] = {**shared[key], **body[key]}
    return merged


def validate(raw: Any, overrides: Optional[list[str]] = None) -> Config:
    """Validate a parsed ``params.yaml`` (a dict), after applying ``key.path=value`` overrides.

    Needs no model and no task: the models' settings come from ``lightning_modules.settings``
    (``MODELS`` imports a model's module only when it is built or loaded) and the tasks'
    heads and sources from ``pipeline.tasks.TASK_INFO``, so torch and Lightning are not
    imported here."""
    from lightning_modules import MODELS
    from pipeline.datasets import SOURCES
    from pipeline.tasks import TASK_INFO as TASKS  # head and sources of each task, no task module

    if not isinstance(raw, dict):
        raise ConfigError("", "params.yaml must be a mapping with the sections: " + ", ".join(sorted(TOP_LEVEL)))
    raw = apply_overrides(raw, overrides or [])
    for key in raw:
        if key not in TOP_LEVEL | OPTIONAL_TOP_LEVEL:
            raise ConfigError(str(key), "unknown key")
    for key in TOP_LEVEL:
        if key not in raw:
            raise ConfigError(key, "missing required key")

    seed = raw["seed"]
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ConfigError("seed", f"expected a non-negative integer (got {seed!r})")
    seed_workers = raw.get("seed_workers", "auto")
    if seed_workers != "auto" and (not isinstance(seed_workers, int) or isinstance(seed_workers, bool) or seed_workers < 1):
        raise ConfigError("seed_workers", f"expected auto or a positive integer (got {seed_workers!r})")
    tracking = _validate(TrackingSettings, raw["tracking"], "tracking")
    trainer = validate_trainer(raw["trainer"], "trainer")

    datasets: dict[str, Dataset] = {}
    if not isinstance(raw["datasets"], dict):
        raise ConfigError("datasets", "expected a mapping of dataset name to settings")
    for name, body in raw["datasets"].items():
        path = f"datasets.{name}"
        if not isinstance(body, dict):
            raise ConfigError(path, "expected a mapping")
        source = _choice(body.get("source"), SOURCES, f"{path}.source", "source")
        rest = {k: v for k, v in body.items() if k != "source"}
        settings = _validate(SOURCES[source].Settings, rest, path)
        datasets[name] = Dataset(name=name, source=source, settings=settings)

    defaults = raw.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise ConfigError("defaults", "expected a mapping of task name to the settings its experiments share")
    for task_name, shared in defaults.items():
        _choice(task_name, TASKS, f"defaults.{task_name}", "task")
        if not isinstance(shared, dict):
            raise ConfigError(f"defaults.{task_name}", "expected a mapping (use {} when the task's experiments share nothing)")
        for key in ("dataset", "task", "model"):
            if key in shared:
                raise ConfigError(f"defaults.{task_name}.{key}", "each experiment names its own dataset, task and model")

    experiments: dict[str, Experiment] = {}
    if not isinstance(raw["experiments"], dict):
        raise ConfigError("experiments", "expected a mapping of experiment name to settings")
    for name, body in raw["experiments"].items():
        path = f"experiments.{name}"
        if not isinstance(body, dict):
            raise ConfigError(path, "expected a mapping")
        for key in ("dataset", "task", "model"):
            if key not in body:
                raise ConfigError(f"{path}.{key}", "missing required key")
        _choice(body["dataset"], datasets, f"{path}.dataset", "dataset")
        task = TASKS[_choice(body["task"], TASKS, f"{path}.task", "task")]
        if defaults and task.name not in defaults:
            # dvc.yaml makes defaults.<task> a parameter of the task's stages: it must exist
            raise ConfigError(f"defaults.{task.name}", "missing: every task with experiments needs an entry ({} when they share nothing)")
        if body.get("seed") is not None and "seeds" not in body and defaults.get(task.name, {}).get("seeds") is not None:
            body = {**body, "seeds": None}  # an experiment's own single seed replaces the shared list
        body = with_defaults(body, defaults.get(task.name, {}))
        model = MODELS[_choice(body["model"], MODELS, f"{path}.model", "model")]
        source = datasets[body["dataset"]].source
        if source not in task.sources:
            raise ConfigError(f"{path}.dataset", f"task '{task.name}' needs a dataset of source {', '.join(sorted(task.sources))} (got '{source}')")
        if task.head not in model.heads:
            fitting = sorted(n for n, m in MODELS.items() if task.head in m.heads)
            raise ConfigError(f"{path}.model", f"model '{model.name}' does not fit task '{task.name}'; choose from: {', '.join(fitting)}")
        if body.get("seed") is not None and body.get("seeds") is not None:
            raise ConfigError(f"{path}.seeds", "set either seed (one seed) or seeds (a list), not both")
        common = _validate(ExperimentCommon, {k: v for k, v in body.items() if k in COMMON_KEYS}, path)
        settings = _validate(model.settings_for(task.head), {k: v for k, v in body.items() if k not in COMMON_KEYS}, path)
        validate_trainer(common.trainer, f"{path}.trainer")  # the experiment's own keys, named as it gives them
        experiment_trainer = validate_trainer({**trainer.model_dump(), **common.trainer}, f"{path}.trainer")
        experiments[name] = Experiment(name=name, common=common, settings=settings, trainer=experiment_trainer)

    references: dict[str, ReferenceSettings] = {}
    raw_references = raw.get("references") or {}
    if not isinstance(raw_references, dict):
        raise ConfigError("references", "expected a mapping of image dataset name to reference-classifier settings")
    image_sources = TASKS["images"].sources
    for name, body in raw_references.items():
        path = f"references.{name}"
        _choice(name, datasets, path, "dataset")
        if datasets[name].source not in image_sources:
            raise ConfigError(path, f"a reference classifier needs an image dataset (source {', '.join(sorted(image_sources))}), got source '{datasets[name].source}'")
        references[name] = _validate(ReferenceSettings, body, path)

    return Config(seed=seed, tracking=tracking, trainer=trainer, datasets=datasets, experiments=experiments, references=references, seed_workers=seed_workers)


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    """``--set a.b.c=value``: the value is parsed as YAML (``3``, ``0.1``, ``true``, ``[0, 1]``)."""
    import copy

    raw = copy.deepcopy(raw)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(item, "an override must look like key.path=value")
        path, _, text = item.partition("=")
        keys = path.strip().split(".")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            value = text
        node = raw
        for i, key in enumerate(keys[:-1]):
            nxt = node.get(key) if isinstance(node, dict) else None
            if nxt is None:
                nxt = node[key] = {}
            if not isinstance(nxt, dict):
                raise ConfigError(".".join(keys[: i + 1]), "is not a section, cannot set a key inside it")
            node = nxt
        node[keys[-1]] = value
    return raw


def _display(path: Path) -> str:
    """The path as the user would type it: relative to the current folder when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def read_yaml(path: Path) -> Any:
    if not path.is_file():
        raise ConfigError("", f"{path} not found: run zoo from the project folder (the one with params.yaml)")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError("", f"{where}malformed YAML: {problem}", source=_display(path)) from None


# A profile's params.yaml may name a ``base`` params.yaml: these sections come from the base,
# the profile's own keys merged over them key by key.
INHERITED = ("seed", "seed_workers", "tracking", "trainer", "defaults", "references")


def _merge(base: Any, over: Any) -> Any:
    if isinstance(base, dict) and isinstance(over, dict):
        return {**base, **{k: _merge(base.get(k), v) for k, v in over.items()}}
    return over


def with_base(raw: Any, path: Path) -> Any:
    """A profile (``profiles/paper/params.yaml``) on top of its ``base``: the shared sections
    (``INHERITED``) are the base's with the profile's keys merged over them; the profile runs only
    the datasets and experiments it lists, each merged over the base's entry of the same name, so
    ``grid: {}`` is the base's dataset as it is. References of datasets it does not list are left out."""
    if not isinstance(raw, dict) or "base" not in raw:
        return raw
    if not isinstance(raw["base"], str):
        raise ConfigError("base", f"expected the path of another params.yaml, relative to this one (got {raw['base']!r})")
    base_path = path.parent / raw["base"]
    if not base_path.is_file():
        raise ConfigError("base", f"{_display(base_path)} not found")
    base = with_base(read_yaml(base_path), base_path)
    if not isinstance(base, dict):
        raise ConfigError("base", f"{_display(base_path)} is not a params.yaml")
    own = {k: v for k, v in raw.items() if k != "base"}
    merged = {k: base[k] for k in INHERITED if k in base}
    for key, value in own.items():
        if key in ("datasets", "experiments") and isinstance(value, dict):
            shared = base.get(key) if isinstance(base.get(key), dict) else {}
            merged[key] = {name: _merge(shared.get(name), body) for name, body in value.items()}
        else:
            merged[key] = _merge(merged.get(key), value)
    if isinstance(merged.get("references"), dict) and isinstance(merged.get("datasets"), dict):
        merged["references"] = {k: v for k, v in merged["references"].items() if k in merged["datasets"]}
    return merged


def load(path: Path, overrides: Optional[list[str]] = None) -> Config:
    try:
        config = validate(with_base(read_yaml(path), path), overrides)
    except ConfigError as exc:
        if exc.source is None:
            raise ConfigError(exc.path, exc.message, source=_display(path)) from None
        raise
    return config.model_copy(update={"source": path})
