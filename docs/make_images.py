"""The README's picture, from the outputs of the last `make repro`: a few of the pictures the
pipeline drew, tiled into docs/images/results.png (kept small: it is committed).

    make repro && .venv/bin/python docs/make_images.py [PROJECT_FOLDER]
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SOURCE = Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else ROOT  # the project folder of the run
PANELS = [  # (picture, caption): what each family's comparison looks like
    ("reports/accuracy_by_length_parity-long.png", "parity: accuracy against length (claim 1)"),
    ("reports/exact_match_by_length_dates.png", "dates: exact match against input length (claim 7)"),
    ("plots/ring-gan/samples.png", "ring: the non-saturating GAN's samples"),
    ("plots/ring-wgan-gp/samples.png", "ring: WGAN-GP's samples"),
    ("plots/digits-cgan/samples_per_class.png", "digits: the conditional GAN, one column per class"),
    ("plots/dates-seq2seq-bahdanau/attention_test_long_0.png", "dates: Bahdanau attention on a long input, around the date"),
]


def main() -> int:
    found = [(SOURCE / path, caption) for path, caption in PANELS if (SOURCE / path).is_file()]
    missing = [path for path, _ in PANELS if not (SOURCE / path).is_file()]
    if missing:
        print("not found (run make repro first?): " + ", ".join(missing), file=sys.stderr)
    if not found:
        return 1
    cols = 3
    rows = (len(found) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 4.2, rows * 4.0))
    for ax in axes.flat:
        ax.axis("off")
    for ax, (path, caption) in zip(axes.flat, found):
        ax.imshow(plt.imread(path))
        ax.set_title(caption, fontsize=9)
    fig.tight_layout()
    out = ROOT / "docs" / "images" / "results.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    print(f"{out.relative_to(ROOT)}: {out.stat().st_size / 1024:.0f} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
