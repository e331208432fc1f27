"""Plaintext reference: scikit-learn K-means (k-means++) and logistic regression, all in the clear.

Every other method's ``ari_vs_plaintext`` and AUC gap is measured against this one, so its seeding
is exposed on its own (:func:`methods.kmeans_core.reference_init`, importable from here too): the
same split, ``k`` and seed give the same initial centers to any method that wants an exact comparison.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.linear_model import LogisticRegression

from methods._estimator import MethodMixin
from methods.base import Costs, Privacy, with_segments
from methods.kmeans_core import reference_init, reference_kmeans

__all__ = ["PlaintextMethod", "reference_init", "reference_kmeans"]


class PlaintextMethod(MethodMixin, BaseEstimator):
    """scikit-learn KMeans on the segment features, then logistic regression on all features plus
    the segment one-hot. A binary scikit-learn classifier (:class:`methods._estimator.MethodMixin`).

    Parameters
    ----------
    n_clusters : int
        Number of segments.
    random_state : int
        Seed of the k-means++ seeding.
    init : "k-means++" or array of shape (n_clusters, n_segment_features)
        Initial centers; ``"k-means++"`` uses :func:`reference_init`.
    max_iter, tol : Lloyd iteration limits (scikit-learn's meaning).
    C : float
        Inverse L2 strength of the logistic regression.
    class_weight : None or "balanced"
    segments_in_predictor : bool
        False: the logistic regression sees the model features only, without the segment one-hot.
    """

    name: ClassVar[str] = "plaintext"
    dataset_overrides: ClassVar[dict] = {}
    fit_inputs: ClassVar[tuple[str, ...]] = ()

    def __init__(self, n_clusters=4, random_state=0, init="k-means++", max_iter=300, tol=1e-4,
                 C=1.0, class_weight=None, lr_max_iter=1000, segments_in_predictor=True):
        self.n_clusters = n_clusters
        self.random_state = random_state
        self.init = init
        self.max_iter = max_iter
        self.tol = tol
        self.C = C
        self.class_weight = class_weight
        self.lr_max_iter = lr_max_iter
        self.segments_in_predictor = segments_in_predictor

    def fit(self, X, y, X_segment=None):
        X, y, X_segment = self._fit_arrays(X, y, X_segment)
        self.costs_ = Costs()
        init = None if isinstance(self.init, str) and self.init == "k-means++" else self.init
        with self.costs_.phase("segmentation", party="owner"):
            self.kmeans_ = reference_kmeans(X_segment, self.n_clusters, self.random_state, init=init,
                                            max_iter=self.max_iter, tol=self.tol)
        self.cluster_centers_ = self.kmeans_.cluster_centers_
        self.labels_ = self.kmeans_.labels_
        self.n_iter_ = int(self.kmeans_.n_iter_)
        with self.costs_.phase("prediction", party="owner"):
            self.model_ = LogisticRegression(C=self.C, class_weight=self.class_weight,
                                             max_iter=self.lr_max_iter)
            self.model_.fit(with_segments(X, self.labels_, self.n_clusters, self.segments_in_predictor), y)
        self.privacy_ = Privacy(
            threat_model="none: one trusted party holds all data in the clear",
            revealed={"owner": "all records, labels, centroids and model in the clear"},
        )
        return self

    def segment(self, X_segment):
        return self.kmeans_.predict(np.asarray(X_segment, dtype=float))

    def _proba(self, X, X_segment):
        Z = with_segments(np.asarray(X, dtype=float), self.segment(X_segment), self.n_clusters,
                          self.segments_in_predictor)
        return self.model_.predict_proba(Z)[:, 1]
