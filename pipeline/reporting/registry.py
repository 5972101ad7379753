"""The MLflow model registry: ``zoo compare`` registers the best experiment of each leaderboard
table (its best seed, ``models/<experiment>/seed-<s>/model.ckpt``) as ``<tracking.experiment>.<task>`` (``.<dataset>`` added where the dataset is not named
after the task: ``rnngan-zoo.mixture-2d.ring``), alias ``champion``::

    model = mlflow.pytorch.load_model("models:/rnngan-zoo.parity@champion")
    probabilities = model(torch.tensor([[1, 0, 1, 1]]))

A trained LightningModule's ``forward`` differs per task head, so what is registered is a small
wrapper with one tensor in and one tensor out, built from the checkpoint:

    head            input (dtype, shape)                          output
    classifier      token ids (int64, B × T; whole rows)          class probabilities (float32, B × classes)
    language-model  token ids (int64, B × T)                      logits of the next token (float32, B × V)
    seq2seq         source ids (int64, B × S; 0 pads the end)     greedy decoding (int64, B × L: ids, END, then 0)
    captioner       grey images in [0, 1] (float32, B × H × W)    greedy caption ids (int64, B × L, as seq2seq)
    sampler-2d      noise (float32, N × latent_dim)               points (float32, N × 2)
    sampler-image   noise (float32, N × latent_dim)               images in [-1, 1] (float32, N × C × S × S)

(a class-conditional GAN draws class ``i % n_classes`` for row ``i``). The model is logged into
the seed's own MLflow run (``run.json["seeds"][seed]["run_id"]``) with its signature and an input
example (valid synthetic input, fixed seed), and with the code of ``pipeline`` and
``lightning_modules`` so that it loads outside the project too. A version is tagged with its
experiment and seed, the metric it won on (the seed's value and the mean over seeds) and the
checkpoint's SHA-256; when the champion is already that run and checkpoint nothing is logged again.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
from torch import nn

CHAMPION = "champion"
DECODE_LENGTH = 64  # the longest output of the greedy decoders (they stop once every row wrote END)
PAD = 0


# ------------------------------------------------------------------------ one wrapper per head


class Classifier(nn.Module):
    """Token ids (B, T), each row a whole sequence -> class probabilities (B, n_classes)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model.eval()

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        lengths = torch.full((tokens.shape[0],), tokens.shape[1], dtype=torch.long, device=tokens.device)
        return torch.softmax(self.model(tokens.long(), lengths), dim=-1)


class NextToken(nn.Module):
    """Token ids (B, T) -> logits (B, V) of the token that follows each row."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model.eval()

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        context = getattr(self.model.hparams, "context_length", None)  # a Transformer sees a window
        if context is not None:
            tokens = tokens[:, -context:]
        logits, _ = self.model(tokens.long())
        return logits[:, -1]


class GreedyDecoder(nn.Module):
    """Source ids (B, S), zero-padded at the end, or images (B, H, W) -> greedy output ids (B, L)."""

    def __init__(self, model: nn.Module, images: bool = False, max_length: int = DECODE_LENGTH):
        super().__init__()
        self.model = model.eval()
        self.images = images
        self.max_length = max_length

    def forward(self, source: torch.Tensor) -> torch.Tensor:
        if self.images:
            source, lengths = source.float(), None
        else:
            source = source.long()
            lengths = (source != PAD).sum(dim=1).clamp_min(1)
        tokens, _, _ = self.model.greedy(source, lengths, self.max_length)
        return tokens


class Sampler(nn.Module):
    """Noise (N, latent_dim) -> the generator's samples; class i % n_classes for a conditional GAN."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model.eval()

    def forward(self, noise: torch.Tensor) -> torch.Tensor:
        labels = None
        if getattr(self.model, "conditional", False):
            labels = torch.arange(noise.shape[0], device=noise.device) % self.model.n_classes
        return self.model.generate(noise.float(), labels)


def wrap(model: nn.Module, head: str) -> tuple[nn.Module, torch.Tensor]:
    """The registered module of a trained model of ``head``, and an input example for it."""
    generator = torch.Generator().manual_seed(0)
    hp = model.hparams
    if head == "classifier":
        return Classifier(model), torch.randint(0, hp.vocab_size, (2, 12), generator=generator)
    if head == "language-model":
        return NextToken(model), torch.randint(0, hp.vocab_size, (2, 16), generator=generator)
    if head == "seq2seq":
        first = 4 if hp.source_vocab_size > 4 else 1  # ids 0-3: <pad>, <s>, </s>, <unk>
        return GreedyDecoder(model), torch.randint(first, hp.source_vocab_size, (2, 12), generator=generator)
    if head == "captioner":
        return GreedyDecoder(model, images=True), torch.rand(2, hp.image_height, hp.image_width, generator=generator)
    if head in ("sampler-2d", "sampler-image"):
        return Sampler(model), torch.randn(4, model.settings.latent_dim, generator=generator)
    raise ValueError(f"no registry wrapper for the task head '{head}'")


def signature(example, output):
    """The signature MLflow infers, with the axes that vary left free: the batch always, and
    every axis of a sequence (token ids in or out) and of a decoder's output."""
    from mlflow.models import infer_signature
    from mlflow.models.signature import ModelSignature
    from mlflow.types.schema import Schema, TensorSpec

    inferred = infer_signature(example, output)

    def free(schema: Schema, sequence: bool) -> Schema:
        spec = schema.inputs[0]
        shape = (-1, *((-1 if sequence else n) for n in spec.shape[1:]))
        return Schema([TensorSpec(spec.type, shape)])

    tokens_in, tokens_out = example.dtype.kind == "i", output.dtype.kind == "i"
    return ModelSignature(inputs=free(inferred.inputs, tokens_in), outputs=free(inferred.outputs, tokens_out))


# ------------------------------------------------------------------------ registering champions


def model_name(config, task: str, dataset: str) -> str:
    """The registered model of one leaderboard table: ``<experiment>.<task>``, plus ``.<dataset>``
    where the dataset is not named after the task."""
    base = f"{config.tracking.experiment}.{task}"
    return base if dataset == task else f"{base}.{dataset}"


def champion_uri(name: str) -> str:
    return f"models:/{name}@{CHAMPION}"


@dataclass(frozen=True)
class Outcome:
    name: str
    experiment: str
    version: Optional[str]
    action: str  # "registered", "unchanged", "restored" (an earlier version is champion again), "skipped", "failed"
    seconds: float
    detail: str = ""
    seed: Optional[str] = None

    def line(self) -> str:
        if self.action in ("skipped", "failed"):
            return f"{self.name}: {self.action}, {self.detail}"
        return f"{self.name} v{self.version} @{CHAMPION} = {self.experiment} seed {self.seed} ({self.detail}; {self.action} in {self.seconds:.1f} s)"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def pip_requirements() -> list[str]:
    """What loading the model needs, pinned to what logged it (named, not inferred: inference
    starts a subprocess that imports the model, seconds per model)."""
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for package in ("mlflow", "torch", "pytorch-lightning", "pydantic", "numpy", "cloudpickle"):
        try:
            out.append(f"{package}=={version(package).split('+')[0]}")  # no local label (2.13.0+cpu)
        except PackageNotFoundError:
            out.append(package)
    return out


@contextlib.contextmanager
def _tracking_uri(uri: str):
    """``mlflow.pytorch.log_model`` talks to the global tracking URI: set it for the block,
    then put back the one that was in effect."""
    import mlflow

    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(previous)


@contextlib.contextmanager
def _quiet_pickle_warning():
    """MLflow warns at every pickled model that unpickling runs code; the README says so once."""
    import logging

    def keep(record: logging.LogRecord) -> bool:
        return "Pickle or CloudPickle" not in record.getMessage()

    logger = logging.getLogger("mlflow.pytorch")
    logger.addFilter(keep)
    try:
        yield
    finally:
        logger.removeFilter(keep)


def register_champions(config, layout, mlflow_client, uri: str, ranking) -> list[Outcome]:
    """Make the best seed of the best experiment of each (task, dataset) the ``champion`` of its
    registered model. ``ranking``: (task, dataset, rows best first) as ``compare.ranked`` gives
    them, a row being a ``compare.Row``; the best seed is the one that ranks first by the task's
    ranking on its own values. A failure is reported, not raised."""
    from pipeline.stages.compare import ranking_of

    out = []
    for task, dataset, rows in ranking:
        name = model_name(config, task.name, dataset)
        order = ranking_of(task)
        best = next((row for row in rows if row.stat(order[0][0]) is not None), None)
        if best is None:
            out.append(Outcome(name, "", None, "skipped", 0.0, "no experiment has a finite " + order[0][0]))
            continue
        started = time.perf_counter()
        try:
            out.append(_register(config, layout, mlflow_client, uri, task, order[0], name, best, best.best_seed(order), started))
        except Exception as exc:  # one table's failure must not cost the others or the report
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
            out.append(Outcome(name, best.name, None, "failed", time.perf_counter() - started, f"{best.name}: {type(exc).__name__}: {first}"))
    return out


def _register(config, layout, client, uri, task, metric, name, best, seed, started) -> Outcome:
    from mlflow.exceptions import MlflowException

    experiment, exp = best.name, best.exp
    key, higher = metric
    run_id = best.run_id(seed)
    if not isinstance(best.run.get("seeds"), dict):
        return Outcome(name, experiment, None, "skipped", 0.0, f"{experiment}'s run.json has no per-seed runs: train it again")
    checkpoint = layout.checkpoint(experiment, int(seed))
    if not run_id or not checkpoint.is_file():
        return Outcome(name, experiment, None, "skipped", 0.0, f"{experiment} seed {seed} has no {'MLflow run' if not run_id else 'checkpoint'}")
    digest = sha256(checkpoint)
    value, mean = float(best.seeds[seed][key]), best.stat(key)
    tags = {
        "zoo.experiment": experiment,
        "zoo.seed": seed,
        "zoo.task": task.name,
        "zoo.metric": key,  # what it won on
        "zoo.metric_value": f"{value:.6g}",  # the registered seed's
        "zoo.metric_mean": f"{mean.mean:.6g}",  # the experiment's, over its seeds
        "zoo.seeds": str(mean.n),
        "zoo.checkpoint_sha256": digest,
    }
    detail = f"{key} {value:.4g}"

    try:
        client.create_registered_model(
            name,
            tags={"zoo.task": task.name, "zoo.dataset": exp.dataset},
            description=f"The best experiment of the task {task.name} on {exp.dataset} by {key} "
            f"({'higher' if higher else 'lower'} is better, mean over seeds), its best seed; `zoo compare` moves the alias {CHAMPION}.",
        )
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise

    # The same run and checkpoint as a version already registered: point the alias there.
    try:
        current = client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        current = None
    same = None
    if current is not None and current.run_id == run_id and current.tags.get("zoo.checkpoint_sha256") == digest:
        same, action = current, "unchanged"
    else:
        for version in client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'"):
            if version.tags.get("zoo.checkpoint_sha256") == digest:
                same, action = version, "restored"
                break
    if same is not None:
        for tag, text in tags.items():
            if same.tags.get(tag) != text:  # re-evaluated: the same model, a new number
                client.set_model_version_tag(name, same.version, tag, text)
        if action == "restored":
            client.set_registered_model_alias(name, CHAMPION, same.version)
        return Outcome(name, experiment, same.version, action, time.perf_counter() - started, detail, seed)

    with _one_thread():
        return _log_and_register(client, uri, task, name, experiment, exp, run_id, checkpoint, tags, detail, started, seed)


@contextlib.contextmanager
def _one_thread():
    """Run the model on one thread: the examples are tiny, and a second thread competing with
    other busy processes made each small op ~50 times slower (seconds per decoded example)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def code_paths() -> list[str]:
    """The folders logged with every registered model (``code_paths``), which its pickled
    classes need to load: the whole ``pipeline`` package (its subpackages included, this
    module among them) and ``lightning_modules``."""
    import lightning_modules
    import pipeline

    return [str(Path(package.__file__).resolve().parent) for package in (pipeline, lightning_modules)]


def _log_and_register(client, uri, task, name, experiment, exp, run_id, checkpoint, tags, detail, started, seed) -> Outcome:
    import mlflow.pytorch

    from lightning_modules import MODELS
    from pipeline.stages.evaluate import load_model

    model = load_model(MODELS[exp.model].cls_for(task.head), exp.model, checkpoint)
    wrapper, example = wrap(model, task.head)
    with torch.no_grad():
        output = wrapper(example)
    code = code_paths()
    # The logged model belongs to the run's experiment: made here, since MLflow would put a
    # model logged without an active run into its default experiment ("0").
    source = client.get_run(run_id)
    logged = client.create_logged_model(
        source.info.experiment_id, name=experiment, source_run_id=run_id,
        tags={"zoo.experiment": experiment, "zoo.head": task.head}, params=dict(source.data.params),
    )
    with _tracking_uri(uri), _quiet_pickle_warning():
        info = mlflow.pytorch.log_model(
            wrapper,
            name=experiment,
            model_id=logged.model_id,
            run_id=run_id,
            signature=signature(example.numpy(), output.numpy()),
            input_example=example.numpy(),
            pip_requirements=pip_requirements(),
            code_paths=code,
            # Pickled (the classes by reference to the code above): torch.export (MLflow's
            # default, "pt2") cannot trace decoding loops or packed sequences, and fixes shapes.
            serialization_format="pickle",
        )
    version = client.create_model_version(
        name,
        source=info.model_uri,
        run_id=run_id,
        tags={**tags, "zoo.head": task.head},
        description=f"{experiment} ({exp.model}), seed {seed}: {wrapper.__class__.__name__} over the checkpoint; {detail}.",
        model_id=info.model_id,
    )
    client.set_registered_model_alias(name, CHAMPION, version.version)
    return Outcome(name, experiment, version.version, "registered", time.perf_counter() - started, detail, seed)
