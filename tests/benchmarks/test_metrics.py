"""Metrics agree with scikit-learn's definitions; segmentation statistics are what they claim."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from benchmarks import metrics


@pytest.fixture
def scores():
    rng = np.random.default_rng(0)
    y = (rng.random(500) < 0.15).astype(int)
    p = np.clip(0.3 * y + rng.random(500) * 0.7, 0, 1)
    return y, p


def test_classification_matches_sklearn(scores):
    y, p = scores
    out = metrics.classification(y, p, threshold=0.4)
    pred = (p >= 0.4).astype(int)
    assert out["precision"] == pytest.approx(skm.precision_score(y, pred))
    assert out["recall"] == pytest.approx(skm.recall_score(y, pred))
    assert out["f1"] == pytest.approx(skm.f1_score(y, pred))
    assert out["auc"] == pytest.approx(skm.roc_auc_score(y, p))
    assert out["pr_auc"] == pytest.approx(skm.average_precision_score(y, p))
    assert out["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert out["weighted_precision"] == pytest.approx(skm.precision_score(y, pred, average="weighted"))
    assert out["weighted_recall"] == pytest.approx(skm.recall_score(y, pred, average="weighted"))
    assert out["threshold"] == 0.4


def test_classification_rejects_bad_probabilities(scores):
    y, p = scores
    with pytest.raises(ValueError, match="finite"):
        metrics.classification(y, np.where(p > 0.5, np.nan, p))
    with pytest.raises(ValueError, match="shape"):
        metrics.classification(y, p[:-1])


def test_segmentation_statistics():
    rng = np.random.default_rng(1)
    centers = np.array([[0.0, 0.0], [10.0, 10.0]])
    labels_train = rng.integers(0, 2, 300)
    X_train = centers[labels_train] + rng.normal(size=(300, 2))
    labels = rng.integers(0, 2, 200)
    X_test = centers[labels] + rng.normal(size=(200, 2))
    y = np.where(labels == 1, rng.random(200) < 0.5, rng.random(200) < 0.1).astype(int)
    out = metrics.segmentation(X_train, X_test, labels, centers, y, reference_labels_test=1 - labels,
                               silhouette_sample=150, seed=0)
    assert out["inertia"] == pytest.approx(((X_train - centers[labels_train]) ** 2).sum())
    assert out["sizes"] == np.bincount(labels, minlength=2).tolist()
    assert out["conversion_rates"][1] == pytest.approx(y[labels == 1].mean())
    assert out["lift"][1] == pytest.approx(y[labels == 1].mean() / y.mean())
    assert out["ari_vs_plaintext"] == pytest.approx(1.0)  # same partition, other label names
    assert 0.7 < out["silhouette"] <= 1.0


def test_empty_segment_has_no_rate():
    X = np.zeros((10, 1))
    out = metrics.segmentation(X, X, np.zeros(10, int), np.array([[0.0], [5.0]]), np.ones(10, int))
    assert out["sizes"] == [10, 0] and out["conversion_rates"][1] is None and out["silhouette"] is None
