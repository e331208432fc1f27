"""``method=he``: K-means on ciphertexts, then the owner-side predictor on the decrypted segments."""

from __future__ import annotations

import time
from typing import ClassVar

import numpy as np
from sklearn.linear_model import LogisticRegression

from methods.base import Privacy, check_fit_inputs, nearest_center, with_segments
from methods.he.kmeans import HEKMeans

PREDICTORS = ("owner",)


class HEMethod:
    """HE K-means on the segment features (:class:`HEKMeans`), then (``predictor="owner"``) a
    scikit-learn logistic regression trained by the owner on all features plus the decrypted
    segment one-hot, as in :mod:`methods.plaintext`.

    Parameters are those of :class:`HEKMeans` (``init`` also accepts ``"k-means++"``: the plaintext
    reference's initial centers, for exact comparisons) plus ``predictor``, ``C``,
    ``class_weight`` and ``lr_max_iter``.
    """

    name: ClassVar[str] = "he"

    def __init__(self, n_clusters=4, random_state=0, scheme="ckks", init="kmeans++", max_iter=300,
                 tol=1e-4, permute=False, workers=1, poly_modulus_degree=None, coeff_mod_bit_sizes=None,
                 scale_bits=None, frac_bits=None, allow_insecure=False, parallel_rounds=5, oversampling=None,
                 local_trials=None, predictor="owner", C=1.0, class_weight=None, lr_max_iter=1000):
        self.n_clusters = n_clusters
        self.random_state = random_state
        self.scheme = scheme
        self.init = init
        self.max_iter = max_iter
        self.tol = tol
        self.permute = permute
        self.workers = workers
        self.poly_modulus_degree = poly_modulus_degree
        self.coeff_mod_bit_sizes = coeff_mod_bit_sizes
        self.scale_bits = scale_bits
        self.frac_bits = frac_bits
        self.allow_insecure = allow_insecure
        self.parallel_rounds = parallel_rounds
        self.oversampling = oversampling
        self.local_trials = local_trials
        self.predictor = predictor
        self.C = C
        self.class_weight = class_weight
        self.lr_max_iter = lr_max_iter

    @property
    def dataset_overrides(self) -> dict:
        # BFV needs every value inside the public bounds (its integers wrap silently)
        return {"clip": True} if self.scheme == "bfv" else {}

    def fit(self, X, y, X_segment):
        X, y, X_segment = check_fit_inputs(X, y, X_segment, self.n_clusters)
        if self.predictor not in PREDICTORS:
            raise ValueError(f"predictor={self.predictor!r}; expected one of {list(PREDICTORS)}")
        init = self.init
        if isinstance(init, str) and init == "k-means++":
            from methods.plaintext import reference_init

            init = reference_init(X_segment, self.n_clusters, self.random_state)
        self.kmeans_ = HEKMeans(
            n_clusters=self.n_clusters, init=init, scheme=self.scheme, max_iter=self.max_iter, tol=self.tol,
            permute=self.permute, workers=self.workers, random_state=self.random_state,
            poly_modulus_degree=self.poly_modulus_degree,
            coeff_mod_bit_sizes=list(self.coeff_mod_bit_sizes) if self.coeff_mod_bit_sizes else None,
            scale_bits=self.scale_bits, frac_bits=self.frac_bits, allow_insecure=self.allow_insecure,
            parallel_rounds=self.parallel_rounds, oversampling=self.oversampling,
            local_trials=self.local_trials)
        self.kmeans_.fit(X_segment)
        self.costs_ = self.kmeans_.costs_
        self.costs_.phases["segmentation"] = self.kmeans_.wall_s_
        self.cluster_centers_ = self.kmeans_.cluster_centers_
        self.labels_ = self.kmeans_.labels_
        self.n_iter_ = self.kmeans_.n_iter_
        with self.costs_.phase("prediction", party="owner"):
            self.model_ = LogisticRegression(C=self.C, class_weight=self.class_weight,
                                             max_iter=self.lr_max_iter)
            self.model_.fit(with_segments(X, self.labels_, self.n_clusters), y)
        self.privacy_ = Privacy(
            threat_model="honest-but-curious compute server (public key only) and key holder (secret key, "
                         "sees blinded values only); the key holder is the data owner by default",
            revealed=self.kmeans_.revealed(),
            extra={"he_params": self.kmeans_.params_.to_dict(), "predictor": "owner (plaintext logistic "
                   "regression on the owner's records and decrypted segments)"},
        )
        self.fitted_at_ = time.time()
        return self

    def segment(self, X_segment):
        return nearest_center(np.asarray(X_segment, dtype=float), self.cluster_centers_)

    def predict_proba(self, X, X_segment):
        Z = with_segments(np.asarray(X, dtype=float), self.segment(X_segment), self.n_clusters)
        return self.model_.predict_proba(Z)[:, 1]
