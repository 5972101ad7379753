"""Progress bars for the long loops (downloads, evaluation over many samples): shown only
when stderr is a terminal, so logs of `dvc repro` and CI stay free of bar redraws."""

from __future__ import annotations

import sys
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")


def wanted() -> bool:
    if not sys.stderr.isatty():
        return False
    try:
        import tqdm  # noqa: F401  (also what pooch draws its download bar with)
    except ImportError:
        return False
    return True


def progress(items: Iterable[T], total: int | None = None, desc: str = "", unit: str = "it") -> Iterator[T]:
    """``items``, with a bar on a terminal (tqdm), as they are."""
    if not wanted():
        yield from items
        return
    from tqdm import tqdm

    yield from tqdm(items, total=total, desc=desc, unit=unit, leave=False, file=sys.stderr, dynamic_ncols=True)


# Lightning's bar redraws (and reads its metrics) after every training step by default, for
# steps of a few milliseconds here; every 20th step still moves smoothly.
TRAINING_BAR_REFRESH_STEPS = 20


def training_bar(enabled: bool) -> tuple[bool, list]:
    """(``enable_progress_bar``, callbacks) for Lightning's ``Trainer``: its bar, redrawn every
    ``TRAINING_BAR_REFRESH_STEPS`` steps, when enabled and stdout (where it draws) is a
    terminal; none otherwise, so logs of ``dvc repro`` and CI stay free of bar redraws."""
    if not enabled or not sys.stdout.isatty():
        return False, []
    from pytorch_lightning.callbacks import TQDMProgressBar

    return True, [TQDMProgressBar(refresh_rate=TRAINING_BAR_REFRESH_STEPS)]
