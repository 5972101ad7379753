"""Sequence to sequence: ``dates`` (human-written dates -> ISO 8601, characters) and
``translation`` (English -> Dutch, Moses tokens), for every model with a ``seq2seq`` head.

Training: teacher forcing; the decoder reads <s> y_1 .. y_n and is trained to write y_1 .. y_n </s>.
Evaluation on ``test`` (and ``test_long`` where the dataset has it), with both decoders of
``lightning_modules.decoding``: greedy, and beam search of the model's ``beam_width``.
- ``exact_match`` (beam; the leaderboard's rank), ``exact_match_greedy``, ``token_accuracy``
  (beam; reference tokens right at their position), ``bleu`` (beam; sacrebleu on the task's
  tokens: characters for dates, so it scores partly right dates), and ``*_long`` on test_long;
- exact match (beam) against the input length over test and test_long together (Bahdanau et
  al. 2015's Fig. 2), ``accuracy_by_length.csv`` / ``.png`` (a dashed line marks the longest
  training input) and an MLflow series; ``zoo compare`` draws every model of a dataset in one plot;
  the corpus BLEU of each length bin likewise, ``bleu_by_length.csv`` and an MLflow series;
- ``samples.txt`` (in ``samples/<experiment>/``): input, reference, greedy and beam outputs of fixed test examples;
- for models that attend: ``attention_<split>_<k>.png``, the weights of fixed test examples as a heat
  map (output tokens down, input tokens across; an input of more than 60 tokens is cropped to the
  span that holds the attention, and the axis says which tokens are shown).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

from pipeline.plumbing.atomic import write_text
from pipeline.plumbing.progress import progress
from pipeline.training.loaders import batch_loader, batches
from pipeline.evaluation.metrics import bleu, exact_match, mean_by, token_accuracy
from pipeline.tasks.base import Column, Evaluation, Prepared, Task, load_split
from pipeline.tasks.figures import pyplot, save_figure
from pipeline.tasks.parity import read_curve

PAD, START, END = 0, 1, 2
DECODE_BATCH = 256
HEATMAP_EXAMPLES = {"test": 3, "test_long": 2}  # the first examples of each split get a heat map
SAMPLE_EXAMPLES = 12


def teacher_forcing_arrays(target: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Decoder input <s> y_1..y_n and target y_1..y_n </s>, zero-padded: both (N, U + 1)."""
    n, width = target.shape
    rows = np.arange(n)
    decoder_input = np.zeros((n, width + 1), dtype=np.int64)
    decoder_target = np.zeros((n, width + 1), dtype=np.int64)
    decoder_input[:, 0] = START
    decoder_input[:, 1:] = target
    decoder_target[:, :width] = target
    decoder_target[rows, lengths.astype(np.int64)] = END
    return decoder_input, decoder_target


def references(split: dict[str, np.ndarray]) -> list[list[int]]:
    return [row[:n].tolist() for row, n in zip(split["target"], split["target_lengths"].astype(int))]


def until_end(row) -> list[int]:
    out = []
    for t in row.tolist():
        if t in (END, PAD):
            break
        out.append(t)
    return out


class LengthBuckets(Sampler):
    """Batches of similar source lengths, so that little of a batch is padding: each epoch a
    permutation drawn from (seed, epoch) is cut into pools of ``POOL`` batches, each pool is
    sorted by length and cut into batches, and the batches are shuffled."""

    POOL = 32

    def __init__(self, lengths: np.ndarray, batch_size: int, seed: int):
        self.lengths, self.batch_size, self.seed, self.epoch = np.asarray(lengths), batch_size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return -(-len(self.lengths) // self.batch_size)

    def __iter__(self):
        rng = np.random.default_rng([self.seed, self.epoch])
        order, pool, out = rng.permutation(len(self.lengths)), self.batch_size * self.POOL, []
        for start in range(0, len(order), pool):
            chunk = order[start : start + pool]
            chunk = chunk[np.argsort(self.lengths[chunk], kind="stable")]
            out += [chunk[i : i + self.batch_size].tolist() for i in range(0, len(chunk), self.batch_size)]
        return iter([out[k] for k in rng.permutation(len(out))])


def bucketed_batches(arrays: list[np.ndarray], lengths: np.ndarray, batch_size: int, seed: int) -> DataLoader:
    return batch_loader(arrays, LengthBuckets(lengths, batch_size, seed))


class SequenceTask(Task):
    """What the seq2seq and captioning tasks share; subclasses say what the source is."""

    primary = "exact_match"
    ranking = (("exact_match", True), ("token_accuracy", True))
    length_key = "source_lengths"  # the x axis of the accuracy-by-length curve
    length_label = "input length"
    length_bin = 1
    compare_curves = ("val_token_accuracy", "val_loss")

    def source_arrays(self, split: dict[str, np.ndarray]) -> list[np.ndarray]:
        return [split["source"].astype(np.int64), split["source_lengths"].astype(np.int64)]

    def model_args(self, data_dir: Path, vocab: dict[str, np.ndarray]) -> dict:
        raise NotImplementedError

    def prepare(self, data_dir, manifest, common, seed):
        vocab = load_split(data_dir, "vocab")
        loaders = []
        for name in ("train", "val"):
            split = load_split(data_dir, name)
            dec_in, dec_out = teacher_forcing_arrays(split["target"], split["target_lengths"])
            arrays = [*self.source_arrays(split), dec_in, dec_out]
            if name == "train" and self.length_key == "source_lengths":
                loaders.append(bucketed_batches(arrays, split["source_lengths"], common.batch_size, seed))
            else:
                loaders.append(batches(arrays, common.batch_size, shuffle=name == "train", seed=seed))
        return Prepared(train=loaders[0], val=loaders[1], model_args=self.model_args(data_dir, vocab))

    @torch.no_grad()
    def decode(self, model, split: dict[str, np.ndarray]):
        """Greedy and beam outputs (lists of token ids) and the greedy attention (list of (U, S) or None)."""
        model.eval()
        arrays = self.source_arrays(split)
        max_length = split["target"].shape[1] + 1
        greedy, beam, attention = [], [], []
        starts = range(0, len(arrays[0]), DECODE_BATCH)
        for start in progress(starts, len(starts), "decoding (greedy and beam)", "batch"):
            source, lengths = (torch.from_numpy(a[start : start + DECODE_BATCH]).to(model.device) for a in arrays)
            first = model.greedy(source, lengths, max_length)
            tokens, _, attn = first
            greedy += [until_end(r) for r in tokens.cpu()]
            attention += [None] * len(tokens) if attn is None else list(attn.cpu().numpy())
            tokens, _ = model.beam_search(source, lengths, max_length, model.hparams.beam_width, greedy=first)
            beam += [until_end(r) for r in tokens.cpu()]
        return greedy, beam, attention

    def evaluate(self, model, data_dir, manifest, plots_dir, seed, title, common=None):
        vocab = load_split(data_dir, "vocab")
        targets, joiner = [str(t) for t in vocab["target_tokens"]], str(vocab["joiner"][0])
        metrics, by_length, samples = {}, {}, []
        bleu_bins: dict[int, tuple[list, list]] = {}  # length bin -> (hypotheses, references), both test splits
        for name in ("test", "test_long"):
            if not (data_dir / f"{name}.npz").is_file():
                continue
            split = load_split(data_dir, name)
            refs = references(split)
            greedy, beam, attention = self.decode(model, split)
            suffix = "" if name == "test" else "_long"
            hits = exact_match(beam, refs)
            metrics[f"exact_match{suffix}"] = float(hits.mean())
            metrics[f"exact_match_greedy{suffix}"] = float(exact_match(greedy, refs).mean())
            metrics[f"token_accuracy{suffix}"] = token_accuracy(beam, refs)
            metrics[f"bleu{suffix}"] = bleu(beam, refs)
            bins = (split[self.length_key].astype(np.int64) // self.length_bin) * self.length_bin
            for k, v in mean_by(hits, bins).items():
                by_length.setdefault(k, []).append((v, int((bins == k).sum())))
            for i, k in enumerate(bins.tolist()):
                hyps, bin_refs = bleu_bins.setdefault(int(k), ([], []))
                hyps.append(beam[i])
                bin_refs.append(refs[i])
            for i in range(min(SAMPLE_EXAMPLES, len(refs))):
                show = lambda ids: joiner.join(targets[t] for t in ids)  # noqa: E731
                samples.append(f"[{name} {i}] {self.describe_source(split, i, vocab)}\n  reference: {show(refs[i])}\n  greedy:    {show(greedy[i])}\n  beam:      {show(beam[i])}\n")
            for i in range(min(HEATMAP_EXAMPLES[name], len(refs))):
                if attention[i] is not None:
                    self.draw_attention(split, i, vocab, greedy[i], attention[i], plots_dir / f"attention_{name}_{i}.png", title)
        curve = {k: sum(v * n for v, n in parts) / sum(n for _, n in parts) for k, parts in sorted(by_length.items())}
        write_text(plots_dir / "accuracy_by_length.csv", "length,exact_match\n" + "".join(f"{k},{v:.4f}\n" for k, v in curve.items()))
        plot_by_length({title: curve}, self, plots_dir / "accuracy_by_length.png", longest_trained=self.longest_trained(data_dir))
        # corpus BLEU of each length bin (Bahdanau et al. 2015's Fig. 2 plots BLEU against sentence length)
        bleu_curve = {k: bleu(*bleu_bins[k]) for k in sorted(bleu_bins)}
        write_text(plots_dir / "bleu_by_length.csv", "length,bleu\n" + "".join(f"{k},{v:.2f}\n" for k, v in bleu_curve.items()))
        beam_width = model.hparams.beam_width
        text = f"# {title}: greedy and beam search (width {beam_width})\n\n" + "\n".join(samples)
        return Evaluation(metrics, {"exact_match_by_length": curve, "bleu_by_length": bleu_curve}, texts={"samples.txt": text})

    def longest_trained(self, data_dir: Path) -> int:
        """The longest training input, on the curve's length axis."""
        return int(load_split(data_dir, "train")[self.length_key].max())

    def describe_source(self, split, i, vocab) -> str:
        tokens = [str(t) for t in vocab["source_tokens"]]
        n = int(split["source_lengths"][i])
        return str(vocab["joiner"][0]).join(tokens[t] for t in split["source"][i, :n])

    def draw_attention(self, split, i, vocab, output, weights, path, title):
        tokens = [str(t) for t in vocab["source_tokens"]]
        n = int(split["source_lengths"][i])
        source = [("␣" if t == " " else t) for t in (tokens[k] for k in split["source"][i, :n])]
        target_tokens = [str(t) for t in vocab["target_tokens"]]
        rows = ([target_tokens[t] for t in output] + ["</s>"])[: len(weights)]
        plot_heatmap(weights[: len(rows), :n], source, rows, f"{title}: attention", path)

    def compare_plots(self, experiments, layout, out_dir):
        curves = {}
        for name in experiments:
            csv = layout.plots(name) / "accuracy_by_length.csv"
            if csv.is_file():
                curves[name] = read_curve(csv)
        if not curves:
            return []
        path = out_dir / f"exact_match_by_length_{next(iter(experiments.values()))}.png"
        plot_by_length(curves, self, path)
        return [path]


class Seq2SeqTask(SequenceTask):
    head = "seq2seq"
    sample_kind = "translate"
    columns = (
        Column("exact_match", "exact match (beam)"),
        Column("exact_match_greedy", "exact match (greedy)"),
        Column("token_accuracy", "token accuracy"),
        Column("bleu", "BLEU", "{:.1f}"),
    )

    def model_args(self, data_dir, vocab):
        return {"source_vocab_size": len(vocab["source_tokens"]), "target_vocab_size": len(vocab["target_tokens"])}

    def source_tokens(self, text: str) -> list[str]:
        """``text`` cut into the tokens the dataset cut its sources into: characters by default."""
        return list(text)


class DatesTask(Seq2SeqTask):
    name = "dates"
    description = "a date as people write it (characters) -> ISO 8601; test_long embeds it in phrases longer than any training input"
    sources = frozenset({"dates"})
    ranking = (("exact_match", True), ("exact_match_long", True), ("token_accuracy", True))
    columns = (
        *Seq2SeqTask.columns[:2],
        Column("exact_match_long", "exact match, long inputs (beam)"),
        Column("exact_match_greedy_long", "exact match, long inputs (greedy)"),
        *Seq2SeqTask.columns[2:],
    )
    length_bin = 10
    length_label = "input length (characters, bins of 10)"


class TranslationTask(Seq2SeqTask):
    name = "translation"
    description = "English sentence -> Dutch sentence (Tatoeba pairs, Moses tokens)"
    sources = frozenset({"translation"})
    length_label = "input length (tokens)"

    def source_tokens(self, text):
        """Lower-cased Moses tokens, as ``pipeline.datasets.translation`` reads English."""
        from sacremoses import MosesTokenizer

        return MosesTokenizer(lang="en").tokenize(text.lower(), escape=False)


def plot_by_length(curves: dict[str, dict[int, float]], task: SequenceTask, path: Path, longest_trained: int | None = None) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    if longest_trained is not None:
        ax.axvline(longest_trained + 0.5, color="grey", linestyle="--", linewidth=1, label="longest training input")
    for i, (name, curve) in enumerate(curves.items()):
        xs = [k + (task.length_bin - 1) / 2 for k in curve]  # a bin's middle
        ax.plot(xs, list(curve.values()), linestyle=["-", "--", ":", "-."][i % 4], marker="o", markersize=4, label=name)
    ax.set(xlabel=task.length_label, ylabel="exact match (beam search)", ylim=(-0.02, 1.02), title=f"{task.name}: exact match by input length")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)


HEATMAP_COLUMNS = 60  # wider inputs are cropped to where the attention is
HEATMAP_FLOOR = 0.05  # a column left out holds less than this weight in every row
HEATMAP_MARGIN = 8  # input tokens kept either side of the attended span


def attended_span(weights: np.ndarray, limit: int = HEATMAP_COLUMNS) -> tuple[int, int]:
    """The columns [lo, hi) a heat map of ``weights`` (rows, columns) shows: all of them up to
    ``limit``; beyond it, the span of the columns that hold at least ``HEATMAP_FLOOR`` in some
    row, with ``HEATMAP_MARGIN`` tokens either side (so a long input's map stays readable)."""
    n = weights.shape[1]
    if n <= limit:
        return 0, n
    attended = np.flatnonzero(weights.max(axis=0) >= HEATMAP_FLOOR)
    if attended.size == 0:
        return 0, n
    return max(0, int(attended[0]) - HEATMAP_MARGIN), min(n, int(attended[-1]) + 1 + HEATMAP_MARGIN)


def plot_heatmap(weights: np.ndarray, columns: list[str], rows: list[str], title: str, path: Path) -> None:
    """Attention weights (len(rows), len(columns)) with the tokens as tick labels; an input
    longer than ``HEATMAP_COLUMNS`` is shown from just before its first to just after its last
    attended token (``attended_span``), and the axis says which characters those are."""
    lo, hi = attended_span(weights)
    xlabel = "input" if (lo, hi) == (0, len(columns)) else (
        f"input, tokens {lo + 1}-{hi} of {len(columns)} (the others: weight < {HEATMAP_FLOOR} in every row)"
    )
    weights, columns = weights[:, lo:hi], columns[lo:hi]
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(max(4.0, 0.22 * len(columns) + 1.5), max(2.5, 0.3 * len(rows) + 1.2)))
    image = ax.imshow(weights, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(len(columns)), columns, fontsize=8, family="monospace")
    ax.set_yticks(range(len(rows)), rows, fontsize=8, family="monospace")
    ax.set(xlabel=xlabel, ylabel="output", title=title)
    fig.colorbar(image, ax=ax, fraction=0.03)
    fig.tight_layout()
    save_figure(fig, path)
