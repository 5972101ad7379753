"""MNIST and CIFAR-10 sources against tiny files in the publishers' formats, served by a local
HTTP server: parsed without torchvision, checked against the md5s given, split as documented,
and a wrong checksum or a foreign file ends in one DataError line."""

from __future__ import annotations

import gzip
import hashlib
import io
import pickle
import struct
import tarfile

import numpy as np
import pytest

from conftest import serve_folder
from pipeline.datasets import SOURCES
from pipeline.plumbing.errors import DataError
from pipeline.tasks.images import to_network_range


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", n) for n in array.shape)
    return gzip.compress(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def server(tmp_path):
    """Serves tmp_path/www on 127.0.0.1; yields (base URL, folder)."""
    www = tmp_path / "www"
    www.mkdir()
    with serve_folder(www) as base:
        yield base, www


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def write_mnist(www, n_train=30, n_test=12):
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (n_train, 28, 28)),
        "train-labels-idx1-ubyte.gz": np.arange(n_train) % 10,
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (n_test, 28, 28)),
        "t10k-labels-idx1-ubyte.gz": (np.arange(n_test) + 3) % 10,
    }
    sums = {}
    for name, array in arrays.items():
        data = idx_bytes(array)
        (www / "mnist").mkdir(exist_ok=True)
        (www / "mnist" / name).write_bytes(data)
        sums[name] = md5(data)
    return arrays, sums


def test_mnist_is_parsed_split_and_checked(server, tmp_path):
    base, www = server
    arrays, sums = write_mnist(www)
    src = SOURCES["mnist"]
    out = src.generate(src.Settings(url=base + "mnist/", md5=sums, n_val=5, n_train=20), seed=0, scratch=tmp_path / "scratch")
    train_x = arrays["train-images-idx3-ubyte.gz"]
    assert out["train"]["x"].shape == (20, 1, 28, 28) and out["train"]["x"].dtype == np.uint8
    np.testing.assert_array_equal(out["train"]["x"][:, 0], train_x[:20])
    np.testing.assert_array_equal(out["val"]["x"][:, 0], train_x[25:])  # the last n_val training images
    np.testing.assert_array_equal(out["test"]["label"], arrays["t10k-labels-idx1-ubyte.gz"])
    assert list(out["classes"]["names"]) == [str(i) for i in range(10)]
    # the task pads 28 -> 32 with the background and scales to [−1, 1]
    x = to_network_range(out["train"]["x"])
    assert x.shape == (20, 1, 32, 32) and x.min() >= -1 and x.max() <= 1 and (x[:, :, :2] == -1).all()


def test_mnist_wrong_md5_is_one_clear_error(server, tmp_path):
    base, www = server
    _, sums = write_mnist(www)
    sums["t10k-labels-idx1-ubyte.gz"] = "0" * 32
    src = SOURCES["mnist"]
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz failed: md5 checksum mismatch"):
        src.generate(src.Settings(url=base + "mnist/", md5=sums, n_val=5), seed=0, scratch=tmp_path / "scratch")
    assert not (tmp_path / "scratch" / "t10k-labels-idx1-ubyte.gz").exists()


def test_mnist_foreign_file_is_a_data_error(server, tmp_path):
    base, www = server
    _, sums = write_mnist(www)
    bad = gzip.compress(b"not an idx file at all")
    (www / "mnist" / "train-images-idx3-ubyte.gz").write_bytes(bad)
    sums["train-images-idx3-ubyte.gz"] = md5(bad)
    src = SOURCES["mnist"]
    with pytest.raises(DataError, match="not an IDX file"):
        src.generate(src.Settings(url=base + "mnist/", md5=sums, n_val=5), seed=0, scratch=tmp_path / "scratch")


def cifar_archive(n_per_batch=6) -> tuple[bytes, dict]:
    rng = np.random.default_rng(1)
    buffer, parts = io.BytesIO(), {}
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
            data = rng.integers(0, 256, (n_per_batch, 3072), dtype=np.uint8)
            labels = list(rng.integers(0, 10, n_per_batch))
            parts[name] = (data, labels)
            payload = pickle.dumps({b"data": data, b"labels": labels, b"batch_label": name.encode()})
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return buffer.getvalue(), parts


def test_cifar10_is_parsed_and_split(server, tmp_path):
    base, www = server
    data, parts = cifar_archive()
    (www / "cifar-10-python.tar.gz").write_bytes(data)
    src = SOURCES["cifar10"]
    out = src.generate(src.Settings(url=base + "cifar-10-python.tar.gz", md5=md5(data), n_val=4), seed=0, scratch=tmp_path / "s")
    assert out["train"]["x"].shape == (26, 3, 32, 32) and out["val"]["x"].shape == (4, 3, 32, 32)
    np.testing.assert_array_equal(out["train"]["x"][0], parts["data_batch_1"][0][0].reshape(3, 32, 32))
    np.testing.assert_array_equal(out["test"]["label"], parts["test_batch"][1])
    assert out["classes"]["names"][0] == "airplane"
    x = to_network_range(out["test"]["x"])
    assert x.shape == (6, 3, 32, 32) and x.dtype == np.float32


def test_cifar10_wrong_md5_and_foreign_archive(server, tmp_path):
    base, www = server
    data, _ = cifar_archive()
    (www / "cifar-10-python.tar.gz").write_bytes(data)
    src = SOURCES["cifar10"]
    with pytest.raises(DataError, match="md5 checksum mismatch"):
        src.generate(src.Settings(url=base + "cifar-10-python.tar.gz", md5="1" * 32), seed=0, scratch=tmp_path / "a")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        info = tarfile.TarInfo("readme.txt")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"hi"))
    (www / "other.tar.gz").write_bytes(buffer.getvalue())
    with pytest.raises(DataError, match="no data_batch"):
        src.generate(src.Settings(url=base + "other.tar.gz", md5=md5(buffer.getvalue())), seed=0, scratch=tmp_path / "b")


def test_published_checksums_are_the_defaults():
    mnist, cifar = SOURCES["mnist"].Settings(), SOURCES["cifar10"].Settings()
    assert mnist.url == "https://ossci-datasets.s3.amazonaws.com/mnist/"
    assert mnist.md5["train-images-idx3-ubyte.gz"] == "f68b3c2dcbeaaa9fbdd348bbdeb94873"
    assert mnist.md5["t10k-labels-idx1-ubyte.gz"] == "ec29112dd5afa0611ce80d1b7f02629c"
    assert (cifar.url, cifar.md5) == ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a")
