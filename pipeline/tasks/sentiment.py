"""Sentiment of movie reviews (IMDb): many-to-one classification of word sequences."""

from __future__ import annotations

import numpy as np
import torch

from pipeline.training.loaders import batches
from pipeline.tasks.base import Column, Evaluation, Prepared, Task, cut, load_split

KEYS = ["tokens", "lengths", "labels"]


class SentimentTask(Task):
    name = "sentiment"
    description = "movie review -> positive or negative (IMDb); many-to-one"
    sources = frozenset({"imdb"})
    head = "classifier"
    sample_kind = "classify"
    class_names = ("negative", "positive")  # label 0, 1
    primary = "test_accuracy"
    columns = (Column("test_accuracy", "test accuracy"),)

    def prepare(self, data_dir, manifest, common, seed):
        train, val = load_split(data_dir, "train"), load_split(data_dir, "val")
        vocab = load_split(data_dir, "vocab")["words"]
        return Prepared(
            train=batches([train[k] for k in KEYS], common.batch_size, shuffle=True, seed=seed),
            val=batches([val[k] for k in KEYS], common.batch_size, shuffle=False),
            model_args={"vocab_size": len(vocab), "n_classes": 2},
        )

    def evaluate(self, model, data_dir, manifest, plots_dir, seed, title, common=None):
        test = load_split(data_dir, "test")
        model.eval()
        preds = []
        with torch.no_grad():
            for tokens, lengths, _ in batches([test[k] for k in KEYS], 256, shuffle=False):
                preds.append(model.predict(tokens.to(model.device), lengths.clamp_min(1).to(model.device)).cpu().numpy())
        return Evaluation({"test_accuracy": float((np.concatenate(preds) == test["labels"]).mean())})

    def encode_text(self, text, data_dir, dataset_settings):
        """IMDb's tokens, cut to the dataset's ``max_length``; a word not in the vocabulary reads as <unk>."""
        from pipeline.datasets.imdb import tokenize
        from pipeline.plumbing.errors import ConfigError

        words = load_split(data_dir, "vocab")["words"]
        index = {str(w): i for i, w in enumerate(words)}
        ids = [index.get(t, 1) for t in tokenize(text)[: dataset_settings.max_length]]  # 1 = <unk>
        if not ids:
            raise ConfigError("", f"--input: no words in {text!r}")
        return ids

    def show_tokens(self, tokens, data_dir):
        words = load_split(data_dir, "vocab")["words"]
        return cut(" ".join(str(words[int(t)]) for t in tokens))
