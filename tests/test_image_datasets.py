"""MNIST and CIFAR-10 sources against tiny files in the publishers' formats, served by a local
HTTP server: parsed without torchvision, checked against the md5s given, split as documented,
and a wrong checksum or a foreign file ends in one DataError line."""

from __future__ import annotations

import gzip
import io
import tarfile

import numpy as np
import pytest

from conftest import serve_folder
from published_formats import cifar_archive, md5, write_mnist
from pipeline.datasets import SOURCES
from pipeline.plumbing.errors import DataError
from pipeline.tasks.images import to_network_range


@pytest.fixture
def server(tmp_path):
    """Serves tmp_path/www on 127.0.0.1; yields (base URL, folder)."""
    www = tmp_path / "www"
    www.mkdir()
    with serve_folder(www) as base:
        yield base, www


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


@pytest.mark.parametrize("kind", ["negative", "edges"])
def test_mnist_second_domain_is_cogans_unpaired_domain_b_on_its_own_background(server, tmp_path, kind):
    base, www = server
    _, sums = write_mnist(www)
    src = SOURCES["mnist"]
    out = src.generate(src.Settings(url=base + "mnist/", md5=sums, n_val=5, second_domain=kind), seed=0, scratch=tmp_path / "s")
    for split in ("train", "val", "test"):
        x, other = out[split]["x"], out[split]["x_other"]
        assert other.dtype == np.uint8 and other.shape == (len(x), 1, 32, 32)
    other = to_network_range(out["train"]["x_other"])  # already 32: left as it is
    border = np.ones((32, 32), bool)
    border[2:30, 2:30] = False
    assert (other[:, 0][:, border] == (1.0 if kind == "negative" else -1.0)).all()  # its own background
    if kind == "negative":  # the same images, negated, in another order (unpaired)
        negated = 255 - np.pad(out["train"]["x"], ((0, 0), (0, 0), (2, 2), (2, 2)))
        assert sorted(map(bytes, negated)) == sorted(map(bytes, out["train"]["x_other"]))
        assert not np.array_equal(negated, out["train"]["x_other"])
    assert "x_other" not in src.generate(src.Settings(url=base + "mnist/", md5=sums, n_val=5), seed=0, scratch=tmp_path / "s2")["train"]
