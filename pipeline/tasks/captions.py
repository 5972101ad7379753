"""Captioning: an image of two to four handwritten digits -> their words ("three one four"),
for every model with a ``captioner`` head. Test images are built from digit images held out
of training.

Metrics as the seq2seq tasks (``pipeline.tasks.seq2seq``): exact match (beam, the rank),
exact match (greedy), token accuracy, BLEU, and exact match against the number of digits.
For models that attend, ``attention_test_<k>.png`` draws the image once per output word with
the attention weights over the feature grid laid over it (Xu et al. 2015, figure 3).
"""

from __future__ import annotations

import numpy as np

from pipeline.tasks.base import Column
from pipeline.tasks.figures import pyplot, save_figure
from pipeline.tasks.seq2seq import SequenceTask


class CaptionsTask(SequenceTask):
    name = "captions"
    description = "image of two to four handwritten digits (held-out digit images at test) -> their words"
    sources = frozenset({"captions"})
    head = "captioner"
    sample_kind = "caption"
    length_key = "target_lengths"
    length_label = "digits in the image"
    columns = (
        Column("exact_match", "exact match (beam)"),
        Column("exact_match_greedy", "exact match (greedy)"),
        Column("token_accuracy", "word accuracy"),
        Column("bleu", "BLEU", "{:.1f}"),
    )

    def source_arrays(self, split):
        images = split["images"].astype(np.float32) / 16.0  # load_digits' grey levels are 0 .. 16
        return [images, np.ones(len(images), dtype=np.int64)]  # no source length: a whole image

    def model_args(self, data_dir, vocab):
        height, width = np.load(data_dir / "test.npz")["images"].shape[1:]
        return {"target_vocab_size": len(vocab["target_tokens"]), "image_height": int(height), "image_width": int(width)}

    def describe_source(self, split, i, vocab):
        return f"image of {int(split['target_lengths'][i])} digits"

    def draw_attention(self, split, i, vocab, output, weights, path, title):
        words = [str(vocab["target_tokens"][t]) for t in output] + ["</s>"]
        words = words[: len(weights)]
        image = split["images"][i].astype(np.float32) / 16.0
        H, W = image.shape
        grid = weights.reshape(len(weights), H // 2, W // 2)
        plt = pyplot()
        fig, axes = plt.subplots(len(words) + 1, 1, figsize=(W / 8 * 1.6 + 1, 0.9 * (len(words) + 1) + 0.6), squeeze=False)
        axes[0, 0].imshow(image, cmap="gray_r", vmin=0, vmax=1)
        axes[0, 0].set_title(f"{title}: attention per word", fontsize=9)
        for ax, word, alpha in zip(axes[1:, 0], words, grid):
            ax.imshow(image, cmap="gray_r", vmin=0, vmax=1)
            up = np.kron(alpha / max(alpha.max(), 1e-9), np.ones((2, 2)))  # each grid cell covers 2×2 pixels
            ax.imshow(np.zeros_like(up), cmap="autumn", alpha=0.85 * up, vmin=0, vmax=1)  # red, as opaque as the weight
            ax.set_ylabel(word, rotation=0, ha="right", va="center", fontsize=9)
        for ax in axes[:, 0]:
            ax.set_xticks([])
            ax.set_yticks([])
        fig.tight_layout()
        save_figure(fig, path)
