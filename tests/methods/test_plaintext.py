"""The plaintext reference: reusable seeding, sklearn-equivalent fit, the Method contract."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.cluster import KMeans, kmeans_plusplus
from sklearn.linear_model import LogisticRegression

from methods import ConfigError, build
from methods.base import Method, with_segments
from methods.plaintext import PlaintextMethod, reference_init, reference_kmeans


def test_reference_init_is_sklearn_kmeans_plusplus(small_split):
    X = small_split.train.X_segment
    expected, _ = kmeans_plusplus(X, 4, random_state=7)
    np.testing.assert_array_equal(reference_init(X, 4, 7), expected)
    assert not np.array_equal(reference_init(X, 4, 8), expected)


def test_fit_equals_sklearn_pipeline(small_split):
    tr, te = small_split.train, small_split.test
    method = PlaintextMethod(n_clusters=3, random_state=2).fit(tr.X, tr.y, tr.X_segment)
    assert isinstance(method, Method)
    km = KMeans(3, init=reference_init(tr.X_segment, 3, 2), n_init=1).fit(tr.X_segment)
    np.testing.assert_allclose(method.cluster_centers_, km.cluster_centers_)
    lr = LogisticRegression(max_iter=1000).fit(with_segments(tr.X, km.labels_, 3), tr.y)
    expected = lr.predict_proba(with_segments(te.X, km.predict(te.X_segment), 3))[:, 1]
    np.testing.assert_allclose(method.predict_proba(te.X, te.X_segment)[:, 1], expected, rtol=1e-6)
    np.testing.assert_array_equal(method.segment(te.X_segment), km.predict(te.X_segment))
    assert set(method.costs_.phases) == {"segmentation", "prediction"}
    assert method.costs_.bytes_total == 0 and method.costs_.rounds == 0
    assert method.privacy_.epsilon is None and "owner" in method.privacy_.revealed


def test_explicit_initial_centers_are_used(small_split):
    X = small_split.train.X_segment
    init = X[:4].copy()
    method = PlaintextMethod(n_clusters=4, init=init, max_iter=1).fit(small_split.train.X, small_split.train.y, X)
    ref = reference_kmeans(X, 4, 0, init=init, max_iter=1)
    np.testing.assert_allclose(method.cluster_centers_, ref.cluster_centers_)


def test_build_refuses_unknown_parameters():
    with pytest.raises(ConfigError, match=r"method\.colour is not a parameter of method=plaintext"):
        build({"name": "plaintext", "colour": "blue"}, n_clusters=4, random_state=0)
    with pytest.raises(ConfigError, match=r"method='nope' is unknown"):
        build({"name": "nope"}, n_clusters=4, random_state=0)


@pytest.mark.parametrize(
    "args, message",
    [
        (dict(n_clusters=0), r"n_clusters=0; expected an integer >= 1"),
        (dict(n_clusters=21), r"n_samples=20 should be >= n_clusters=21"),
        (dict(y=np.full(20, 2)), r"PlaintextMethod needs y with exactly 2 classes; got 1 class"),
        (dict(y=np.linspace(0, 1, 20)), r"Unknown label type"),
        (dict(X=np.full((20, 3), np.nan)), r"Input X contains NaN"),
        (dict(X_segment=np.full((20, 2), np.inf)), r"Input X_segment contains infinity"),
        (dict(X_segment=np.zeros((19, 2))), r"X_segment has 19 rows; expected one per row of X \(20\)"),
    ],
)
def test_fit_refuses_bad_input(args, message):
    rng = np.random.default_rng(0)
    inputs = dict(X=rng.normal(size=(20, 3)), y=np.arange(20) % 2, X_segment=rng.normal(size=(20, 2)))
    k = args.pop("n_clusters", 2)
    inputs.update(args)
    with pytest.raises(ValueError, match=message):
        PlaintextMethod(n_clusters=k).fit(**inputs)
