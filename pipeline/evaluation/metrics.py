"""Evaluation metrics as pure functions of arrays (REFERENCE.md, "Metrics")."""

from __future__ import annotations

import numpy as np


def accuracy_by_length(predictions: np.ndarray, labels: np.ndarray, lengths: np.ndarray) -> dict[int, float]:
    """Accuracy of the predictions for each distinct input length, in increasing length."""
    correct = predictions == labels
    return {int(n): float(correct[lengths == n].mean()) for n in np.unique(lengths)}


def mixture_metrics(samples: np.ndarray, means: np.ndarray, std: float) -> dict[str, float]:
    """Mode coverage of samples from a mixture of isotropic Gaussians (PacGAN, VEEGAN).

    Each sample is assigned to its nearest mean; it is high-quality when that distance is
    under 3σ. Returns
    - ``modes_covered``: components with at least one high-quality sample;
    - ``high_quality_pct``: 100 × high-quality samples / all samples;
    - ``reverse_kl``: KL(q̂ ‖ uniform) of the high-quality samples' histogram over the
      components, in nats (0 when all are covered equally, log K when one is). With no
      high-quality sample q̂ is undefined; we report log K, the value of total collapse.
    """
    samples = np.asarray(samples, dtype=np.float64)
    means = np.asarray(means, dtype=np.float64)
    k = len(means)
    dist = np.linalg.norm(samples[:, None, :] - means[None, :, :], axis=2)  # (N, K)
    nearest = dist.argmin(axis=1)
    high_quality = dist[np.arange(len(samples)), nearest] < 3 * std
    counts = np.bincount(nearest[high_quality], minlength=k).astype(np.float64)
    if counts.sum() == 0:
        reverse_kl = float(np.log(k))
    else:
        q = counts / counts.sum()
        nz = q > 0
        reverse_kl = float(np.sum(q[nz] * np.log(q[nz] * k)))
    return {
        "modes_covered": int((counts > 0).sum()),
        "high_quality_pct": float(100.0 * high_quality.mean()) if len(samples) else 0.0,
        "reverse_kl": reverse_kl,
    }


# ---------------------------------------------------------------------- sequence outputs
# Hypotheses and references are lists of token sequences (any hashable tokens), END excluded.


def exact_match(hypotheses: list, references: list) -> np.ndarray:
    """Per example: 1.0 when the whole output equals the reference."""
    return np.array([list(h) == list(r) for h, r in zip(hypotheses, references)], dtype=np.float64)


def token_accuracy(hypotheses: list, references: list) -> float:
    """Reference tokens matched at the same position, over all reference tokens."""
    hits = sum(sum(a == b for a, b in zip(h, r)) for h, r in zip(hypotheses, references))
    return hits / max(1, sum(len(r) for r in references))


def bleu(hypotheses: list, references: list) -> float:
    """Corpus BLEU (Papineni et al. 2002, as sacrebleu computes it): 100 · BP · exp(Σ_n ¼ log p_n)
    over the clipped n-gram precisions p_1 .. p_4 pooled over the corpus, brevity penalty
    BP = min(1, exp(1 − r/c)). No smoothing (``smooth_method='none'``; sacrebleu's default is
    'exp'): a corpus without one matching 4-gram scores 0. Hypotheses and references are the
    task's own tokens, joined with spaces and not tokenised again (``tokenize='none'``); 0 .. 100."""
    import sacrebleu

    hyps = [" ".join(map(str, h)) for h in hypotheses]
    refs = [" ".join(map(str, r)) for r in references]
    return float(sacrebleu.corpus_bleu(hyps, [refs], smooth_method="none", tokenize="none").score)


def mean_by(values: np.ndarray, keys: np.ndarray) -> dict[int, float]:
    """Mean of ``values`` for each distinct integer key, in increasing key order."""
    values, keys = np.asarray(values, dtype=np.float64), np.asarray(keys)
    return {int(k): float(values[keys == k].mean()) for k in np.unique(keys)}


# ------------------------------------------------------- images, in a reference classifier's features


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """‖μ_a − μ_b‖² + Tr(Σ_a + Σ_b − 2 (Σ_a Σ_b)^½) between Gaussians fitted to two feature sets
    (Heusel et al. 2017's FID, here in the reference classifier's penultimate layer).
    Tr (Σ_a Σ_b)^½ is computed as Σ √λ of the symmetric Σ_a^½ Σ_b Σ_a^½ (same eigenvalues,
    no complex round-off)."""
    a, b = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    w, v = np.linalg.eigh(cov_a)
    root_a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    cross = np.linalg.eigvalsh(root_a @ cov_b @ root_a)
    trace_root = np.sqrt(np.clip(cross, 0, None)).sum()
    return float(max(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_root, 0.0))


def class_histogram_metrics(predicted: np.ndarray, n_classes: int) -> dict[str, float]:
    """How generated samples spread over the classes, as the reference classifier reads them:
    ``classes_covered`` (classes with at least one sample) and ``class_kl`` = KL(q̂ ‖ uniform)
    in nats (0: every class equally often; log K: one class only)."""
    counts = np.bincount(np.asarray(predicted, dtype=np.int64), minlength=n_classes).astype(np.float64)
    q = counts / counts.sum()
    nz = q > 0
    return {"classes_covered": int(nz.sum()), "class_kl": float(np.sum(q[nz] * np.log(q[nz] * n_classes)))}


def _pairwise(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d2 = (a**2).sum(1)[:, None] + (b**2).sum(1)[None, :] - 2 * a @ b.T
    return np.sqrt(np.clip(d2, 0, None))


def _row_blocks(n_rows: int, n_cols: int, budget: int):
    """Slices of rows such that a (rows, n_cols) float64 block stays under ``budget`` elements."""
    step = max(1, budget // max(n_cols, 1))
    return (slice(start, min(start + step, n_rows)) for start in range(0, n_rows, step))


def _kth_neighbour_radii(x: np.ndarray, k: int, budget: int) -> np.ndarray:
    """Distance from each point of ``x`` to its k-th nearest neighbour in ``x`` (itself excluded)."""
    kth = min(k, len(x) - 1)  # column 0 of a sorted row is the point itself
    radii = np.empty(len(x))
    for rows in _row_blocks(len(x), len(x), budget):
        radii[rows] = np.partition(_pairwise(x[rows], x), kth, axis=1)[:, kth]
    return radii


def _inside_balls(fake: np.ndarray, real: np.ndarray, fake_radii: np.ndarray, real_radii: np.ndarray, budget: int):
    """One pass over the fake-to-real distances: which fakes lie inside some real ball, and
    which reals inside some fake ball."""
    fake_inside = np.empty(len(fake), dtype=bool)
    real_inside = np.zeros(len(real), dtype=bool)
    for rows in _row_blocks(len(fake), len(real), budget):
        d = _pairwise(fake[rows], real)
        fake_inside[rows] = (d <= real_radii[None, :]).any(axis=1)
        real_inside |= (d <= fake_radii[rows, None]).any(axis=0)
    return fake_inside, real_inside


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3, block: int = 4_000_000, seed: int = 0) -> dict[str, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019). Each point of a set gets a ball
    reaching its k-th nearest neighbour in its own set; ``precision`` = share of fake points
    inside some real ball (fakes look real), ``recall`` = share of real points inside some fake
    ball (the real variety is produced).

    As in the paper, both sets have the same size: the larger is subsampled (without
    replacement, ``seed``) to the smaller's. Distances are computed ``block`` matrix elements at
    a time (32 MB in float64), so memory does not grow with the square of the set size."""
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    n = min(len(real), len(fake))
    rng = np.random.default_rng(seed)
    if len(real) > n:
        real = real[np.sort(rng.choice(len(real), n, replace=False))]
    if len(fake) > n:
        fake = fake[np.sort(rng.choice(len(fake), n, replace=False))]
    fake_radii, real_radii = _kth_neighbour_radii(fake, k, block), _kth_neighbour_radii(real, k, block)
    fake_inside, real_inside = _inside_balls(fake, real, fake_radii, real_radii, block)
    return {"precision": float(fake_inside.mean()), "recall": float(real_inside.mean())}
