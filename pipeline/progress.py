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
