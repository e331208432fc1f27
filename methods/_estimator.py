"""scikit-learn manners shared by every estimator of the project: input checks through
scikit-learn's own helpers, binary labels, and the released-centroid side of a K-means
(``predict``, ``transform``, ``score``) that needs only ``cluster_centers_``.

Each estimator is ``BaseEstimator`` plus the mixin of its plaintext counterpart: a K-means is a
cluster estimator and a transformer (distances to the released centroids) as
:class:`sklearn.cluster.KMeans` is, a logistic regression a binary classifier, and a method (a
segmentation and a subscription predictor) a binary classifier whose ``fit`` also takes the
segment features.
"""

from __future__ import annotations

from numbers import Integral

import numpy as np
from sklearn.base import ClassifierMixin, ClassNamePrefixFeaturesOutMixin, ClusterMixin, TransformerMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from methods.kmeans_core import nearest_center, squared_distances

__all__ = ["KMeansMixin", "MethodMixin", "binary_tags", "check_n_clusters", "encode_binary", "segment_array"]


def encode_binary(estimator, y) -> np.ndarray:
    """Set ``estimator.classes_`` (the two sorted labels) and return ``y`` as 0/1 indices into it.
    0/1 labels stay 0/1; any other two labels work too (strings included)."""
    check_classification_targets(y)
    classes, encoded = np.unique(np.asarray(y), return_inverse=True)
    if len(classes) != 2:
        shown = ", ".join(repr(c) for c in classes.tolist()[:5])
        head = "Only binary classification is supported. " if len(classes) > 2 else ""
        raise ValueError(f"{head}{type(estimator).__name__} needs y with exactly 2 classes; got "
                         f"{len(classes)} class(es) [{shown}]")
    estimator.classes_ = classes
    return encoded.astype(np.int64)


def binary_tags(tags):
    """Tags of a binary-only classifier (scikit-learn's checks then give it two-class problems)."""
    tags.classifier_tags.multi_class = False
    return tags


def check_n_clusters(n_clusters, n_samples: int) -> int:
    """``n_clusters`` a positive integer, no more than the rows (as scikit-learn's KMeans; the
    harness asks for k >= 2 in its config check)."""
    if isinstance(n_clusters, bool) or not isinstance(n_clusters, Integral) or n_clusters < 1:
        raise ValueError(f"n_clusters={n_clusters!r}; expected an integer >= 1")
    if n_samples < n_clusters:
        raise ValueError(f"n_samples={n_samples} should be >= n_clusters={n_clusters} (one row per "
                         "segment at least)")
    return int(n_clusters)


def segment_array(X: np.ndarray, X_segment) -> np.ndarray:
    """The segment features of a method's ``fit``/``predict``: ``X_segment`` checked to have one
    finite row per row of ``X``, or ``X`` itself when it is None (every column is segmented)."""
    if X_segment is None:
        return X
    S = check_array(X_segment, dtype=np.float64, input_name="X_segment")
    if len(S) != len(X):
        raise ValueError(f"X_segment has {len(S)} rows; expected one per row of X ({len(X)})")
    return S


class KMeansMixin(ClassNamePrefixFeaturesOutMixin, TransformerMixin, ClusterMixin):
    """``predict``, ``transform`` and ``score`` on the released ``cluster_centers_``, in the clear
    (what the data owner does with its own rows); ``fit`` sets ``labels_``, ``cluster_centers_``,
    ``inertia_`` and ``n_features_in_``."""

    def _predict_rows(self, X) -> np.ndarray:
        """New rows as the centroids see them (hook: DP clips them to its public bounds)."""
        check_is_fitted(self)
        return validate_data(self, X, reset=False, dtype=np.float64)

    def predict(self, X) -> np.ndarray:
        """Index of the nearest released centroid for each row of ``X``."""
        return nearest_center(self._predict_rows(X), self.cluster_centers_).astype(np.int64)

    def transform(self, X) -> np.ndarray:
        """Euclidean distances of each row to every released centroid, ``(n, n_clusters)``."""
        d2 = squared_distances(self._predict_rows(X), self.cluster_centers_)
        return np.sqrt(np.maximum(d2, 0.0))

    def score(self, X, y=None) -> float:
        """Minus the K-means objective of ``X`` on the released centroids (larger is better)."""
        X = self._predict_rows(X)
        return -float(((X - self.cluster_centers_[nearest_center(X, self.cluster_centers_)]) ** 2).sum())

    def fit_predict(self, X, y=None) -> np.ndarray:
        return self.fit(X).labels_

    @property
    def _n_features_out(self) -> int:
        return int(self.cluster_centers_.shape[0])


class MethodMixin(ClassifierMixin):
    """A method as a binary scikit-learn classifier: K-means segments plus a subscription predictor.

    ``fit(X, y, X_segment=None)``: ``X`` the model features, ``X_segment`` the features K-means
    sees (default: ``X`` itself, so the method works on any array and inside scikit-learn's
    tools). ``predict_proba(X, X_segment=None)`` has one column per class of ``classes_``;
    ``predict`` thresholds P(``classes_[1]``) at 0.5; ``score`` is accuracy. A subclass
    implements ``_proba(X, X_segment)`` -> P(``classes_[1]``) on checked arrays, and
    ``segment(X_segment)``.
    """

    def __sklearn_tags__(self):
        return binary_tags(super().__sklearn_tags__())

    def _fit_arrays(self, X, y, X_segment) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Checked ``(X, y as 0/1, X_segment)``; sets ``n_features_in_`` and ``classes_``."""
        X, y = validate_data(self, X, y, dtype=np.float64)
        y = encode_binary(self, y)
        S = segment_array(X, X_segment)
        check_n_clusters(self.n_clusters, len(S))
        self.n_segment_features_in_ = S.shape[1]
        return X, y, S

    def _predict_arrays(self, X, X_segment) -> tuple[np.ndarray, np.ndarray]:
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=np.float64)
        S = segment_array(X, X_segment)
        if S.shape[1] != self.n_segment_features_in_:
            raise ValueError(f"X_segment has {S.shape[1]} features, but {type(self).__name__} is expecting "
                             f"{self.n_segment_features_in_} segment features as input")
        return X, S

    def predict_proba(self, X, X_segment=None) -> np.ndarray:
        """``(n, 2)``: P(``classes_[0]``), P(``classes_[1]``) (the subscription probability)."""
        p = np.asarray(self._proba(*self._predict_arrays(X, X_segment)), dtype=float)
        return np.column_stack([1.0 - p, p])

    def predict(self, X, X_segment=None) -> np.ndarray:
        positive = self.predict_proba(X, X_segment)[:, 1] >= 0.5
        return self.classes_[positive.astype(np.int64)]

    def score(self, X, y, sample_weight=None, X_segment=None) -> float:
        from sklearn.metrics import accuracy_score

        return float(accuracy_score(y, self.predict(X, X_segment), sample_weight=sample_weight))
