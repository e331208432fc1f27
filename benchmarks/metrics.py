"""Scores of a fitted method on the test split: classification and segmentation quality.

Definitions (all on ``split.test`` unless noted; :data:`DEFINITIONS`, which the report prints):
"""

from __future__ import annotations

import textwrap

import numpy as np
from sklearn import metrics as skm

from methods.kmeans_core import nearest_center

#: (metric, definition): this module's docstring and the report's definitions table
DEFINITIONS = [
    ("precision, recall, f1", "positive class (y = yes) at ``threshold`` on P(y = 1)."),
    ("weighted_precision, weighted_recall", "scikit-learn's support-weighted averages over both classes "
     "(``average=\"weighted\"``), the likely definition behind the paper's figures."),
    ("auc", "ROC-AUC of P(y = 1); pr_auc: average precision; accuracy at ``threshold``."),
    ("inertia", "the K-means objective on the training split (sum of squared distances of each row to "
     "its nearest released centroid); inertia_test: the same on the test split."),
    ("silhouette", "on a fixed random sample of test rows (seeded by the split seed)."),
    ("sizes, conversion_rates, lift", "per segment on the test split; lift = segment rate / overall rate."),
    ("ari_vs_plaintext", "adjusted Rand index between this method's and the plaintext reference's "
     "segment labels of the test rows."),
]
__doc__ = (__doc__ or "") + "".join(textwrap.fill(f"- {name}: {text}", 100, subsequent_indent="  ") + "\n"
                                    for name, text in DEFINITIONS)


def classification(y: np.ndarray, proba: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    y = np.asarray(y)
    proba = np.asarray(proba, dtype=float)
    if proba.shape != y.shape or not np.isfinite(proba).all():
        raise ValueError(f"predicted probabilities must be finite with shape {y.shape}; got {proba.shape}")
    pred = (proba >= threshold).astype(int)
    p, r, f, _ = skm.precision_recall_fscore_support(y, pred, average="binary", zero_division=0)
    wp, wr, _, _ = skm.precision_recall_fscore_support(y, pred, average="weighted", zero_division=0)
    return {
        "precision": float(p),
        "recall": float(r),
        "f1": float(f),
        "auc": float(skm.roc_auc_score(y, proba)),
        "pr_auc": float(skm.average_precision_score(y, proba)),
        "accuracy": float(skm.accuracy_score(y, pred)),
        "weighted_precision": float(wp),
        "weighted_recall": float(wr),
        "threshold": float(threshold),
    }


def inertia(X: np.ndarray, centers: np.ndarray) -> float:
    """Sum of squared distances of each row to its nearest center."""
    labels = nearest_center(X, centers)
    return float(((X - centers[labels]) ** 2).sum())


def segmentation(
    X_train: np.ndarray,
    X_test: np.ndarray,
    labels_test: np.ndarray,
    centers: np.ndarray,
    y_test: np.ndarray,
    reference_labels_test: np.ndarray | None = None,
    silhouette_sample: int = 2000,
    seed: int = 0,
) -> dict:
    k = len(centers)
    labels_test = np.asarray(labels_test)
    sizes = np.bincount(labels_test, minlength=k)
    base_rate = float(np.mean(y_test))
    rates = [float(y_test[labels_test == c].mean()) if sizes[c] else None for c in range(k)]
    out = {
        "inertia": inertia(X_train, centers),
        "inertia_test": inertia(X_test, centers),
        "silhouette": None,
        "ari_vs_plaintext": None,
        "sizes": sizes.tolist(),
        "conversion_rates": rates,
        "lift": [r / base_rate if r is not None and base_rate > 0 else None for r in rates],
    }
    if len(np.unique(labels_test)) > 1:
        n = min(silhouette_sample, len(X_test))
        idx = np.random.default_rng(seed).choice(len(X_test), size=n, replace=False)
        if len(np.unique(labels_test[idx])) > 1:
            out["silhouette"] = float(skm.silhouette_score(X_test[idx], labels_test[idx]))
    if reference_labels_test is not None:
        out["ari_vs_plaintext"] = float(skm.adjusted_rand_score(reference_labels_test, labels_test))
    return out
