"""``zoo compare``'s reports: the claims' rules on hand-made numbers, and claims.md and
index.html written from hand-made metrics, run files and pictures (no training)."""

from __future__ import annotations

import base64
import json
import re
import struct
import zlib
from pathlib import Path

import pytest

from conftest import REPO
from pipeline import claims
from pipeline.claims import NOT_ENOUGH, NOT_SUPPORTED, SUPPORTED


def verdict(number: int, metrics: dict, seeds: dict | None = None) -> claims.ClaimResult:
    return next(r for r in claims.judge(metrics, seeds) if r.claim.number == number)


def test_a_clear_difference_supports_the_claim():
    result = verdict(4, {"parity-long-lstm": {"accuracy_longer": 0.95}, "parity-long-lstm-fb0": {"accuracy_longer": 0.62}})
    assert result.verdict == SUPPORTED
    assert "one seed" in result.explanation  # no spread measured: the margin decided, and it says so
    assert [(names, key, stat.mean) for names, key, stat in result.numbers] == [
        (("parity-long-lstm",), "accuracy_longer", 0.95),
        (("parity-long-lstm-fb0",), "accuracy_longer", 0.62),
    ]


def test_a_contrary_result_does_not_support_the_claim():
    metrics = {"parity-long-rnn": {"accuracy_longer": 0.97}, "parity-long-lstm": {"accuracy_longer": 1.0}, "parity-long-gru": {"accuracy_longer": 0.99}}
    result = verdict(1, metrics)
    assert result.verdict == NOT_SUPPORTED
    assert "does not fail" in result.explanation
    metrics["parity-long-rnn"]["accuracy_longer"] = 0.51
    assert verdict(1, metrics).verdict == SUPPORTED
    # claim 2: the LSTM's gradient decays 3 decades less than the RNN's (needs 2); 1 decade is not enough
    assert verdict(2, {"parity-long-rnn": {"grad_log10_decay": -15.0}, "parity-long-lstm": {"grad_log10_decay": -12.0}}).verdict == SUPPORTED
    assert verdict(2, {"parity-long-rnn": {"grad_log10_decay": -13.0}, "parity-long-lstm": {"grad_log10_decay": -12.0}}).verdict == NOT_SUPPORTED


def test_a_missing_experiment_or_metric_is_not_enough_data_and_named():
    result = verdict(1, {"parity-long-rnn": {"accuracy_longer": 0.5}, "parity-long-lstm": {"accuracy_longer": 1.0}})
    assert result.verdict == NOT_ENOUGH
    assert "parity-long-gru" in result.explanation
    result = verdict(4, {"parity-long-lstm": {"accuracy_longer": 0.9}, "parity-long-lstm-fb0": {"accuracy": 0.9}})
    assert result.verdict == NOT_ENOUGH and "`parity-long-lstm-fb0` has no finite `accuracy_longer`" in result.explanation
    assert all(r.verdict == NOT_ENOUGH for r in claims.judge({}))


def test_a_difference_smaller_than_the_spread_over_seeds_is_within_noise():
    seeds = {name: ("ring-gan", "ring-gan-s2", "ring-gan-s3") for name in ("ring-gan", "ring-gan-s2", "ring-gan-s3")}
    seeds |= {name: ("ring-gan-minimax", "ring-gan-minimax-s2") for name in ("ring-gan-minimax", "ring-gan-minimax-s2")}
    metrics = {
        "ring-gan": {"high_quality_pct": 10.0, "modes_covered": 8},
        "ring-gan-s2": {"high_quality_pct": 40.0, "modes_covered": 8},
        "ring-gan-s3": {"high_quality_pct": 25.0, "modes_covered": 8},
        "ring-gan-minimax": {"high_quality_pct": 12.0, "modes_covered": 6},
        "ring-gan-minimax-s2": {"high_quality_pct": 20.0, "modes_covered": 8},
    }
    result = verdict(8, metrics, seeds)
    # 25 ± 15 against 16 ± 5.7: a gain of 9 points, inside the noise of 20.7; grid has no runs
    assert result.verdict == NOT_SUPPORTED and result.within_noise
    assert claims.verdict_label(result) == "not supported (within noise)"
    assert "25 ± 15 (3 seeds)" in result.explanation and "grid: `grid-gan` has no metrics" in result.explanation
    # the same means with tight seeds: beyond noise, supported
    metrics["ring-gan"]["high_quality_pct"], metrics["ring-gan-s2"]["high_quality_pct"] = 24.0, 26.0
    metrics["ring-gan-minimax"]["high_quality_pct"], metrics["ring-gan-minimax-s2"]["high_quality_pct"] = 15.0, 17.0
    result = verdict(8, metrics, seeds)
    assert result.verdict == SUPPORTED and not result.within_noise and "beyond noise" in result.explanation


def test_a_diverged_run_without_clipping_counts_against_it_and_claim_10_uses_the_sanity_row():
    diverged = {"parity-rnn-biginit": {"accuracy_train_lengths": None}, "parity-rnn-biginit-clip": {"accuracy_train_lengths": 0.98}}
    assert verdict(3, diverged).verdict == SUPPORTED
    real = {"reference-digits": {"class_accuracy": 0.9}}  # bar: 0.1 + (0.9 - 0.1) / 2 = 0.5
    assert verdict(10, {**real, "digits-cgan": {"class_accuracy": 0.6}, "digits-acgan": {"class_accuracy": 0.8}}).verdict == SUPPORTED
    weak = verdict(10, {**real, "digits-cgan": {"class_accuracy": 0.3}})
    assert weak.verdict == NOT_SUPPORTED and "`digits-acgan` has no metrics" in weak.explanation
    assert verdict(10, {"digits-cgan": {"class_accuracy": 0.6}}).verdict == NOT_ENOUGH  # no sanity row


def test_seed_groups_come_from_the_configuration_not_the_names():
    from pipeline.config import load

    groups = claims.seed_groups(load(REPO / "params.yaml"))
    assert groups["ring-gan"] == ("ring-gan", "ring-gan-s2", "ring-gan-s3")
    assert groups["ring-gan-s3"] == groups["ring-gan"]
    assert groups["grid-gan"] == ("grid-gan", "grid-gan-s2")  # another dataset: another group
    assert groups["ring-gan-minimax"] == ("ring-gan-minimax", "ring-gan-minimax-s2", "ring-gan-minimax-s3")
    assert groups["parity-long-lstm"] == ("parity-long-lstm",)  # differs from -fb0 in forget_bias
    assert groups["parity-rnn-biginit"] == ("parity-rnn-biginit",)  # differs from -clip in the trainer only


# ------------------------------------------------------------------- the written reports


def png(width: int, height: int, shade: int) -> bytes:
    """A tiny valid grey PNG."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + bytes([shade]) * width for _ in range(height))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


@pytest.fixture
def measured(project):
    """Hand-made results of a few experiments: metrics, run files, pictures, a parity manifest."""
    metrics = {
        "parity-long-rnn": {"accuracy": 0.5, "accuracy_longer": 0.49, "accuracy_train_lengths": 0.52, "accuracy_max_length": 0.5, "grad_log10_decay": -16.0},
        "parity-long-lstm": {"accuracy": 1.0, "accuracy_longer": 1.0, "accuracy_train_lengths": 1.0, "accuracy_max_length": 1.0, "grad_log10_decay": -11.0},
        "parity-long-gru": {"accuracy": 1.0, "accuracy_longer": 0.99, "accuracy_train_lengths": 1.0, "accuracy_max_length": 0.98, "grad_log10_decay": -12.0},
        "ring-gan": {"modes_covered": 6, "high_quality_pct": 30.0, "reverse_kl": 0.8},
        "ring-gan-s2": {"modes_covered": 8, "high_quality_pct": 50.0, "reverse_kl": 0.3},
        "ring-gan-minimax": {"modes_covered": 2, "high_quality_pct": 1.0, "reverse_kl": 1.5},
        "digits-cgan": {"frechet_distance": 14.0, "classes_covered": 10, "class_kl": 0.01, "class_accuracy": 0.93, "precision": 0.6, "recall": 0.7},
    }
    for i, (name, values) in enumerate(metrics.items()):
        write_json(project / "metrics" / f"{name}.json", values)
        write_json(project / "models" / name / "run.json", {"experiment": name, "parameters": 1000 + i})
    write_json(project / "metrics" / "reference-digits.json", {"accuracy": 0.98, "class_accuracy": 0.98, "classes_covered": 10, "frechet_distance": 2.6})
    write_json(project / "data" / "raw" / "parity-long" / "manifest.json", {"settings": {"train_max_length": 4}})
    for name in ("parity-long-rnn", "parity-long-lstm"):
        (project / "plots" / name).mkdir(parents=True)
        (project / "plots" / name / "accuracy_by_length.csv").write_text("length,accuracy\n" + "".join(f"{n},{0.5 + 0.05 * n}\n" for n in range(1, 9)))
        (project / "plots" / name / "gradient_flow.png").write_bytes(png(3, 2, 10))
    pictures = {"ring-gan": "samples.png", "ring-gan-s2": "samples.png", "digits-cgan": "samples_per_class.png"}
    for i, (name, file) in enumerate(pictures.items()):
        (project / "plots" / name).mkdir(parents=True, exist_ok=True)
        (project / "plots" / name / file).write_bytes(png(4, 4, 50 * i))
        (project / "plots" / name / "losses.png").write_bytes(png(2, 2, 0))  # not in any task's gallery
    return project, pictures


def test_compare_writes_claims_and_a_self_contained_page_and_logs_them(measured):
    from mlflow.tracking import MlflowClient

    from pipeline.config import load
    from pipeline.paths import Layout
    from pipeline.stages.compare import compare

    project, pictures = measured
    layout = Layout(project)
    config = load(layout.params)
    compare(config, layout)
    reports = project / "reports"

    text = (reports / "claims.md").read_text()
    for claim in claims.CLAIMS:
        assert f"## {claim.number}. {claim.text}" in text
    assert "| 1 | Vanilla RNNs fail" in text and "**supported**" in text
    assert "## 6." in text and "not enough data.** missing: `xml-lstm-peephole` has no metrics" in text
    assert "| `ring-gan`, `ring-gan-s2` | `high_quality_pct` | 40 ± 14.1 (2 seeds) |" in text  # ring-gan-s3 not run

    board = (reports / "leaderboard.md").read_text()
    for image in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", board):
        assert (reports / image).is_file(), image
    assert "accuracy_by_length_parity-long.png" in board
    assert "[claims.md](claims.md)" in board

    page = (reports / "index.html").read_text()
    assert "http://" not in page.replace('href="http://127.0.0.1', "") and "<script" not in page
    sources = re.findall(r'<img src="([^"]+)"', page)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    embedded = {base64.b64decode(s.split(",", 1)[1]) for s in sources}
    for name, file in pictures.items():
        assert (project / "plots" / name / file).read_bytes() in embedded
    assert (project / "plots" / "parity-long-rnn" / "gradient_flow.png").read_bytes() in embedded
    assert (reports / "accuracy_by_length_parity-long.png").read_bytes() in embedded
    assert (project / "plots" / "ring-gan" / "losses.png").read_bytes() not in embedded
    assert len(sources) == 3 + 2 + 1  # three samples, two gradient flows, one comparison plot
    for claim in claims.CLAIMS:
        assert f'<tr id="claim-{claim.number}">' in page
    for name in config.experiments:
        assert f"<code>{name}</code>" in page, name
    assert page.count('class="sanity"') == 1 and "real held-out images" in page

    client = MlflowClient(tracking_uri=f"sqlite:///{project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(config.tracking.experiment)
    (run,) = client.search_runs([experiment.experiment_id], "tags.`zoo.kind` = 'report'")
    logged = {f.path for f in client.list_artifacts(run.info.run_id, "reports")}
    assert {"reports/leaderboard.md", "reports/claims.md", "reports/index.html"} <= logged
    assert run.data.tags["zoo.claim.1"] == "supported"
    assert run.data.tags["zoo.claim.7"] == "not enough data"


def test_compare_with_nothing_measured_still_writes_every_report(project):
    from pipeline.config import load
    from pipeline.paths import Layout
    from pipeline.stages.compare import leaderboard_markdown, tables
    from pipeline.report_page import page

    layout = Layout(project)
    config = load(layout.params)
    results = claims.judge({}, claims.seed_groups(config))
    html = page(tables(config, layout), results, [], [])
    assert html.count('<td class="not-enough-data">') == 10 and "No pictures yet" in html
    assert "not trained" in leaderboard_markdown(tables(config, layout))
