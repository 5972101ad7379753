"""``zoo sample EXPERIMENT``: generate from a trained model (the first seed's, ``models/<experiment>/seed-<s>/model.ckpt``).

What comes out depends on the kind of the experiment's task (its ``Task.sample_kind``):

| kind      | tasks              | options                           | output                                            |
|-----------|--------------------|-----------------------------------|---------------------------------------------------|
| text      | charlm, xml        | --prompt, --temperature, --length | the prompt and its continuation                   |
| answer    | arithmetic         | --input, --n                      | the result written after the problem (greedy)     |
| translate | dates, translation | --input, --beam, --n              | the output of --input, or test inputs -> outputs  |
| caption   | captions           | --beam, --n                       | captions of test images (--output draws them)     |
| classify  | parity, sentiment  | --input, --n                      | the predicted class and its probability           |
| points    | mixture-2d         | --n                               | a scatter plot over the true means (PNG)          |
| images    | images             | --n, --label                      | an image grid (PNG); CoGAN: both domains          |

Every kind takes ``--seed`` (default: the experiment's seed): it fixes every random choice
(the sampled characters, the noise of a GAN, which test examples are shown), so the same seed
gives the same output. ``--output PATH`` names the file written: the picture of a GAN (default
``samples/<experiment>-<seed>.png``) or of the captioned images; for the text kinds a copy
of what is printed. An option that does not apply to the experiment's kind is a usage error
(``ConfigError``, exit 2), as is an unknown experiment; an untrained one exits 6
(``load_model``: "train the experiment first").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from pipeline.plumbing.errors import ConfigError
from pipeline.plumbing.startup import import_heavy
from pipeline.tasks.figures import write_png

DEFAULT_N = {"answer": 5, "translate": 5, "caption": 8, "classify": 5, "points": 2500, "images": 64}
MIN_SAMPLE_PIXELS = 48  # an image grid enlarges small samples (8×8 digits) by whole pixels to at least this side
DESCRIPTION = {
    "text": "a language model",
    "answer": "an arithmetic model",
    "translate": "a sequence-to-sequence model",
    "caption": "a captioner",
    "classify": "a classifier",
    "points": "a 2-D GAN",
    "images": "an image GAN",
}
APPLIES = {  # besides --seed and --output, which every kind takes
    "text": ("prompt", "temperature", "length"),
    "answer": ("input", "n"),
    "translate": ("input", "beam", "n"),
    "caption": ("beam", "n"),
    "classify": ("input", "n"),
    "points": ("n",),
    "images": ("n", "label"),
}


@dataclass(frozen=True)
class Options:
    """The command's options; None = not given (the kind's default)."""

    prompt: Optional[str] = None
    temperature: Optional[float] = None
    length: Optional[int] = None
    input: Optional[str] = None
    beam: Optional[int] = None
    n: Optional[int] = None
    label: Optional[int] = None
    seed: Optional[int] = None
    output: Optional[Path] = None


def flag(option: str) -> str:
    return f"--{option}"


@dataclass(frozen=True)
class Sampled:
    text: Optional[str]  # what the command prints on stdout (None: nothing; "" is an empty output)
    summary: str  # the last line: what was generated and where it was written
    path: Optional[Path] = None  # the file written, if any


@dataclass(frozen=True)
class Context:
    name: str
    exp: object  # config.Experiment
    task: object  # pipeline.tasks.base.Task
    model: object  # the LightningModule, in eval mode
    config: object
    layout: object
    data_dir: Path
    seed: int
    options: Options

    def n(self, kind: str) -> int:
        return self.options.n if self.options.n is not None else DEFAULT_N[kind]


def kind_of(task) -> str:
    """What the task says ``zoo sample`` does with its models (``Task.sample_kind``)."""
    if task.sample_kind not in SAMPLERS:
        raise ConfigError("", f"task {task.name} has no sample kind ``zoo sample`` knows (sample_kind {task.sample_kind!r}; known: {', '.join(SAMPLERS)})")
    return task.sample_kind


def check_options(name: str, exp, kind: str, options: Options) -> None:
    """Usage errors (exit 2) before anything is loaded: an option the experiment's kind does not take."""
    allowed = set(APPLIES[kind]) | {"seed", "output"}
    for f in fields(Options):
        if getattr(options, f.name) is not None and f.name not in allowed:
            takes = ", ".join(flag(o) for o in (*APPLIES[kind], "seed", "output"))
            raise ConfigError(
                "", f"{flag(f.name)} does not apply to experiment '{name}', {DESCRIPTION[kind]} "
                f"(task {exp.task}, model {exp.model}); it takes {takes}"
            )
    if options.prompt is not None and not options.prompt:
        raise ConfigError("", "--prompt is empty: a language model needs at least one character to continue")
    if options.input is not None and not options.input.strip():
        raise ConfigError("", "--input is empty")


def check_label(name: str, exp, options: Options, model_cls) -> None:
    """--label needs a conditional model (its class says; nothing is loaded yet)."""
    if options.label is not None and not getattr(model_cls, "conditional", False):
        from lightning_modules import MODELS

        conditional = sorted(m for m, e in MODELS.items() if "sampler-image" in e.heads and getattr(e.cls_for("sampler-image"), "conditional", False))
        raise ConfigError(
            "", f"--label: experiment '{name}' (model {exp.model}) is not conditional, it takes no class label; "
            f"conditional image GANs: {', '.join(conditional)}"
        )


def sample(config, layout, name: str, options: Options = Options()) -> Sampled:
    from lightning_modules import MODELS
    from pipeline.stages.evaluate import load_model
    from pipeline.stages.fetch import verify
    from pipeline.stages.train import quiet_lightning
    from pipeline.tasks import TASKS

    exp = config.experiment(name)  # an unknown experiment: ConfigError, exit 2
    import_heavy("torch", "pytorch_lightning")  # before the task's module, which imports them
    task, entry = TASKS[exp.task], MODELS[exp.model]
    kind = kind_of(task)
    check_options(name, exp, kind, options)
    cls = entry.cls_for(task.head)
    check_label(name, exp, options, cls)

    import torch

    quiet_lightning()
    model = load_model(cls, entry.name, layout.checkpoint(name, config.experiment_seed(name)))  # the first seed's; untrained: ModelError, exit 6
    model.eval()
    verify(config, layout, exp.dataset)  # vocabularies and test examples come from the dataset
    seed = options.seed if options.seed is not None else config.experiment_seed(name)
    torch.manual_seed(seed)
    context = Context(name, exp, task, model, config, layout, layout.dataset(exp.dataset), seed, options)
    return SAMPLERS[kind](context)


# ------------------------------------------------------------------------------ helpers


def shown(path: Path) -> str:
    """A path as the user would type it: relative to the current folder when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def picture_path(c: Context) -> Path:
    if c.options.output is not None:
        return Path(c.options.output)
    return c.layout.root / "samples" / f"{c.name}-{c.seed}.png"


def finish_text(c: Context, text: str, what: str) -> Sampled:
    """Text kinds: print ``text``; with --output also write it there."""
    if c.options.output is None:
        return Sampled(text, f"{c.name}: {what}, seed {c.seed} (printed above; nothing written)")
    from pipeline.plumbing.atomic import write_text

    path = Path(c.options.output)
    write_text(path, text + "\n")
    return Sampled(text, f"{c.name}: {what}, seed {c.seed} -> {shown(path)}", path)


def pick(count: int, n: int, seed: int) -> np.ndarray:
    """``n`` of ``count`` examples, drawn with the seed, in their order in the split."""
    return np.sort(np.random.default_rng(seed).choice(count, size=min(n, count), replace=False))


def subset(split: dict[str, np.ndarray], rows: np.ndarray) -> dict[str, np.ndarray]:
    return {k: v[rows] for k, v in split.items()}


# ------------------------------------------------------------------------------ text


def encode_prompt(prompt: str, chars: list[str], dataset: str) -> list[int]:
    """Character ids; a character the dataset does not know reads as its unknown character
    (``charlm``'s corpora), or is a usage error where the vocabulary has none (``xml``)."""
    from pipeline.datasets.text import UNKNOWN

    index = {ch: i for i, ch in enumerate(chars)}
    ids = []
    for ch in prompt:
        if ch in index:
            ids.append(index[ch])
        elif UNKNOWN in index:
            ids.append(index[UNKNOWN])
        else:
            known = "".join(chars).replace("\n", "\\n")
            raise ConfigError("", f"--prompt: character {ch!r} is not in dataset '{dataset}' (its characters: {known})")
    return ids


def sample_text(c: Context) -> Sampled:
    import torch

    from pipeline.tasks.language import decode, vocabulary

    sampling = c.exp.common.sampling
    prompt = c.options.prompt if c.options.prompt is not None else sampling.prompt
    length = c.options.length if c.options.length is not None else sampling.length
    temperature = c.options.temperature if c.options.temperature is not None else sampling.temperature
    chars = vocabulary(c.data_dir)
    ids = encode_prompt(prompt, chars, c.exp.dataset)
    generated = c.model.sample(ids, length, temperature, torch.Generator().manual_seed(c.seed))
    text = prompt + decode(generated, chars)
    how = "greedy (temperature 0)" if temperature <= 0 else f"temperature {temperature:g}"
    return finish_text(c, text, f"{length} characters after a prompt of {len(prompt)}, {how}")


# ------------------------------------------------------------------------------ arithmetic


def sample_answer(c: Context) -> Sampled:
    import torch

    from pipeline.datasets import arithmetic as data
    from pipeline.tasks.base import load_split

    test = load_split(c.data_dir, "test")
    width = test["targets"].shape[1] + 1
    if c.options.input is not None:
        problem = c.options.input.strip()
        wrong = sorted({ch for ch in problem if ch not in data.CHAR_ID or data.CHAR_ID[ch] <= data.END})
        if wrong:
            raise ConfigError("", f"--input: {', '.join(map(repr, wrong))} not in the arithmetic vocabulary (digits, + and -, lowercase letters as distractors), e.g. 12+345")
        problems = [problem]
        ids, lengths = data.encode(problems)
        references = [None]
        width = max(width, len(problem) + 2)
    else:
        rows = pick(len(test["inputs"]), c.n("answer"), c.seed)
        ids, lengths = test["inputs"][rows], test["input_lengths"][rows]
        problems = [data.decode(row, int(n)) for row, n in zip(ids, lengths)]
        references = [data.decode(row, int(n)) for row, n in zip(test["targets"][rows], test["target_lengths"][rows])]
    prompts = np.zeros((len(problems), ids.shape[1] + 1), dtype=np.int64)
    prompts[:, : ids.shape[1]] = ids
    prompts[np.arange(len(problems)), lengths.astype(np.int64)] = data.START
    out = c.model.greedy_answers(torch.from_numpy(prompts), torch.from_numpy(lengths.astype(np.int64) + 1), width).numpy()
    answers = [data.decode(row[: list(row).index(data.END)] if data.END in row else row) for row in out]
    if c.options.input is not None:
        return finish_text(c, answers[0], f"the answer to {problems[0]!r} (greedy)")
    lines = [f"{p} -> {a}" + ("" if a == r else f"   (reference: {r})") for p, a, r in zip(problems, answers, references)]
    right = sum(a == r for a, r in zip(answers, references))
    return finish_text(c, "\n".join(lines), f"{len(lines)} test problems (greedy), {right} right")


# ------------------------------------------------------------------------------ seq2seq and captions


def decode_batch(model, arrays: list[np.ndarray], max_length: int, beam: int) -> list[list[int]]:
    """Beam search of width ``beam`` (1: greedy, ``lightning_modules.decoding``): token ids up to END."""
    import torch

    from pipeline.tasks.seq2seq import until_end

    with torch.no_grad():
        source, lengths = (torch.from_numpy(np.ascontiguousarray(a)).to(model.device) for a in arrays)
        tokens, _ = model.beam_search(source, lengths, max_length, beam)
    return [until_end(row) for row in tokens.cpu()]


def decoding(c: Context) -> tuple[int, int, str]:
    """Beam width, longest output (as the evaluation decodes: the test targets' width + 1) and its description."""
    from pipeline.tasks.base import load_split

    beam = c.options.beam if c.options.beam is not None else int(c.model.hparams.beam_width)
    widths = [load_split(c.data_dir, s)["target"].shape[1] for s in ("test", "test_long") if (c.data_dir / f"{s}.npz").is_file()]
    return beam, max(widths) + 1, "greedy" if beam <= 1 else f"beam search, width {beam}"


def sample_translate(c: Context) -> Sampled:
    from pipeline.datasets.dates import SPECIALS
    from pipeline.tasks.base import load_split

    vocab = load_split(c.data_dir, "vocab")
    targets, joiner = [str(t) for t in vocab["target_tokens"]], str(vocab["joiner"][0])
    beam, max_length, how = decoding(c)
    if c.options.input is not None:
        index = {str(t): i for i, t in enumerate(vocab["source_tokens"])}
        unk = SPECIALS.index("<unk>")
        tokens = c.task.source_tokens(c.options.input)
        ids = np.array([[index.get(t, unk) for t in tokens]], dtype=np.int64)
        (out,) = decode_batch(c.model, [ids, np.array([len(tokens)], dtype=np.int64)], max_length, beam)
        unknown = sum(t not in index for t in tokens)
        note = f" ({unknown} of its {len(tokens)} tokens unknown to the model, read as <unk>)" if unknown else ""
        return finish_text(c, joiner.join(targets[t] for t in out), f"the output for --input{note}, {how}")
    test = load_split(c.data_dir, "test")
    rows = pick(len(test["source"]), c.n("translate"), c.seed)
    part = subset(test, rows)
    outs = decode_batch(c.model, c.task.source_arrays(part), max_length, beam)
    lines, right = [], 0
    for i, out in enumerate(outs):
        ref = part["target"][i, : int(part["target_lengths"][i])].tolist()
        right += out == ref
        shown_out = joiner.join(targets[t] for t in out)
        line = f"{c.task.describe_source(part, i, vocab)} -> {shown_out}"
        lines.append(line if out == ref else f"{line}   (reference: {joiner.join(targets[t] for t in ref)})")
    return finish_text(c, "\n".join(lines), f"{len(lines)} test examples ({how}), {right} right")


def sample_caption(c: Context) -> Sampled:
    from pipeline.tasks.base import load_split

    vocab = load_split(c.data_dir, "vocab")
    words = [str(t) for t in vocab["target_tokens"]]
    beam, max_length, how = decoding(c)
    test = load_split(c.data_dir, "test")
    rows = pick(len(test["images"]), c.n("caption"), c.seed)
    part = subset(test, rows)
    outs = decode_batch(c.model, c.task.source_arrays(part), max_length, beam)
    captions, lines, right = [], [], 0
    for i, (row, out) in enumerate(zip(rows, outs)):
        ref = part["target"][i, : int(part["target_lengths"][i])].tolist()
        right += out == ref
        captions.append(" ".join(words[t] for t in out))
        line = f"test image {row}: {captions[-1]}"
        lines.append(line if out == ref else f"{line}   (reference: {' '.join(words[t] for t in ref)})")
    what = f"captions of {len(lines)} test images ({how}), {right} right"
    if c.options.output is None:
        return Sampled("\n".join(lines), f"{c.name}: {what}, seed {c.seed} (printed above; --output PATH draws them)")
    path = Path(c.options.output)
    draw_captions(part["images"].astype(np.float32) / 16.0, captions, rows, f"{c.name}, seed {c.seed}", path)
    return Sampled("\n".join(lines), f"{c.name}: {what}, seed {c.seed} -> {shown(path)}", path)


def draw_captions(images: np.ndarray, captions: list[str], rows: np.ndarray, title: str, path: Path) -> None:
    """One captioned image per row (grey levels 0 .. 1, dark strokes on white as the task's attention pictures)."""
    from pipeline.tasks.figures import pyplot, save_figure

    plt = pyplot()
    n, height, width = images.shape
    fig, axes = plt.subplots(n, 1, figsize=(max(3.0, width / 8 * 0.9 + 1), 0.95 * n + 0.5), squeeze=False)
    for ax, image, caption, row in zip(axes[:, 0], images, captions, rows):
        ax.imshow(image, cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(f"{row}: {caption}", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)


# ------------------------------------------------------------------------------ classifiers


def sample_classify(c: Context) -> Sampled:
    import torch

    from pipeline.tasks.base import load_split

    names = c.task.class_names or tuple(str(k) for k in range(int(c.model.hparams.n_classes)))

    def probabilities(tokens: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            logits = c.model(torch.from_numpy(tokens.astype(np.int64)), torch.from_numpy(np.maximum(lengths, 1).astype(np.int64)))
        return torch.softmax(logits.float(), dim=-1).numpy()

    if c.options.input is not None:
        ids = c.task.encode_text(c.options.input, c.data_dir, c.config.dataset(c.exp.dataset).settings)
        p = probabilities(np.array([ids]), np.array([len(ids)]))[0]
        k = int(p.argmax())
        return finish_text(c, f"{names[k]} (probability {p[k]:.3f})", f"the class of --input ({len(ids)} tokens)")
    test = load_split(c.data_dir, "test")
    rows = pick(len(test["tokens"]), c.n("classify"), c.seed)
    part = subset(test, rows)
    width = int(part["lengths"].max())
    p = probabilities(part["tokens"][:, :width], part["lengths"])
    lines, right = [], 0
    for i in range(len(rows)):
        k, label = int(p[i].argmax()), int(part["labels"][i])
        right += k == label
        line = f"{c.task.show_tokens(part['tokens'][i, : int(part['lengths'][i])], c.data_dir)} -> {names[k]} (probability {p[i, k]:.3f})"
        lines.append(line if k == label else f"{line}   (label: {names[label]})")
    return finish_text(c, "\n".join(lines), f"{len(lines)} test examples, {right} right")


# ------------------------------------------------------------------------------ GANs


def sample_points(c: Context) -> Sampled:
    import torch

    from pipeline.evaluation.metrics import mixture_metrics
    from pipeline.tasks.base import load_split
    from pipeline.tasks.mixture import plot_samples

    n = c.n("points")
    mixture = load_split(c.data_dir, "means")
    points = c.model.sample(n, generator=torch.Generator().manual_seed(c.seed)).cpu().numpy()
    metrics = mixture_metrics(points, mixture["means"], float(mixture["std"]))
    path = picture_path(c)
    plot_samples(points, mixture["means"], float(mixture["std"]), metrics, f"{c.name}: {n} samples, seed {c.seed}", path)
    text = f"{metrics['modes_covered']}/{len(mixture['means'])} modes covered, {metrics['high_quality_pct']:.1f}% high quality, reverse KL {metrics['reverse_kl']:.3f}"
    return Sampled(text, f"{c.name}: scatter plot of {n} samples, seed {c.seed} -> {shown(path)}", path)


def grid_rows(n: int) -> int:
    """Rows of a near-square grid of ``n`` samples: ceil(sqrt(n)) columns."""
    return math.ceil(n / math.ceil(math.sqrt(n)))


def image_grid(panels: list[np.ndarray], rows: int) -> np.ndarray:
    """Samples (N, C, S, S) in [−1, 1] of each panel laid out in ``rows`` rows
    (``pipeline.tasks.figures.mosaic``, 1-pixel white lines), panels side by side, every pixel
    enlarged to whole k×k blocks so a sample is at least ``MIN_SAMPLE_PIXELS`` wide: (H, W, C) in [0, 1]."""
    from pipeline.tasks.figures import mosaic

    side = panels[0].shape[-1]
    mosaics = [mosaic(p, rows) for p in panels]
    gap = np.ones((mosaics[0].shape[0], side, mosaics[0].shape[2]), dtype=np.float32)
    parts = [mosaics[0]]
    for m in mosaics[1:]:
        parts += [gap, m]
    grid = np.concatenate(parts, axis=1)
    scale = max(1, math.ceil(MIN_SAMPLE_PIXELS / side))
    return grid.repeat(scale, axis=0).repeat(scale, axis=1)


def describe_domains(n: int, names: list[str]) -> str:
    if len(names) == 1:
        return f"{n} samples"
    if len(names) == 2:
        return f"{n} pairs, domain {names[0]} (left) and {names[1]} (right) from the same noise"
    return f"{n} samples in each of the domains {', '.join(names)} (left to right) from the same noise"


def sample_images(c: Context) -> Sampled:
    import torch

    from pipeline.tasks.base import load_split

    model, n = c.model, c.n("images")
    names = [str(s) for s in load_split(c.data_dir, "classes")["names"]]
    generator = torch.Generator().manual_seed(c.seed)
    rows = grid_rows(n)
    with torch.no_grad():
        if model.conditional and c.options.label is not None:
            if not 0 <= c.options.label < model.n_classes:
                raise ConfigError("", f"--label: experiment '{c.name}' has classes 0 .. {model.n_classes - 1} (got {c.options.label})")
            labels = torch.full((n,), c.options.label, dtype=torch.long)
            panels = [model.sample(n, generator=generator, labels=labels).cpu().numpy()]
            what = f"{n} samples of class {c.options.label} ({names[c.options.label]!r})"
        elif model.conditional:  # one column per class
            k = model.n_classes
            labels = torch.arange(n) % k
            images = model.sample(n, generator=generator, labels=labels).cpu().numpy()
            rows = math.ceil(n / k)
            blank = np.ones((rows * k - n, *images.shape[1:]), dtype=images.dtype)  # white, as the grid lines
            panels = [np.concatenate([images, blank])]
            what = f"{n} samples, one column per class ({', '.join(names)})"
        else:  # one panel per domain the model generates (CoGAN: A and B), from the same noise
            domains = model.sample_domains(n, generator)
            panels = [x.cpu().numpy() for x in domains.values()]
            what = describe_domains(n, list(domains))
    grid = image_grid(panels, rows)
    path = picture_path(c)
    write_png(grid, path)
    return Sampled(None, f"{c.name}: {what}, seed {c.seed} -> {shown(path)} ({grid.shape[1]}×{grid.shape[0]} px)", path)


SAMPLERS: dict[str, Callable[[Context], Sampled]] = {
    "text": sample_text,
    "answer": sample_answer,
    "translate": sample_translate,
    "caption": sample_caption,
    "classify": sample_classify,
    "points": sample_points,
    "images": sample_images,
}
