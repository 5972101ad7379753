"""Image precision/recall (Kynkäänniemi et al. 2019) at the scale of real data sets: exact
against the all-pairs computation, and within a fixed memory limit whatever the set size."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from pipeline.evaluation.metrics import _pairwise, precision_recall


def all_pairs(real, fake, k):
    """The definition, with full distance matrices (small sets only)."""
    r_real = np.sort(_pairwise(real, real), axis=1)[:, k]
    r_fake = np.sort(_pairwise(fake, fake), axis=1)[:, k]
    cross = _pairwise(fake, real)
    return {"precision": float((cross <= r_real[None, :]).any(1).mean()), "recall": float((cross.T <= r_fake[None, :]).any(1).mean())}


@pytest.mark.parametrize("block", [7, 1000, 10**9])
def test_chunked_precision_recall_equals_the_all_pairs_definition(block):
    rng = np.random.default_rng(0)
    real, fake = rng.standard_normal((300, 8)), 0.7 * rng.standard_normal((300, 8)) + 0.3
    assert precision_recall(real, fake, k=3, block=block) == all_pairs(real, fake, 3)


def test_larger_set_is_subsampled_to_the_smaller_ones_size():
    rng = np.random.default_rng(1)
    real, fake = rng.standard_normal((500, 4)), rng.standard_normal((200, 4))
    sub = real[np.sort(np.random.default_rng(0).choice(500, 200, replace=False))]
    assert precision_recall(real, fake, k=3) == all_pairs(sub, fake, 3)


def test_twenty_thousand_by_128_features_fit_in_two_gigabytes():
    """Full float64 matrices of 20,000 × 20,000 would need 3.2 GB each; the chunked metric runs
    under an address-space limit of 2 GB."""
    script = textwrap.dedent(
        """
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
        import numpy as np
        from pipeline.evaluation.metrics import precision_recall
        rng = np.random.default_rng(0)
        real = rng.standard_normal((20000, 128)).astype(np.float32)
        fake = (rng.standard_normal((20000, 128)) + 0.5).astype(np.float32)
        pr = precision_recall(real, fake, k=3)
        print(pr["precision"], pr["recall"])
        """
    )
    env = {"PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env={**env, "PYTHONPATH": ":".join(sys.path)}, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    precision, recall = map(float, out.stdout.split())
    assert 0.0 < precision < 1.0 and 0.0 < recall < 1.0
