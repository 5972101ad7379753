"""Images with class labels for the image GANs (the ``images`` task) and their reference classifier.

- ``digits``: scikit-learn's bundled 8×8 handwritten digits (``load_digits``: 1,797 real
  images, values 0..16, labels 0..9). Offline. Scaled to [−1, 1] (x/8 − 1) and, with
  ``size: 16``, up-sampled bilinearly (``scipy.ndimage.zoom``, order 1) to 16×16 so the DCGAN
  networks have two stride-2 layers and LAPGAN three pyramid levels. Cut at random (the fetch
  seed) into train | val | test by ``val_fraction`` and ``test_fraction``.
  CoGAN's second domain, ``x_other``, is ``second_domain`` applied to a random permutation of
  the same split (so the two domains are unpaired, as CoGAN trains them): ``negative`` is −x,
  ``edges`` the gradient magnitude (central differences), scaled to [−1, 1] per image.
- ``mnist``: LeCun's IDX files (gzip) from ``url`` (a mirror; the original site is often down)
  checked against the publisher's md5s; parsed here, no torchvision. 28×28 uint8.
- ``cifar10``: Krizhevsky's python pickles (tar.gz) from ``url``, md5-checked; the five
  ``data_batch_*`` are the training set, ``test_batch`` the test set. 3×32×32 uint8.
  MNIST and CIFAR-10 take the last ``n_val`` training images as the validation split;
  ``n_train`` / ``n_test`` (None: all) keep the first ones.

Arrays: ``train``/``val``/``test`` hold ``x`` ((N, C, S, S): float32 in [−1, 1] for digits,
uint8 0..255 for MNIST and CIFAR-10: ``pipeline.tasks.images`` scales and pads them), ``label``
(int64) and, for digits (and MNIST with ``second_domain``), ``x_other``; ``classes`` holds ``names``.
MNIST's ``x_other`` is uint8 and already 32×32, padded with its own background.
"""

from __future__ import annotations

import gzip
import pickle
import tarfile
from pathlib import Path
from types import SimpleNamespace
from typing import Literal, Optional

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from pipeline.datasets.text import scratch_folder
from pipeline.plumbing.download import download
from pipeline.plumbing.errors import DataError

IMAGE_SOURCES = frozenset({"digits", "mnist", "cifar10"})  # the sources whose data are labelled images

DIGIT_NAMES = np.array([str(i) for i in range(10)])
CIFAR_NAMES = np.array(["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"])
MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"
MNIST_MD5 = {  # REFERENCE.md's data table (the publisher's checksums)
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR_MD5 = "c58f30108f718f92721af3b95e74349a"


# ----------------------------------------------------------------------------------- digits


class DigitsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    size: Literal[8, 16] = 8
    val_fraction: float = Field(0.1, gt=0, lt=1)
    test_fraction: float = Field(0.2, gt=0, lt=1)
    second_domain: Literal["negative", "edges"] = "negative"

    @model_validator(mode="after")
    def _fractions_leave_training_images(self) -> "DigitsSettings":
        if self.val_fraction + self.test_fraction >= 1:
            raise ValueError("val_fraction + test_fraction must be below 1")
        return self


def to_second_domain(x: np.ndarray, kind: str) -> np.ndarray:
    """CoGAN's domain B of images x (N, C, S, S) in [−1, 1]."""
    if kind == "negative":
        return -x
    gy, gx = np.gradient((x + 1) / 2, axis=(2, 3))
    magnitude = np.hypot(gx, gy)
    peak = magnitude.max(axis=(1, 2, 3), keepdims=True)
    return (2 * magnitude / np.where(peak > 0, peak, 1) - 1).astype(x.dtype)


def generate_digits(settings: DigitsSettings, seed: int, scratch: Path | None = None) -> dict[str, dict[str, np.ndarray]]:
    from scipy.ndimage import zoom
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = bunch.images.astype(np.float64) / 16.0  # (1797, 8, 8) in [0, 1]
    if settings.size != 8:
        x = np.clip(zoom(x, (1, settings.size / 8, settings.size / 8), order=1), 0, 1)
    x = (2 * x - 1).astype(np.float32)[:, None]  # (N, 1, S, S) in [−1, 1]
    labels = bunch.target.astype(np.int64)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(x))
    n_test, n_val = round(len(x) * settings.test_fraction), round(len(x) * settings.val_fraction)
    parts = {"train": order[n_test + n_val:], "val": order[n_test:n_test + n_val], "test": order[:n_test]}
    out: dict[str, dict[str, np.ndarray]] = {}
    for split, idx in parts.items():
        other = to_second_domain(x[idx][rng.permutation(len(idx))], settings.second_domain)
        out[split] = {"x": x[idx], "label": labels[idx], "x_other": other}
    out["classes"] = {"names": DIGIT_NAMES}
    return out


# ------------------------------------------------------------------------------------ MNIST


class OnlineImageSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    n_train: Optional[int] = Field(None, ge=1, description="keep the first training images (None: all)")
    n_val: int = Field(5000, ge=1, description="the last training images become the validation split")
    n_test: Optional[int] = Field(None, ge=1)


class MnistSettings(OnlineImageSettings):
    url: str = Field(MNIST_URL, description="folder holding the four IDX files")
    md5: dict[str, str] = Field(default_factory=lambda: dict(MNIST_MD5))
    second_domain: Optional[Literal["negative", "edges"]] = Field(
        None, description="CoGAN's domain B (x_other: the digits' negatives or edges, as Liu & Tuzel 2016 paired MNIST); None: none"
    )


def second_domain_uint8(x: np.ndarray, kind: str, rng: np.random.Generator, side: int = 32) -> np.ndarray:
    """CoGAN's domain B of uint8 images x (N, C, s, s), unpaired (a random permutation), padded
    to ``side`` with its own background (white for negatives) so the task does not pad it black."""
    other = to_second_domain(x[rng.permutation(len(x))].astype(np.float32) / 127.5 - 1.0, kind)
    pad = (side - x.shape[-1]) // 2
    background = 1.0 if kind == "negative" else -1.0
    other = np.pad(other, ((0, 0), (0, 0), (pad, pad), (pad, pad)), constant_values=background)
    return np.round((other + 1.0) * 127.5).clip(0, 255).astype(np.uint8)


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (gzip): magic 0x0000 08 <ndim>, ndim big-endian uint32 sizes, uint8 data."""
    try:
        with gzip.open(path, "rb") as fh:
            data = fh.read()
    except (OSError, EOFError) as exc:
        raise DataError(f"{path.name}: not a gzip file ({exc})") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise DataError(f"{path.name}: not an IDX file of unsigned bytes")
    ndim = data[3]
    shape = tuple(int(v) for v in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise DataError(f"{path.name}: header says {shape}, file holds {body.size} values")
    return body.reshape(shape)


def split_online(train_x, train_y, test_x, test_y, settings: OnlineImageSettings, name: str, names: np.ndarray):
    if settings.n_val >= len(train_x):
        raise DataError(f"dataset '{name}': n_val {settings.n_val} leaves no training images ({len(train_x)} in all)")
    tx, ty = train_x[: len(train_x) - settings.n_val], train_y[: len(train_y) - settings.n_val]
    vx, vy = train_x[len(train_x) - settings.n_val:], train_y[len(train_y) - settings.n_val:]
    return {
        "train": {"x": tx[: settings.n_train], "label": ty[: settings.n_train].astype(np.int64)},
        "val": {"x": vx, "label": vy.astype(np.int64)},
        "test": {"x": test_x[: settings.n_test], "label": test_y[: settings.n_test].astype(np.int64)},
        "classes": {"names": names},
    }


def generate_mnist(settings: MnistSettings, seed: int, scratch: Path | None = None) -> dict[str, dict[str, np.ndarray]]:
    base = settings.url if settings.url.endswith("/") else settings.url + "/"
    arrays = {}
    with scratch_folder(scratch) as folder:
        for fname in MNIST_MD5:
            path = download(base + fname, folder, md5=settings.md5.get(fname), name=fname)
            arrays[fname.split("-")[0] + "-" + fname.split("-")[1]] = read_idx(path)
    train_x, train_y = arrays["train-images"], arrays["train-labels"]
    test_x, test_y = arrays["t10k-images"], arrays["t10k-labels"]
    if len(train_x) != len(train_y) or len(test_x) != len(test_y):
        raise DataError("dataset 'mnist': image and label files disagree in length")
    out = split_online(train_x[:, None], train_y, test_x[:, None], test_y, settings, "mnist", DIGIT_NAMES)
    if settings.second_domain is not None:
        rng = np.random.default_rng(seed)
        for split in ("train", "val", "test"):
            out[split]["x_other"] = second_domain_uint8(out[split]["x"], settings.second_domain, rng)
    return out


# --------------------------------------------------------------------------------- CIFAR-10


class CifarSettings(OnlineImageSettings):
    url: str = CIFAR_URL
    md5: Optional[str] = Field(CIFAR_MD5, pattern=r"^[0-9a-fA-F]{32}$")


def read_cifar(archive: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{'train': (x, y), 'test': (x, y)} from the python-pickle archive, read without extracting."""
    batches: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    try:
        with tarfile.open(archive) as tar:
            for member in tar.getmembers():
                stem = Path(member.name).name
                if not member.isfile() or not (stem.startswith("data_batch_") or stem == "test_batch"):
                    continue
                # the archive's md5 was checked against the publisher's before this unpickling
                entry = pickle.load(tar.extractfile(member), encoding="bytes")
                x = np.asarray(entry[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
                batches[stem] = (x, np.asarray(entry[b"labels"], dtype=np.int64))
    except (tarfile.TarError, EOFError, OSError, pickle.UnpicklingError, KeyError, ValueError) as exc:
        raise DataError(f"{archive.name}: not the CIFAR-10 python archive ({type(exc).__name__}: {exc})") from None
    train_names = sorted(n for n in batches if n.startswith("data_batch_"))
    if not train_names or "test_batch" not in batches:
        raise DataError(f"{archive.name}: no data_batch_* or test_batch inside")
    return {
        "train": (np.concatenate([batches[n][0] for n in train_names]), np.concatenate([batches[n][1] for n in train_names])),
        "test": batches["test_batch"],
    }


def generate_cifar(settings: CifarSettings, seed: int, scratch: Path | None = None) -> dict[str, dict[str, np.ndarray]]:
    with scratch_folder(scratch) as folder:
        archive = download(settings.url, folder, md5=settings.md5, name="cifar-10-python.tar.gz")
        parts = read_cifar(archive)
    return split_online(*parts["train"], *parts["test"], settings, "cifar10", CIFAR_NAMES)


digits = SimpleNamespace(Settings=DigitsSettings, generate=generate_digits)
mnist = SimpleNamespace(Settings=MnistSettings, generate=generate_mnist)
cifar10 = SimpleNamespace(Settings=CifarSettings, generate=generate_cifar)
