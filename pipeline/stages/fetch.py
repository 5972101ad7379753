"""``zoo fetch DATASET``: generate (or download) a dataset into ``data/raw/<name>/``.

The folder is built under a temporary name and renamed into place, so an interrupted fetch
leaves no partial dataset; ``manifest.json`` records the source settings, counts and the
SHA-256 of every file, and ``verify`` checks them before a dataset is used.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from pipeline.plumbing.atomic import atomic_dir, write_json
from pipeline.plumbing.errors import DataError


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch(config, layout, name: str) -> Path:
    import numpy as np

    from pipeline.datasets import SOURCES

    dataset = config.dataset(name)
    target = layout.dataset(name)
    with atomic_dir(target) as tmp:
        scratch = tmp / ".scratch"  # downloads land here, inside the folder that appears atomically
        scratch.mkdir()
        splits = SOURCES[dataset.source].generate(dataset.settings, seed=config.seed, scratch=scratch)
        files, counts = {}, {}
        for split, arrays in splits.items():
            path = tmp / f"{split}.npz"
            np.savez(path, **arrays)
            files[path.name] = {"sha256": sha256(path), "bytes": path.stat().st_size}
            counts[split] = int(len(next(iter(arrays.values()))))
        shutil.rmtree(scratch)
        write_json(
            tmp / "manifest.json",
            {
                "name": name,
                "source": dataset.source,
                "settings": dataset.settings.model_dump(),
                "seed": config.seed,
                "counts": counts,
                "files": files,
            },
        )
    return target


def verify(config, layout, name: str) -> dict:
    """The dataset's manifest, after checking it is fetched, intact and matches params.yaml."""
    folder = layout.dataset(name)
    manifest_path = folder / "manifest.json"
    fix = f"run `zoo fetch {name}` (or `dvc repro`)"
    if not manifest_path.is_file():
        raise DataError(f"dataset '{name}' is not fetched ({folder} has no manifest.json): {fix}")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"dataset '{name}': unreadable manifest.json ({exc}): {fix}") from None
    for fname, meta in manifest.get("files", {}).items():
        path = folder / fname
        if not path.is_file() or sha256(path) != meta["sha256"]:
            raise DataError(f"dataset '{name}': {fname} is missing or does not match its manifest: {fix}")
    dataset = config.dataset(name)
    if manifest.get("source") != dataset.source or manifest.get("settings") != dataset.settings.model_dump() or manifest.get("seed") != config.seed:
        raise DataError(f"dataset '{name}' was fetched with other settings than params.yaml now gives: {fix}")
    return manifest
