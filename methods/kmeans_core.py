"""Plaintext K-means arithmetic shared by the methods: assignment, cluster statistics, the M-step,
weighted k-means++ and weighted Lloyd, and the plaintext reference every method is compared with.

Each function computes exactly what the copy it replaced did (same operations in the same order),
so seeded runs give the same bits as before.

Why the weighted k-means++ is not :func:`sklearn.cluster.kmeans_plusplus` (``sample_weight``, since
scikit-learn 1.3): its callers draw from a numpy ``Generator`` (federated seeding, the HE key
holder), which scikit-learn refuses (it takes a ``RandomState`` or a seed), and scikit-learn draws
through its own stream and a greedy ``2 + ln k`` local search by default. With
``n_local_trials=1`` the distribution is the same D² sampling, but not the draws: seeded results
would change. The unweighted reference seeding (:func:`reference_init`) is scikit-learn's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from sklearn.cluster import KMeans


def nearest_center(X: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Index of the nearest center for each row (squared Euclidean; the per-row ``|x|²`` term,
    which does not change the argmin, is left out)."""
    d = (centers**2).sum(1)[None, :] - 2.0 * X @ centers.T
    return d.argmin(axis=1)


def squared_distances(X: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """``(n, k)`` squared Euclidean distances, by the expansion ``|x|² - 2 x·c + |c|²``."""
    return (X**2).sum(1)[:, None] - 2.0 * X @ centers.T + (centers**2).sum(1)[None, :]


def cluster_sums(X: np.ndarray, labels: np.ndarray, n_clusters: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-cluster sums ``(k, d)`` and row counts ``(k,)`` (int64) of the rows of ``X``."""
    sums = np.zeros((n_clusters, X.shape[1]), dtype=float)
    np.add.at(sums, labels, X)
    return sums, np.bincount(labels, minlength=n_clusters).astype(np.int64)


def m_step(centers: np.ndarray, sums: np.ndarray, counts: np.ndarray, min_count: float = 1) -> np.ndarray:
    """Lloyd's update ``sums / counts``; a cluster with fewer than ``min_count`` rows (none, by
    default; a noisy count below one row for DP) keeps its previous center."""
    new = np.array(centers, dtype=float, copy=True)
    full = counts >= min_count
    new[full] = sums[full] / counts[full, None]
    return new


def choice_draw(values: np.ndarray, rng: np.random.Generator) -> int:
    """One index drawn with probability proportional to ``values`` (``rng.choice``); uniform when
    they are all zero."""
    total = values.sum()
    return int(rng.choice(len(values), p=values / total) if total > 0 else rng.choice(len(values)))


def weighted_kmeans_pp(points: np.ndarray, weights: np.ndarray, k: int, rng: np.random.Generator,
                       draw: Callable[[np.ndarray, np.random.Generator], int] = choice_draw) -> np.ndarray:
    """k-means++ on weighted points: the first pick drawn ∝ weight, each next one by ``draw`` on
    weight × D² (D: distance to the nearest pick so far). Returns the ``k`` picks as floats."""
    points = np.asarray(points, float)
    w = np.asarray(weights, float)
    if len(points) < k:
        raise ValueError(f"{len(points)} points to seed {k} clusters; expected at least {k}")
    first = int(rng.choice(len(points), p=w / w.sum()))
    chosen = [first]
    d2 = ((points - points[first]) ** 2).sum(1)
    for _ in range(1, k):
        idx = draw(w * d2, rng)
        chosen.append(idx)
        d2 = np.minimum(d2, ((points - points[idx]) ** 2).sum(1))
    return points[chosen].copy()


def weighted_lloyd(points: np.ndarray, weights: np.ndarray, centers: np.ndarray, max_iter: int,
                   atol: float = 1e-12) -> np.ndarray:
    """Lloyd on weighted points from ``centers``: each center moves to the weighted mean of its
    points (an empty cluster keeps its center), until no coordinate moves more than ``atol``."""
    k = len(centers)
    for _ in range(max_iter):
        lab = ((points[:, None, :] - centers[None]) ** 2).sum(-1).argmin(1)
        new = centers.copy()
        for c in range(k):
            m = lab == c
            if m.any():
                new[c] = np.average(points[m], axis=0, weights=weights[m])
        if np.allclose(new, centers, rtol=0, atol=atol):
            break
        centers = new
    return centers


def reference_init(X_segment: np.ndarray, n_clusters: int, seed: int) -> np.ndarray:
    """The plaintext method's k-means++ initial centers for ``(X_segment, n_clusters, seed)``
    (scikit-learn's greedy k-means++)."""
    # scikit-learn is imported on use: the processes that only need the arithmetic above (the
    # federated clients, the metrics) do not load it
    from sklearn.cluster import kmeans_plusplus

    centers, _ = kmeans_plusplus(np.asarray(X_segment, dtype=float), n_clusters, random_state=seed)
    return centers


def reference_kmeans(X_segment: np.ndarray, n_clusters: int, seed: int, init=None, **kw) -> KMeans:
    """Lloyd's K-means from :func:`reference_init` (or from ``init``), as the plaintext method runs it."""
    from sklearn.cluster import KMeans

    centers = reference_init(X_segment, n_clusters, seed) if init is None else np.asarray(init, float)
    return KMeans(n_clusters=n_clusters, init=centers, n_init=1, random_state=seed, **kw).fit(X_segment)
