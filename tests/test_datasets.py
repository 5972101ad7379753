"""Generated data sets: seeding, shapes, and contents recomputed independently."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from pydantic import ValidationError

from pipeline.datasets import parity
from pipeline.datasets.mixture import ring, ring_means

SPLITS = ("train", "val", "test")
PARITY = parity.Settings(
    train_min_length=2, train_max_length=7, test_max_length=12, n_train=500, n_val=120, n_test_per_length=9
)


@pytest.fixture(scope="module")
def parity_data():
    return parity.generate(PARITY, seed=3)


# ---------------------------------------------------------------------------- parity


def test_parity_same_seed_gives_identical_arrays(parity_data):
    again = parity.generate(PARITY, seed=3)
    for split in SPLITS:
        assert set(again[split]) == {"tokens", "lengths", "labels"}
        for key, value in parity_data[split].items():
            np.testing.assert_array_equal(again[split][key], value)


def test_parity_different_seed_gives_different_arrays(parity_data):
    other = parity.generate(PARITY, seed=4)
    for split in SPLITS:
        first, second = parity_data[split]["tokens"], other[split]["tokens"]
        assert first.shape != second.shape or not np.array_equal(first, second)
    # train lengths are random too
    assert not np.array_equal(parity_data["train"]["lengths"], other["train"]["lengths"])


def test_parity_shapes_and_dtypes(parity_data):
    sizes = {"train": PARITY.n_train, "val": PARITY.n_val, "test": PARITY.test_max_length * PARITY.n_test_per_length}
    for split, n in sizes.items():
        d = parity_data[split]
        assert d["tokens"].dtype == np.int8
        assert d["lengths"].dtype == np.int16
        assert d["labels"].dtype == np.int8
        assert d["tokens"].ndim == 2 and d["tokens"].shape[0] == n
        assert d["lengths"].shape == (n,)
        assert d["labels"].shape == (n,)
        # the padded width is the longest string of the split
        assert d["tokens"].shape[1] == int(d["lengths"].max())
        assert set(np.unique(d["tokens"])) <= {0, 1}
        assert set(np.unique(d["labels"])) <= {0, 1}


def test_parity_train_and_val_lengths_within_bounds(parity_data):
    lo, hi = PARITY.train_min_length, PARITY.train_max_length
    for split in ("train", "val"):
        lengths = parity_data[split]["lengths"]
        assert lengths.min() >= lo
        assert lengths.max() <= hi
    # 500 uniform draws from 6 lengths: every length appears (the bounds are inclusive)
    assert set(np.unique(parity_data["train"]["lengths"]).tolist()) == set(range(lo, hi + 1))


def test_parity_test_split_has_every_length_equally(parity_data):
    counts = Counter(parity_data["test"]["lengths"].tolist())
    assert counts == {n: PARITY.n_test_per_length for n in range(1, PARITY.test_max_length + 1)}


def test_parity_padding_is_zero(parity_data):
    for split in SPLITS:
        tokens, lengths = parity_data[split]["tokens"], parity_data[split]["lengths"]
        for row, n in zip(tokens, lengths):
            assert not row[int(n):].any()


def test_parity_labels_recomputed_from_bit_strings(parity_data):
    for split in SPLITS:
        d = parity_data[split]
        for row, n, label in zip(d["tokens"], d["lengths"], d["labels"]):
            text = "".join(str(int(b)) for b in row[: int(n)])
            assert len(text) == n
            assert int(label) == text.count("1") % 2


def test_parity_labels_not_degenerate(parity_data):
    # both classes occur, in roughly equal numbers (random bits: P(odd) = 1/2)
    frac = parity_data["train"]["labels"].mean()
    assert 0.4 < frac < 0.6


def test_parity_one_prob_sets_the_density_of_ones_and_labels_stay_exact():
    sparse = parity.generate(PARITY.model_copy(update={"one_prob": 0.1, "n_train": 4000}), seed=3)
    d = sparse["train"]
    inside = np.arange(d["tokens"].shape[1])[None, :] < d["lengths"][:, None]
    assert abs(d["tokens"][inside].mean() - 0.1) < 0.02  # 4000 strings of 2..7 bits: s.e. about 0.002
    assert (d["tokens"][~inside] == 0).all()
    assert np.array_equal(d["labels"], d["tokens"].sum(axis=1) % 2)
    # few ones: an even count (mostly none) is the common answer, P(odd) = (1 - 0.8^n) / 2
    n = d["lengths"].astype(float)
    assert abs(d["labels"].mean() - ((1 - 0.8**n) / 2).mean()) < 0.03


def test_parity_default_one_prob_is_uniform_bits(parity_data):
    explicit = parity.generate(PARITY.model_copy(update={"one_prob": 0.5}), seed=3)
    for split in SPLITS:
        assert np.array_equal(explicit[split]["tokens"], parity_data[split]["tokens"])
    with pytest.raises(ValidationError):
        parity.Settings(one_prob=1.0)


def test_parity_settings_validation():
    with pytest.raises(ValidationError):
        parity.Settings(train_min_length=5, train_max_length=4)
    with pytest.raises(ValidationError):
        parity.Settings(train_max_length=10, test_max_length=9)
    with pytest.raises(ValidationError):
        parity.Settings(unknown_key=1)


# ---------------------------------------------------------------------------- ring

RING = ring.Settings(n_components=8, radius=2.5, std=0.05, n_train=4000, n_val=800)


@pytest.fixture(scope="module")
def ring_data():
    return ring.generate(RING, seed=11)


def test_ring_seeded(ring_data):
    again = ring.generate(RING, seed=11)
    other = ring.generate(RING, seed=12)
    for split in ("train", "val"):
        np.testing.assert_array_equal(again[split]["x"], ring_data[split]["x"])
        np.testing.assert_array_equal(again[split]["component"], ring_data[split]["component"])
        assert not np.array_equal(other[split]["x"], ring_data[split]["x"])
    np.testing.assert_array_equal(again["means"]["means"], ring_data["means"]["means"])


def test_ring_shapes_and_dtypes(ring_data):
    for split, n in (("train", RING.n_train), ("val", RING.n_val)):
        assert ring_data[split]["x"].shape == (n, 2)
        assert ring_data[split]["x"].dtype == np.float32
        assert ring_data[split]["component"].shape == (n,)
        assert ring_data[split]["component"].dtype == np.int16
    assert ring_data["means"]["means"].shape == (RING.n_components, 2)
    assert float(ring_data["means"]["std"]) == pytest.approx(RING.std)


def test_ring_means_on_circle_evenly_spaced(ring_data):
    means = ring_data["means"]["means"]
    np.testing.assert_allclose(np.linalg.norm(means, axis=1), RING.radius, rtol=1e-12)
    angles = np.arctan2(means[:, 1], means[:, 0]) % (2 * np.pi)
    step = 2 * np.pi / RING.n_components
    np.testing.assert_allclose(np.diff(np.sort(angles)), step, atol=1e-12)
    # neighbours are one chord apart: 2 r sin(pi / K)
    chords = np.linalg.norm(means - np.roll(means, -1, axis=0), axis=1)
    np.testing.assert_allclose(chords, 2 * RING.radius * np.sin(np.pi / RING.n_components), rtol=1e-12)
    # all distinct
    assert len({tuple(np.round(m, 9)) for m in means}) == RING.n_components
    np.testing.assert_allclose(ring_means(RING), means)


def test_ring_means_other_sizes():
    means = ring_means(ring.Settings(n_components=4, radius=1.0))
    np.testing.assert_allclose(means, [[1, 0], [0, 1], [-1, 0], [0, -1]], atol=1e-12)


def test_ring_samples_near_their_component(ring_data):
    means = ring_data["means"]["means"]
    for split in ("train", "val"):
        x = ring_data[split]["x"].astype(np.float64)
        comp = ring_data[split]["component"].astype(int)
        assert comp.min() >= 0 and comp.max() < RING.n_components
        dist = np.linalg.norm(x - means[comp], axis=1)
        assert dist.max() < 6 * RING.std
        # the spread is the stated std per coordinate: E|x - mu|^2 = 2 sigma^2
        assert np.sqrt(np.mean(dist**2) / 2) == pytest.approx(RING.std, rel=0.05)
        # and the recorded component is the nearest mean
        nearest = np.linalg.norm(x[:, None, :] - means[None], axis=2).argmin(axis=1)
        np.testing.assert_array_equal(nearest, comp)


def test_ring_components_balanced(ring_data):
    counts = np.bincount(ring_data["train"]["component"], minlength=RING.n_components)
    expected = RING.n_train / RING.n_components
    assert counts.min() > 0.8 * expected
    assert counts.max() < 1.2 * expected
