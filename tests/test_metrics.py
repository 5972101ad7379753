"""Metrics on hand-made inputs whose answers are known exactly (REFERENCE.md, "Metrics")."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pipeline.datasets.mixture import ring, ring_means
from pipeline.evaluation.metrics import accuracy_by_length, mixture_metrics

STD = 0.01
MEANS = ring_means(ring.Settings(n_components=8, radius=1.0, std=STD))  # the reference ring


def on_means(indices: list[int], per_mode: int) -> np.ndarray:
    return np.repeat(MEANS[indices], per_mode, axis=0)


def radial(mode: int, distance: float) -> np.ndarray:
    """A point ``distance`` away from a mean, straight out from the centre of the ring."""
    m = MEANS[mode]
    return m + distance * m / np.linalg.norm(m)


# ---------------------------------------------------------------------------- mixture


def test_five_of_eight_modes_equally():
    samples = on_means([0, 2, 3, 5, 7], per_mode=10)
    out = mixture_metrics(samples, MEANS, STD)
    assert out["modes_covered"] == 5
    assert out["high_quality_pct"] == pytest.approx(100.0)
    assert out["reverse_kl"] == pytest.approx(math.log(8 / 5), abs=1e-12)


def test_all_eight_modes_equally():
    samples = on_means(list(range(8)), per_mode=7)
    out = mixture_metrics(samples, MEANS, STD)
    assert out["modes_covered"] == 8
    assert out["high_quality_pct"] == pytest.approx(100.0)
    assert out["reverse_kl"] == pytest.approx(0.0, abs=1e-12)


def test_single_mode_is_total_collapse():
    samples = on_means([4], per_mode=20)
    out = mixture_metrics(samples, MEANS, STD)
    assert out["modes_covered"] == 1
    assert out["high_quality_pct"] == pytest.approx(100.0)
    assert out["reverse_kl"] == pytest.approx(math.log(8), abs=1e-12)


def test_samples_far_from_every_mean():
    samples = np.array([[0.0, 0.0], [10.0, 10.0], [-3.0, 0.5], [0.5, 0.5]])
    out = mixture_metrics(samples, MEANS, STD)
    assert out["modes_covered"] == 0
    assert out["high_quality_pct"] == 0.0
    # documented convention: no high-quality sample -> log K, the value of total collapse
    assert out["reverse_kl"] == pytest.approx(math.log(8), abs=1e-12)


def test_three_sigma_threshold():
    inside = mixture_metrics(radial(3, 2.9 * STD)[None], MEANS, STD)
    assert inside["modes_covered"] == 1
    assert inside["high_quality_pct"] == pytest.approx(100.0)
    assert inside["reverse_kl"] == pytest.approx(math.log(8))

    outside = mixture_metrics(radial(3, 3.1 * STD)[None], MEANS, STD)
    assert outside["modes_covered"] == 0
    assert outside["high_quality_pct"] == 0.0

    # any direction, not only radial: 2.9 sigma tangentially
    m = MEANS[6]
    tangent = np.array([-m[1], m[0]])
    assert mixture_metrics((m + 2.9 * STD * tangent)[None], MEANS, STD)["modes_covered"] == 1
    assert mixture_metrics((m + 3.1 * STD * tangent)[None], MEANS, STD)["modes_covered"] == 0


def test_threshold_scales_with_std():
    # 0.05 from a mean: high quality at sigma = 0.02 (2.5 sigma), not at sigma = 0.01 (5 sigma)
    x = radial(2, 0.05)[None]
    assert mixture_metrics(x, MEANS, 0.02)["high_quality_pct"] == pytest.approx(100.0)
    assert mixture_metrics(x, MEANS, 0.01)["high_quality_pct"] == 0.0


def test_mixed_case_hand_computed():
    samples = np.concatenate(
        [
            on_means([0], per_mode=3),  # 3 HQ on mode 0
            radial(1, 2.0 * STD)[None],  # 1 HQ on mode 1 (2 sigma)
            radial(2, 5.0 * STD)[None],  # nearest is mode 2 but 5 sigma: not HQ
            np.array([[10.0, 0.0]]),  # nearest is mode 0, far: not HQ
            np.array([[0.0, 0.0]]),  # the centre: not HQ
            radial(0, -1.0 * STD)[None],  # 1 sigma inward of mode 0: HQ
        ]
    )
    out = mixture_metrics(samples, MEANS, STD)
    # 8 samples, 5 high-quality: 4 on mode 0, 1 on mode 1
    assert out["modes_covered"] == 2
    assert out["high_quality_pct"] == pytest.approx(100.0 * 5 / 8)
    q = np.array([4 / 5, 1 / 5])
    expected = float(np.sum(q * np.log(q * 8)))
    assert expected == pytest.approx(0.8 * math.log(6.4) + 0.2 * math.log(1.6))
    assert out["reverse_kl"] == pytest.approx(expected, abs=1e-12)


def test_unequal_modes_reverse_kl():
    # 6 on mode 0, 2 on mode 5: q = (3/4, 1/4)
    samples = np.concatenate([on_means([0], 6), on_means([5], 2)])
    out = mixture_metrics(samples, MEANS, STD)
    assert out["modes_covered"] == 2
    assert out["reverse_kl"] == pytest.approx(0.75 * math.log(6) + 0.25 * math.log(2), abs=1e-12)


def test_mixture_metrics_types_and_input_order_irrelevant():
    rng = np.random.default_rng(0)
    samples = np.concatenate([on_means([1, 4], 5), rng.normal(size=(7, 2)) * 5])
    out = mixture_metrics(samples, MEANS, STD)
    shuffled = mixture_metrics(samples[rng.permutation(len(samples))], MEANS, STD)
    assert out == pytest.approx(shuffled)
    assert isinstance(out["modes_covered"], int)
    assert isinstance(out["high_quality_pct"], float)
    assert isinstance(out["reverse_kl"], float)
    # float32 input, as the generator's samples are
    assert mixture_metrics(samples.astype(np.float32), MEANS, STD)["modes_covered"] == out["modes_covered"]


def test_grid_means():
    # the 5x5 grid of the reference, sigma 0.05
    g = np.array([-4, -2, 0, 2, 4], dtype=float)
    means = np.stack(np.meshgrid(g, g), axis=-1).reshape(-1, 2)
    samples = np.concatenate([np.repeat(means[:10], 4, axis=0), np.array([[1.0, 1.0]])])  # 41: 40 HQ
    out = mixture_metrics(samples, means, 0.05)
    assert out["modes_covered"] == 10
    assert out["high_quality_pct"] == pytest.approx(100.0 * 40 / 41)
    assert out["reverse_kl"] == pytest.approx(math.log(25 / 10), abs=1e-12)


# ---------------------------------------------------------------------------- accuracy by length


def test_accuracy_by_length_hand_made():
    lengths = np.array([3, 1, 2, 3, 1, 3, 2, 5, 3])
    labels = np.array([1, 0, 1, 0, 1, 1, 0, 1, 0])
    predictions = np.array([1, 0, 0, 0, 0, 1, 1, 0, 1])
    # length 1: (0==0, 0!=1) -> 1/2; length 2: (0!=1, 1!=0) -> 0;
    # length 3: (1==1, 0==0, 1==1, 1!=0) -> 3/4; length 5: (0!=1) -> 0
    out = accuracy_by_length(predictions, labels, lengths)
    assert out == {1: 0.5, 2: 0.0, 3: 0.75, 5: 0.0}
    assert list(out) == [1, 2, 3, 5]  # increasing length
    assert all(type(k) is int and type(v) is float for k, v in out.items())


def test_accuracy_by_length_perfect_and_numpy_dtypes():
    lengths = np.array([4, 4, 2, 7], dtype=np.int16)
    labels = np.array([0, 1, 1, 0], dtype=np.int8)
    out = accuracy_by_length(labels.astype(np.int64), labels, lengths)
    assert out == {2: 1.0, 4: 1.0, 7: 1.0}
    out = accuracy_by_length(1 - labels, labels, lengths)
    assert out == {2: 0.0, 4: 0.0, 7: 0.0}
