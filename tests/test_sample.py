"""``zoo sample``: one tiny trained model of each kind (language model, seq2seq, captioner,
classifier, 2-D GAN, image GANs), sampled through the CLI; the same seed gives the same
output; options that do not fit, unknown and untrained experiments end in one line."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from conftest import repo_params, shrink, write_params
from pipeline.cli import app

runner = CliRunner()

# Smaller networks and fewer batches than conftest.shrink: these models only have to exist.
TINY = {
    "charlm-lstm": {"embedding_dim": 8, "hidden_size": 32, "sequence_length": 32},
    "dates-seq2seq-bahdanau": {"embedding_dim": 8, "hidden_size": 16, "attention_size": 16},
    "captions-show-attend-tell": {"channels": 8, "embedding_dim": 8, "hidden_size": 16, "attention_size": 16},
    "parity-lstm": {"hidden_size": 16},
    "ring-gan": {"generator_hidden": 32, "discriminator_hidden": 32},
    "digits-cgan": {"width": 8},
    "digits-cogan": {"width": 8},
}
DATASETS = ["pydoc", "dates", "captions", "parity", "ring", "digits"]


def sample(*args: str):
    return runner.invoke(app, ["sample", *args])


def ok(result) -> str:
    assert result.exit_code == 0, result.output
    return result.stdout


def png_shape(path) -> tuple[int, ...]:
    from matplotlib import image

    return image.imread(path).shape


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """A project with the experiments of TINY trained (module-wide: training is the slow part)."""
    folder = tmp_path_factory.mktemp("sample")
    params = shrink(repo_params())
    for name, settings in TINY.items():
        params["experiments"][name].update(settings)
        params["experiments"][name]["trainer"].update(limit_train_batches=2, limit_val_batches=1)
    write_params(folder, params)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(folder)
        mp.delenv("ZOO_ROOT", raising=False)
        for dataset in DATASETS:
            assert runner.invoke(app, ["fetch", dataset]).exit_code == 0
        # the image GANs' plateau metric reads the reference classifier (a note for other data)
        for dataset in {params["experiments"][name]["dataset"] for name in TINY if params["experiments"][name]["task"] == "images"}:
            assert runner.invoke(app, ["reference", dataset]).exit_code == 0
        for name in TINY:
            result = runner.invoke(app, ["train", name])
            assert result.exit_code == 0, result.output
    return folder


@pytest.fixture(autouse=True)
def inside(root, monkeypatch):
    monkeypatch.chdir(root)
    monkeypatch.delenv("ZOO_ROOT", raising=False)


def test_language_model_continues_the_prompt(root):
    text = ok(sample("charlm-lstm", "--prompt", "The ", "--length", "40", "--seed", "1"))[:-1]  # echo's newline
    assert text.startswith("The ") and len(text) == 4 + 40
    again = sample("charlm-lstm", "--prompt", "The ", "--length", "40", "--seed", "1")
    assert again.stdout[:-1] == text
    assert "40 characters" in again.stderr and "seed 1" in again.stderr
    other = ok(sample("charlm-lstm", "--prompt", "The ", "--length", "40", "--seed", "2"))[:-1]
    assert other != text  # 40 characters drawn at the experiment's sampling temperature from an untrained model


def test_language_model_greedy_ignores_the_seed(root):
    texts = {ok(sample("charlm-lstm", "--prompt", "def ", "--length", "30", "--temperature", "0", "--seed", s)) for s in ("1", "2")}
    assert len(texts) == 1
    (text,) = texts
    assert text.startswith("def ") and len(text[:-1]) == 34


def test_language_model_output_file(root):
    result = sample("charlm-lstm", "--length", "10", "--output", "out/text.txt")
    assert (root / "out" / "text.txt").read_text() == ok(result)
    assert result.stderr.strip().endswith("-> out/text.txt")


def test_seq2seq_input_and_test_examples(root):
    result = sample("dates-seq2seq-bahdanau", "--input", "Thursday, 26 November 2026", "--beam", "1")
    (line,) = ok(result).splitlines()
    assert len(line) <= 11 * len("<unk>")  # a barely trained model: any ISO-length string of its tokens
    assert "greedy" in result.stderr
    beam = sample("dates-seq2seq-bahdanau", "--input", "Thursday, 26 November 2026")  # the model's beam_width
    assert "beam search, width 4" in beam.stderr
    lines = ok(sample("dates-seq2seq-bahdanau", "-n", "3", "--seed", "7")).splitlines()
    assert len(lines) == 3 and all(" -> " in line for line in lines)


def test_captioner_prints_and_draws(root):
    result = sample("captions-show-attend-tell", "-n", "3", "--beam", "2", "--output", "caps.png")
    lines = ok(result).splitlines()
    assert len(lines) == 3 and all(re.match(r"test image \d+: ", line) for line in lines)
    assert png_shape(root / "caps.png")[0] > 100
    assert "-> caps.png" in result.stderr


def test_classifier_predicts_with_probability(root):
    out = ok(sample("parity-lstm", "--input", "0110 1"))
    assert re.fullmatch(r"(even|odd) \(probability (0\.\d{3}|1\.000)\)\n", out)
    lines = ok(sample("parity-lstm", "-n", "4")).splitlines()
    assert len(lines) == 4 and all(re.match(r"[01]+ -> (even|odd) \(probability ", line) for line in lines)
    bad = sample("parity-lstm", "--input", "0120")
    assert bad.exit_code == 2 and "0s and 1s" in bad.output


def test_2d_gan_scatter_plot_at_the_default_path(root):
    result = sample("ring-gan", "-n", "300", "--seed", "3")
    assert re.fullmatch(r"\d/8 modes covered, .*\n", ok(result))
    path = root / "samples" / "ring-gan-3.png"
    assert png_shape(path)[:2] == (550, 550)  # plot_samples: 5 × 5 inches at 110 dpi
    assert result.stderr.strip().endswith("-> samples/ring-gan-3.png")


def test_image_gan_grid_is_reproducible(root):
    import numpy as np
    from matplotlib import image

    # 16 samples of 8×8: 4 × 4 cells of 9 pixels (1-pixel lines) + 1, enlarged 6× -> 222 px
    first = sample("digits-cgan", "-n", "16", "--label", "3", "--seed", "5", "--output", "a.png")
    assert "16 samples of class 3" in first.stderr and "222×222 px" in first.stderr
    sample("digits-cgan", "-n", "16", "--label", "3", "--seed", "5", "--output", "b.png")
    sample("digits-cgan", "-n", "16", "--label", "3", "--seed", "6", "--output", "c.png")
    a, b, c = (image.imread(root / f"{x}.png") for x in "abc")
    assert a.shape[:2] == (222, 222)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    # no --label: one column per class (10), 16 samples fill 2 rows
    ok(sample("digits-cgan", "-n", "16", "--output", "classes.png"))
    assert png_shape(root / "classes.png")[:2] == ((2 * 9 + 1) * 6, (10 * 9 + 1) * 6)
    # CoGAN: the two domains side by side, an 8-pixel gap (×6) between them
    ok(sample("digits-cogan", "-n", "16", "--output", "pairs.png"))
    assert png_shape(root / "pairs.png")[:2] == (222, 2 * 222 + 48)


def test_options_that_do_not_apply(root):
    result = sample("charlm-lstm", "--label", "3")
    assert result.exit_code == 2
    assert result.output.strip() == (
        "error: --label does not apply to experiment 'charlm-lstm', a language model (task charlm, model lstm); "
        "it takes --prompt, --temperature, --length, --seed, --output"
    )
    result = sample("digits-cogan", "--label", "1")
    assert result.exit_code == 2 and "'digits-cogan' (model cogan) is not conditional" in result.output
    assert "acgan, cgan" in result.output
    result = sample("digits-cgan", "--label", "10")
    assert result.exit_code == 2 and "classes 0 .. 9" in result.output
    assert sample("ring-gan", "--prompt", "x").exit_code == 2
    assert sample("parity-lstm", "--beam", "2").exit_code == 2
    assert sample("charlm-lstm", "--temperature", "-1").exit_code == 2  # Typer's range check


def test_unknown_and_untrained_experiments(root):
    result = sample("no-such-experiment")
    assert result.exit_code == 2 and "unknown experiment 'no-such-experiment'" in result.output
    result = sample("parity-rnn", "--input", "0110")
    assert result.exit_code == 6
    (line,) = result.output.strip().splitlines()
    assert "train the experiment first" in line and "zoo train parity-rnn" in line
    assert not (root / "samples" / "parity-rnn-42.png").exists()
