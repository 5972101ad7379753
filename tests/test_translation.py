"""The English -> Dutch source against a small local file in the published format (a zip of
tab-separated English, Dutch, attribution lines), served over HTTP on 127.0.0.1; then a
seq2seq model trains a few batches on it and is evaluated by the translation task."""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pytest

from conftest import serve_folder
from published_formats import PAIRS as LINES, tatoeba_zip
from pipeline.datasets import translation
from pipeline.plumbing.errors import DataError

# Every pair twice over, with distinct attributions: duplicates of (English, Dutch) are dropped.
ZIP = tatoeba_zip([f"{en}\t{nl}\tattribution {i}" for i, (en, nl) in enumerate(LINES * 2)] + [f"extra {i}.\tnog {i}.\tx" for i in range(40)])


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    www = tmp_path_factory.mktemp("www")
    (www / "anki").mkdir()
    (www / "anki" / "nld-eng.zip").write_bytes(ZIP)
    with serve_folder(www) as base:
        yield f"{base}anki/nld-eng.zip"


def test_pairs_are_fetched_tokenised_and_hashed(url, tmp_path):
    settings = translation.Settings(url=url, n_val=5, n_test=10, max_tokens=6, min_count=1)
    data = translation.generate(settings, seed=0, scratch=tmp_path)
    assert str(data["vocab"]["fetched_sha256"][0]) == hashlib.sha256(ZIP).hexdigest()
    assert len(data["test"]["source"]) == 10 and len(data["val"]["source"]) == 5
    n_pairs = len(LINES) + 40
    assert len(data["train"]["source"]) == n_pairs - 15  # duplicates dropped, all pairs fit 6 tokens
    src, tgt = list(data["vocab"]["source_tokens"]), list(data["vocab"]["target_tokens"])
    assert src[:4] == ["<pad>", "<s>", "</s>", "<unk>"] and str(data["vocab"]["joiner"][0]) == " "
    # Moses tokenisation, lower-cased: punctuation split off, English clitics kept as tokens
    sentences = {" ".join(src[t] for t in row[:n]) for split in ("train", "val", "test") for row, n in zip(data[split]["source"], data[split]["source_lengths"])}
    assert "i 'm ok ." in sentences and "it 's raining ." in sentences
    dutch = {" ".join(tgt[t] for t in row[:n]) for row, n in zip(data["train"]["target"], data["train"]["target_lengths"])}
    assert any(s.endswith(" .") for s in dutch) and all(s == s.lower() for s in dutch)
    again = translation.generate(settings, seed=0, scratch=tmp_path / "again")
    assert np.array_equal(again["test"]["source"], data["test"]["source"])


def test_checksum_mismatch_and_too_few_pairs_are_one_line_errors(url, tmp_path):
    with pytest.raises(DataError, match="sha256 checksum mismatch"):
        translation.generate(translation.Settings(url=url, sha256="0" * 64), seed=0, scratch=tmp_path)
    with pytest.raises(DataError, match="too few"):
        translation.generate(translation.Settings(url=url, n_test=500, n_val=10), seed=0, scratch=tmp_path / "b")


def test_seq2seq_trains_and_is_evaluated_on_translation(url, tmp_path):
    import pytorch_lightning as pl

    from lightning_modules import MODELS
    from pipeline.config import ExperimentCommon
    from pipeline.tasks import TASKS

    data = translation.generate(translation.Settings(url=url, n_val=5, n_test=10, min_count=1), seed=0, scratch=tmp_path / "dl")
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    for split, arrays in data.items():
        np.savez(data_dir / f"{split}.npz", **arrays)
    task = TASKS["translation"]
    common = ExperimentCommon(dataset="t", task="translation", model="seq2seq-luong", batch_size=8)
    prepared = task.prepare(data_dir, {}, common, seed=0)
    entry = MODELS["seq2seq-luong"]
    model = entry.build(task.head, entry.settings_for(task.head)(hidden_size=16, embedding_dim=8, beam_width=3), **prepared.model_args)
    pl.Trainer(max_epochs=1, limit_train_batches=3, limit_val_batches=1, logger=False, enable_checkpointing=False,
               enable_progress_bar=False, enable_model_summary=False).fit(model, prepared.train, prepared.val)
    plots = tmp_path / "plots"
    plots.mkdir()
    result = task.evaluate(model, data_dir, {}, plots, 0, "translation-luong", common)
    for column in task.columns:
        assert math.isfinite(result.metrics[column.key])
    assert 0 <= result.metrics["bleu"] <= 100
    assert (plots / "attention_test_0.png").stat().st_size > 1000
    assert "reference:" in result.texts["samples.txt"] and not (plots / "samples.txt").exists()
    assert json.dumps(result.series)
    # BLEU by sentence length, beside exact match by length: one corpus BLEU per length bin
    rows = (plots / "bleu_by_length.csv").read_text().splitlines()
    assert rows[0] == "length,bleu" and len(rows) > 1 and all(0 <= float(r.split(",")[1]) <= 100 for r in rows[1:])
    assert [int(r.split(",")[0]) for r in rows[1:]] == sorted(result.series["bleu_by_length"]) == sorted(result.series["exact_match_by_length"])
