"""``zoo compare``'s reports: the leaderboard, claims.md and index.html written from hand-made
metrics (per seed), run files and pictures (no training). The claims' rules: test_claims.py."""

from __future__ import annotations

import base64
import json
import re
import struct
import zlib
from pathlib import Path

import pytest

from pipeline.reporting import claims


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


def seeded(plateau=(1, 1, 1), diverged=(0, 0, 0), **per_seed) -> dict:
    """``metrics/<experiment>.json`` as the evaluate stage writes it: means on top, one dict per seed."""
    seeds = {
        str(i + 1): {**{k: v[i] for k, v in per_seed.items()}, "plateau": float(plateau[i]), "diverged": float(diverged[i]), "epochs": 30}
        for i in range(len(plateau))
    }
    return {**{k: sum(v) / len(v) for k, v in per_seed.items()}, "n_seeds": len(seeds), "seeds": seeds}


@pytest.fixture
def measured(project):
    """Hand-made results of a few experiments (three seeds each): metrics, run files, pictures,
    a parity manifest."""
    parity = dict(accuracy=[0.5, 0.5, 0.5], accuracy_train_lengths=[0.52, 0.5, 0.51], accuracy_max_length=[0.5, 0.5, 0.5])
    metrics = {
        "parity-long-rnn": seeded(**parity, accuracy_longer=[0.49, 0.5, 0.51], grad_log10_decay=[-16.0, -15.0, -17.0]),
        "parity-long-lstm": seeded(**parity, accuracy_longer=[1.0, 1.0, 0.99], grad_log10_decay=[-11.0, -11.5, -10.5]),
        "parity-long-gru": seeded(**parity, accuracy_longer=[0.99, 0.98, 1.0], grad_log10_decay=[-12.0, -12.5, -11.5]),
        # ring: every GAN but minimax covers the 8 modes; % high quality breaks the tie
        "ring-gan": seeded(modes_covered=[8, 8, 8], high_quality_pct=[30.0, 50.0, 40.0], reverse_kl=[0.8, 0.3, 0.5]),
        "ring-gan-mbd": seeded(modes_covered=[8, 8, 8], high_quality_pct=[45.0, 55.0, 50.0], reverse_kl=[0.2, 0.1, 0.3], diverged=(0, 0, 1), plateau=(1, 1, 0)),
        "ring-gan-minimax": seeded(modes_covered=[2, 3, 1], high_quality_pct=[1.0, 2.0, 3.0], reverse_kl=[1.5, 1.2, 1.9], plateau=(1, 0, 1)),
        "digits-cgan": seeded(frechet_distance=[14.0, 15.0, 13.0], classes_covered=[10, 10, 10], class_kl=[0.01, 0.02, 0.01],
                              class_accuracy=[0.93, 0.9, 0.96], precision=[0.6, 0.6, 0.6], recall=[0.7, 0.7, 0.7]),
    }
    for i, (name, values) in enumerate(metrics.items()):
        write_json(project / "metrics" / f"{name}.json", values)
        runs = {str(s): {"run_id": f"{i:02d}{s}" + "0" * 29} for s in (1, 2, 3)}
        write_json(project / "models" / name / "run.json", {"experiment": name, "parameters": 1000 + i, "experiment_id": "1", "seeds": runs})
    write_json(project / "metrics" / "reference-digits.json", {"accuracy": 0.98, "class_accuracy": 0.98, "classes_covered": 10, "frechet_distance": 2.6})
    write_json(project / "data" / "raw" / "parity-long" / "manifest.json", {"settings": {"train_max_length": 4}})
    for name in ("parity-long-rnn", "parity-long-lstm"):
        (project / "plots" / name).mkdir(parents=True)
        (project / "plots" / name / "accuracy_by_length.csv").write_text("length,accuracy\n" + "".join(f"{n},{0.5 + 0.05 * n}\n" for n in range(1, 9)))
        (project / "plots" / name / "gradient_flow.png").write_bytes(png(3, 2, 10))
    pictures = {"ring-gan": "samples.png", "ring-gan-mbd": "samples.png", "digits-cgan": "samples_per_class.png"}
    for i, (name, file) in enumerate(pictures.items()):
        (project / "plots" / name).mkdir(parents=True, exist_ok=True)
        (project / "plots" / name / file).write_bytes(png(4, 4, 50 * i))
        (project / "plots" / name / "losses.png").write_bytes(png(2, 2, 0))  # not in any task's gallery
    return project, pictures


def test_compare_writes_claims_and_a_self_contained_page_and_logs_them(measured, capsys):
    from mlflow.tracking import MlflowClient

    from pipeline.config import load
    from pipeline.plumbing.paths import Layout
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
    assert "Welch's t-test" in text  # the statistics, explained once
    # claim 6 is the paper profile's (its cells carry their state on four times the text), named, not judged
    assert "## 6." in text and "**Verdict: not in this profile.** none beats vanilla: not in this profile (`xml-large-lstm-peephole`" in text
    assert "**Verdict: not enough data.** dates-seq2seq-bahdanau: not enough data, `dates-seq2seq-bahdanau` has no metrics" in text  # a missing experiment, named
    assert "| `parity-long-lstm` | `accuracy_longer` | 0.997 ± 0.00577 | 3 |" in text
    # claim 8: the minimax run has a seed at the epoch cap; the grid is the paper profile's, named, not judged
    assert "`ring-gan-minimax` seed 2 stopped at the epoch cap, not on its plateau" in text
    assert "grid: not in this profile (`grid-gan`, `grid-gan-minimax` are not in this profile's experiments)" in text
    assert "| 8 | The non-saturating generator loss trains where the minimax loss stalls. | **not enough data (grid part: not in this profile)** |" in text
    assert "claims supported 2/9 -> reports/claims.md" in capsys.readouterr().out  # of the 9 with a part here (6: paper profile)

    board = (reports / "leaderboard.md").read_text()
    for image in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", board):
        assert (reports / image).is_file(), image
    assert "accuracy_by_length_parity-long.png" in board
    ring = board[board.index("## mixture-2d on `ring`"):].split("\n\n")[2].splitlines()
    # tied on modes, ranked by % high quality; the second not separated from the first (Welch)
    assert ring[2].startswith("| 1 | `ring-gan-mbd` |") and "| 8.0 ± 0.0 | 50.0 ± 5.0 |" in ring[2]
    assert "| diverged (seed 3) | [`04200000 (seed 2)`](" in ring[2]  # the best seed's run (% high quality 55)
    assert ring[3].startswith("| 2 ≈ | `ring-gan` |") and "| 3 |" in ring[3]
    assert ring[4].startswith("| 3 | `ring-gan-minimax` |") and "epoch cap (seed 2)" in ring[4]
    assert "ties broken by `high_quality_pct` (higher is better), then `reverse_kl` (lower is better)" in board
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
    assert run.data.tags["zoo.claim.8"] == "not enough data (grid part: not in this profile)"


def test_compare_with_nothing_measured_still_writes_every_report(project):
    from pipeline.config import load
    from pipeline.plumbing.paths import Layout
    from pipeline.stages.compare import leaderboard_markdown, tables
    from pipeline.reporting.report_page import page

    layout = Layout(project)
    config = load(layout.params)
    results = claims.judge({})
    html = page(tables(config, layout), results, [], [])
    assert html.count('<td class="not-enough-data">') == 10 and "No pictures yet" in html
    assert "not trained" in leaderboard_markdown(tables(config, layout))
    # a profile that trains none of a claim's experiments: the claim is another profile's, shown uncoloured
    html = page(tables(config, layout), claims.judge({}, profile={"grid-gan"}), [], [])
    assert html.count('<td class="not-in-this-profile"><b>not in this profile</b></td>') == 8
    assert ".not-in-this-profile" not in html  # no colour of its own: neither a result nor a gap


def test_comparison_data_overlays_each_tables_experiments_in_one_long_csv(measured, tmp_path):
    """DVC's comparison plots (dvc.yaml's top-level `plots`) read one CSV per table: the curves
    its task names in `compare_curves`, and every experiment's accuracy by length."""
    import csv

    from pipeline.config import load
    from pipeline.training.history import to_csv
    from pipeline.plumbing.paths import Layout
    from pipeline.stages.compare import comparison_data

    project, _ = measured
    layout = Layout(project)
    for i, name in enumerate(("ring-gan", "ring-gan-mbd")):
        rows = [{"epoch": e, "metric": m, "split": s, "value": 10 * i + e} for e in (1, 2)
                for m, s in (("d_loss", "train"), ("d_loss", "validation"), ("modes_covered", "validation"), ("reverse_kl", "validation"))]
        layout.curves(name).parent.mkdir(exist_ok=True)
        layout.curves(name).write_text(to_csv(rows))
    out = tmp_path / "reports"
    written = comparison_data(load(layout.params), layout, out)
    assert sorted(p.relative_to(out).as_posix() for p in written) == ["by_length/parity-parity-long.csv", "curves/mixture-2d-ring.csv"]

    with open(out / "curves" / "mixture-2d-ring.csv", newline="") as fh:
        curves = list(csv.DictReader(fh))
    # the task's compare_curves only: train D loss and modes covered, not validation D loss or reverse KL
    assert {(r["experiment"], r["metric"]) for r in curves} == {(n, m) for n in ("ring-gan", "ring-gan-mbd") for m in ("d_loss (train)", "modes_covered (validation)")}
    assert [(r["epoch"], r["value"]) for r in curves if r["experiment"] == "ring-gan-mbd" and r["metric"] == "d_loss (train)"] == [("1", "11.0"), ("2", "12.0")]

    with open(out / "by_length" / "parity-parity-long.csv", newline="") as fh:
        by_length = list(csv.DictReader(fh))
    assert list(by_length[0]) == ["length", "experiment", "metric", "value"]
    assert {r["experiment"] for r in by_length} == {"parity-long-rnn", "parity-long-lstm"} and {r["metric"] for r in by_length} == {"accuracy"}
    assert [(int(r["length"]), float(r["value"])) for r in by_length if r["experiment"] == "parity-long-lstm"] == [(n, 0.5 + 0.05 * n) for n in range(1, 9)]

    # a translation model's exact match and BLEU by length: two panels of one table
    for name, bleu in (("dates-seq2seq", 40.0), ("dates-seq2seq-luong", 60.0)):
        (project / "plots" / name).mkdir(parents=True)
        (project / "plots" / name / "accuracy_by_length.csv").write_text("length,exact_match\n5,0.5\n10,0.25\n")
        (project / "plots" / name / "bleu_by_length.csv").write_text(f"length,bleu\n5,{bleu}\n10,{bleu / 2}\n")
    comparison_data(load(layout.params), layout, out)
    with open(out / "by_length" / "dates.csv", newline="") as fh:
        rows = {(r["experiment"], r["metric"], int(r["length"])): float(r["value"]) for r in csv.DictReader(fh)}
    assert rows[("dates-seq2seq", "exact_match", 10)] == 0.25 and rows[("dates-seq2seq-luong", "bleu", 10)] == 30.0
    assert {m for _, m, _ in rows} == {"exact_match", "bleu"}


def test_leaderboard_puts_published_figures_beside_the_matching_experiments(measured):
    """The ring table gains a "paper" column: PacGAN's plain GAN beside `ring-gan` (the same
    non-saturating loss, the same data), nothing beside the minimax variant; the source, its
    setting and its other figures under the table. Tables without a published source keep
    their columns."""
    from pipeline.config import load
    from pipeline.plumbing.paths import Layout
    from pipeline.reporting.report_page import page
    from pipeline.stages.compare import leaderboard_markdown, tables

    project, _ = measured
    layout = Layout(project)
    config = load(layout.params)
    boards = {(t.task, t.dataset): t for t in tables(config, layout)}
    ring = boards[("mixture-2d", "ring")]
    assert ring.header[-3:] == ("paper", "notes", "MLflow run") and not ring.numeric(ring.header.index("paper"))
    cells = {row[1].text: row[ring.header.index("paper")].text for row in ring.rows}
    assert cells["ring-gan"] == "GAN: modes covered 6.3 ± 0.5, % high quality 98.2 ± 0.2, reverse KL 0.45 [1]"
    assert cells["ring-gan-minimax"] == "—" and cells["ring-gan-mbd"] == "—"
    (note,) = ring.footnotes
    assert note.startswith("[1] PacGAN (Lin, Khetan, Fanti, Oh 2018), Table 1 (https://arxiv.org/abs/1712.04086")
    assert "400 epochs of 100,000 samples" in note and "standard error over 10 trials" in note
    assert "PacGAN4: modes covered 7.8, % high quality 95.9, reverse KL 0.07." in note
    assert "paper" not in boards[("parity", "parity-long")].header

    board = leaderboard_markdown(list(boards.values()))
    section = board[board.index("## mixture-2d on `ring`"):]
    assert "| GAN: modes covered 6.3 ± 0.5, % high quality 98.2 ± 0.2, reverse KL 0.45 [1] |" in section
    assert "- [1] PacGAN (Lin, Khetan, Fanti, Oh 2018)" in section
    html = page(list(boards.values()), claims.judge({}), [], [])
    assert "<li>[1] PacGAN (Lin, Khetan, Fanti, Oh 2018), Table 1" in html
