"""Differential privacy: an ε-DP segmentation (DPLloyd K-means) and an ε-DP subscription model
(objective-perturbation logistic regression), built on diffprivlib's mechanisms, model and accountant.

Unit of privacy: one customer's record (its features and label). Neighbouring training sets differ in
one record (replace-one, bounded DP; the number of rows ``n`` is public). Every bound the mechanisms
rely on is public: the dataset config states a domain for every numeric column, the runner's
``dataset_overrides`` map every column to [0, 1] through those bounds and clip to them, and each
estimator clips again to the bounds it is given. Nothing is fitted to the data before the noise.

Budget: ``epsilon`` is the total for the run, composed sequentially (pure ε, δ = 0):
``epsilon_split`` of it to the segmentation, ``prior_share`` to a noisy count of positives (the class
prior used for the decision threshold), the rest to the logistic regression. One diffprivlib
``BudgetAccountant`` per run records every spend; its total is the ε in the record.

Why not ``diffprivlib.models.KMeans``: its ``_split_epsilon`` returns (sum share, count share) and
``_update_centers`` unpacks them as (count, sum), so counts get the per-dimension sum share and every
dimension's sum gets the count share. The budget it really spends per iteration is then
``(1 + d * c) / (d + c)`` times the one requested (``c = cbrt(4 d rho^2)``), and the split is the
opposite of Su et al.'s. :class:`DPKMeans` is DPLloyd with Su et al.'s split done right, on
diffprivlib's Laplace mechanism (see docs/dp.md).
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import ClassVar

import numpy as np
from diffprivlib.accountant import BudgetAccountant
from scipy.special import expit
from sklearn.base import BaseEstimator
from sklearn.cluster import KMeans as _SkKMeans
from sklearn.utils.validation import validate_data

from methods import ConfigError
from methods._dp_mechanisms import (
    HISTOGRAM_SENSITIVITY,
    MAX_INIT_CELLS,
    SU_RHO,
    DPLogisticRegression,
    check_bounds,
    check_epsilon,
    check_method_options,
    jacobian_epsilon,
    laplace_noise,
    lloyd_iterations,
    lr_C_for,
    su_split,
)
from methods._estimator import KMeansMixin, MethodMixin, check_n_clusters
from methods.base import Costs, Privacy, with_segments
from methods.kmeans_core import cluster_sums, m_step, nearest_center

# -- K-means -------------------------------------------------------------------------------------

def noisy_cluster_stats(X, labels, n_clusters, eps_count, eps_sum, count_sensitivity, sum_sensitivity,
                        rng) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One DPLloyd release: Laplace-noised count and per-dimension sum of every cluster.

    ``X`` must already lie in a box centred on 0 whose width in dimension j is ``sum_sensitivity[j]``.
    Returns ``(counts, sums, noisy_counts, noisy_sums)``; only the noisy ones may leave the data owner.
    """
    sums, counts = cluster_sums(X, labels, n_clusters)
    counts = counts.astype(float)
    if math.isinf(eps_count):
        return counts, sums, counts.copy(), sums.copy()
    noisy_counts = laplace_noise(counts, eps_count, count_sensitivity, rng)
    noisy_sums = np.column_stack([laplace_noise(sums[:, j], eps_sum, float(s), rng)
                                  for j, s in enumerate(sum_sensitivity)])
    return counts, sums, noisy_counts, noisy_sums


def noisy_histogram(counts: np.ndarray, epsilon: float, rng) -> np.ndarray:
    """Laplace-noised cell counts (every cell, empty or not) of the histogram seeding."""
    counts = np.asarray(counts, dtype=float)
    if math.isinf(epsilon):
        return counts.copy()
    return laplace_noise(counts, epsilon, HISTOGRAM_SENSITIVITY, rng)


class DPKMeans(KMeansMixin, BaseEstimator):
    """DPLloyd (Su et al. 2016): Lloyd iterations whose cluster counts and sums are released with
    Laplace noise, the budget split between them as Su et al. prescribe.

    A scikit-learn cluster estimator and transformer, like :class:`sklearn.cluster.KMeans`. Only
    ``cluster_centers_`` is the ε-DP release; ``labels_`` and ``inertia_`` are the owner's view
    of its own training rows (clipped to ``bounds``), and ``predict``/``transform``/``score``
    clip new rows to ``bounds`` too.

    Neighbouring data sets differ in one row (replace-one). One row moved from cluster a to b changes
    the count vector by 2 in L1 and, with the data centred in its box, each dimension's vector of sums by
    at most the box width -- the sensitivities used here. The seeding spends ``init_share * epsilon``
    (histogram init) and each Lloyd iteration an equal part of the rest.

    Parameters
    ----------
    n_clusters : int
    epsilon : float in (0, inf]
        Total budget of the fit (``inf``: no noise, plain Lloyd from the same public initialisation).
    bounds : (lower, upper)
        Public bounds of the features, scalars or one per feature. Required; rows are clipped to them.
    n_iter : int or "auto"
        Lloyd iterations; "auto" is Su et al.'s heuristic (:func:`su_iterations`) on the Lloyd budget.
    init : "histogram" or "random"
        "histogram": ``init_share`` of ``epsilon`` buys a noisy grid histogram (``init_bins`` per
        dimension, fewer if the grid would exceed 100,000 cells) whose dense cells seed the centres;
        "random": a data-independent draw in the box (Su et al.'s and diffprivlib's start; no budget).
    rho : float
        Su et al.'s normalisation constant for the count/sum split.
    random_state : int, numpy RandomState or None
        Seeds the initial centres and the noise (None: diffprivlib's cryptographic ``SystemRandom``).
    accountant : diffprivlib BudgetAccountant, optional
        Charged ``epsilon`` once the fit is done (refused before any work if it cannot pay).

    Attributes
    ----------
    cluster_centers_, labels_, inertia_, n_iter_, n_features_in_, epsilon_init_, epsilon_count_,
    epsilon_sum_, count_sensitivity_, sum_sensitivity_.
    """

    def __init__(self, n_clusters=4, *, epsilon=1.0, bounds=None, n_iter="auto", init="histogram",
                 init_share=0.3, init_bins=6, rho=SU_RHO, random_state=None, accountant=None):
        self.n_clusters = n_clusters
        self.init = init
        self.init_share = init_share
        self.init_bins = init_bins
        self.epsilon = epsilon
        self.bounds = bounds
        self.n_iter = n_iter
        self.rho = rho
        self.random_state = random_state
        self.accountant = accountant

    def _random_init(self, n_dims: int, rng) -> np.ndarray:
        """Data-independent start: points drawn uniformly in the central half of the (centred) box,
        kept only if at least a quarter box-diagonal apart from the others (relaxed if it must)."""
        half = self.width_ / 2
        gap = 0.25 * float(np.sqrt((self.width_**2).sum()))
        while True:
            centers = []
            for _ in range(100 * self.n_clusters):
                c = (rng.uniform(size=n_dims) - 0.5) * half
                if all(np.linalg.norm(c - o) >= gap for o in centers):
                    centers.append(c)
                    if len(centers) == self.n_clusters:
                        return np.array(centers)
            gap /= 2

    def _histogram_init(self, Z: np.ndarray, epsilon: float, rng) -> np.ndarray:
        """DP start: a Laplace-noised grid histogram of the rows (every cell noised, empty or not),
        then weighted k-means++ / Lloyd on the centres of the cells that clear a public threshold --
        post-processing of the noisy histogram only."""
        n_dims = Z.shape[1]
        bins = max(2, min(self.init_bins, int(MAX_INIT_CELLS ** (1 / n_dims))))
        width = self.width_ / bins
        cell = np.clip(np.floor((Z + self.width_ / 2) / width), 0, bins - 1).astype(np.int64)
        counts = np.bincount(np.ravel_multi_index(cell.T, (bins,) * n_dims), minlength=bins**n_dims)
        counts = counts.astype(float)
        counts = noisy_histogram(counts, epsilon, rng)
        # an empty cell clears the threshold with probability 1 / (2 * cells): about half a spurious cell
        threshold = 0.0 if math.isinf(epsilon) else HISTOGRAM_SENSITIVITY / epsilon * math.log(len(counts))
        keep = np.flatnonzero(counts > threshold)
        if len(keep) < self.n_clusters:
            keep = np.argsort(counts)[-self.n_clusters:]
        idx = np.array(np.unravel_index(keep, (bins,) * n_dims)).T
        centres = (idx + 0.5) * width - self.width_ / 2
        weights = np.maximum(counts[keep], 1e-9)
        seed = int(rng.randint(2**31 - 1)) if hasattr(rng, "randint") else None
        km = _SkKMeans(self.n_clusters, n_init=10, random_state=seed).fit(centres, sample_weight=weights)
        return km.cluster_centers_

    def fit(self, X, y=None):
        epsilon = check_epsilon(self.epsilon)
        X = validate_data(self, X, dtype=np.float64)
        check_n_clusters(self.n_clusters, len(X))
        n, d = X.shape
        lower, upper = check_bounds(self.bounds, d)
        if self.init not in ("histogram", "random"):
            raise ValueError(f"init={self.init!r}; expected 'histogram' or 'random'")
        share = self.init_share if self.init == "histogram" else 0.0
        if not 0 <= share < 1 or (self.init == "histogram" and share == 0):
            raise ValueError(f"init_share={self.init_share!r}; expected a fraction in (0, 1)")
        if self.init == "histogram" and not (isinstance(self.init_bins, Integral) and self.init_bins >= 2):
            raise ValueError(f"init_bins={self.init_bins!r}; expected an integer >= 2")
        self.epsilon_init_ = epsilon * share
        lloyd_eps = epsilon if math.isinf(epsilon) else epsilon - self.epsilon_init_
        n_iter = lloyd_iterations(self.n_iter, lloyd_eps, self.n_clusters, n, d, self.rho)
        accountant = BudgetAccountant.load_default(self.accountant)
        accountant.check(epsilon, 0)
        rng = np.random.RandomState(self.random_state) if isinstance(self.random_state, Integral) \
            else self.random_state

        self.mid_, self.width_ = (lower + upper) / 2, upper - lower
        Z = np.clip(X, lower, upper) - self.mid_
        init_rng = rng if rng is not None else np.random.RandomState()
        if self.init == "histogram":
            centers = self._histogram_init(Z, self.epsilon_init_, rng)
        else:
            centers = self._random_init(d, init_rng)
        self.epsilon_count_, self.epsilon_sum_ = su_split(lloyd_eps / n_iter, d, self.rho)
        # replace-one: a row leaving cluster a for cluster b moves two counts by 1, and a sum
        # coordinate by |x_j| + |x'_j| <= width_j (the box is centred)
        self.count_sensitivity_, self.sum_sensitivity_ = 2.0, self.width_.copy()
        for _ in range(n_iter):
            labels = nearest_center(Z, centers)
            _, _, noisy_counts, noisy_sums = noisy_cluster_stats(
                Z, labels, self.n_clusters, self.epsilon_count_, self.epsilon_sum_,
                self.count_sensitivity_, self.sum_sensitivity_, rng)
            # post-processing of the released noisy statistics only: a cluster whose noisy count is
            # below one row keeps its centre; centres stay inside the public box
            centers = np.clip(m_step(centers, noisy_sums, noisy_counts, min_count=1.0),
                              -self.width_ / 2, self.width_ / 2)
        accountant.spend(epsilon, 0)
        self.n_iter_ = n_iter
        self.cluster_centers_ = centers + self.mid_
        X = np.clip(X, lower, upper)
        self.labels_ = nearest_center(X, self.cluster_centers_)
        self.inertia_ = float(((X - self.cluster_centers_[self.labels_]) ** 2).sum())
        return self

    def _predict_rows(self, X):
        X = super()._predict_rows(X)
        return np.clip(X, self.mid_ - self.width_ / 2, self.mid_ + self.width_ / 2)

    def spent_epsilon(self) -> float:
        """The budget the fit's mechanisms spent, from their parameters (equals ``epsilon``)."""
        d = len(self.width_)
        return self.epsilon_init_ + self.n_iter_ * (self.epsilon_count_ + d * self.epsilon_sum_)


# -- the method ----------------------------------------------------------------------------------

class DPMethod(MethodMixin, BaseEstimator):
    """ε-DP segmentation and subscription model, under one budget. A binary scikit-learn
    classifier (:class:`methods._estimator.MethodMixin`).

    Parameters
    ----------
    n_clusters : int
    random_state : int or None
        Seeds the initial centres and all noise, one independent stream per released object
        (reproducible runs); None: diffprivlib's ``SystemRandom`` (see docs/dp.md on secure noise).
    epsilon : float in (0, inf]
        Total budget of the run (``inf`` on the CLI: ``method.epsilon=inf``).
    epsilon_split : float in [0, 1)
        Share of ``epsilon`` spent on the segmentation (0: no DP K-means; every row gets segment 0).
    prior_share : float in [0, 1)
        Share of ``epsilon`` spent on a noisy count of positives (the class prior); used only when
        ``class_prior`` is "dp".
    class_prior : "dp", float in (0, 1) or None
        How ``predict_proba`` copes with class imbalance (diffprivlib's LR has no class weights): it
        returns P(y=1) under a balanced prior, logit - logit(prior), so threshold 0.5 on it is the
        threshold ``prior`` on the model's own probability. "dp": the prior is a Laplace count of
        positives; a float: a stated public prior; None: the model's probabilities unchanged.
    feature_bounds : (lower, upper)
        Public bounds of every column of X and X_segment; [0, 1] is guaranteed by the dataset
        overrides (public scaling and clipping). Required.
    categorical : mapping name -> categories, or None
        The one-hot blocks of X (the dataset config's ``categorical``); each adds exactly 1 to a row's
        squared norm, which gives the LR's public row-norm bound. None: every column counts as 1.
    kmeans_iter : int or "auto"
    kmeans_init, kmeans_init_share, kmeans_init_bins : :class:`DPKMeans`'s ``init``, ``init_share``
        and ``init_bins`` (the seeding and its share of the segmentation budget).
    lr_C : float or "auto"
        "auto": :func:`lr_C_for` (the Jacobian term takes ``lr_jacobian_share`` of the LR budget),
        capped at ``lr_C_max``.
    lr_jacobian_share, lr_C_max : see ``lr_C``.
    segments_in_predictor : bool
        False: the logistic regression sees the model features only (the segmentation is still
        fitted and released, from the same budget share).
    log_heavy_tailed : bool
        Ask the loader for the public log1p map of the heavy-tailed columns (dataset override).
    """

    name: ClassVar[str] = "dp"
    fit_inputs: ClassVar[tuple[str, ...]] = ()

    def __init__(self, n_clusters=4, random_state=0, epsilon=1.0, epsilon_split=0.3, prior_share=0.02,
                 class_prior="dp", feature_bounds=(0.0, 1.0), categorical=None, kmeans_iter="auto",
                 kmeans_init="histogram", kmeans_init_share=0.3, kmeans_init_bins=6, lr_C="auto",
                 lr_jacobian_share=0.1, lr_C_max=1.0, lr_max_iter=1000, log_heavy_tailed=True,
                 segments_in_predictor=True):
        self.n_clusters = n_clusters
        self.random_state = random_state
        self.epsilon = epsilon
        self.epsilon_split = epsilon_split
        self.prior_share = prior_share
        self.class_prior = class_prior
        self.feature_bounds = feature_bounds
        self.categorical = categorical
        self.kmeans_iter = kmeans_iter
        self.kmeans_init = kmeans_init
        self.kmeans_init_share = kmeans_init_share
        self.kmeans_init_bins = kmeans_init_bins
        self.lr_C = lr_C
        self.lr_jacobian_share = lr_jacobian_share
        self.lr_C_max = lr_C_max
        self.lr_max_iter = lr_max_iter
        self.log_heavy_tailed = log_heavy_tailed
        self.segments_in_predictor = segments_in_predictor

    @property
    def dataset_overrides(self) -> dict:
        # every column in [0, 1] from the public bounds, by construction: nothing read from the data
        return {"scaling": "public", "clip": True, "log_heavy_tailed": bool(self.log_heavy_tailed)}

    # -- budget --------------------------------------------------------------------------------
    def budget(self) -> dict[str, float]:
        """The split of ``epsilon`` into segmentation, prior and prediction budgets."""
        eps = check_epsilon(self.epsilon)
        for name in ("epsilon_split", "prior_share"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, Real) or not 0 <= v < 1:
                raise ValueError(f"{name}={v!r}; expected a fraction in [0, 1)")
        prior_share = self.prior_share if self.class_prior == "dp" else 0.0
        if self.epsilon_split + prior_share >= 1:
            raise ValueError(f"epsilon_split + prior_share = {self.epsilon_split + prior_share}; "
                             "expected < 1 (the logistic regression needs a share)")
        if math.isinf(eps):
            return {"segmentation": eps if self.epsilon_split > 0 else 0.0,
                    "prior": eps if prior_share > 0 else 0.0, "prediction": eps}
        seg, prior = eps * self.epsilon_split, eps * prior_share
        pred = eps - seg - prior
        while seg + prior + pred > eps:  # floating-point: never let the parts exceed the whole
            pred = np.nextafter(pred, 0.0)
        return {"segmentation": seg, "prior": prior, "prediction": pred}

    def check_params(self) -> None:
        """The parameter checks that need no data (run by the config layer before any run dir); a bad
        value is a :class:`~methods.ConfigError` naming ``method.<parameter>``."""
        try:
            check_method_options(self)
            self.budget()
            check_bounds(self.feature_bounds, 1, "feature_bounds")
        except ValueError as exc:
            raise ConfigError(f"method.{exc}") from exc

    def row_norm_bound(self, n_features: int) -> float:
        """Public bound on the L2 norm of a row of X plus its segment one-hot: every column in
        [lower, upper], except that each one-hot block contributes exactly 1."""
        lower, upper = check_bounds(self.feature_bounds, 1, "feature_bounds")
        per_col = float(max(abs(lower[0]), abs(upper[0]))) ** 2
        cats = dict(self.categorical or {})
        onehot_cols = sum(len(v) for v in cats.values())
        if onehot_cols > n_features:
            raise ValueError(f"categorical has {onehot_cols} one-hot columns but X has {n_features}")
        segment = 1.0 if self.epsilon_split > 0 and self.segments_in_predictor else 0.0
        return math.sqrt((n_features - onehot_cols) * per_col + len(cats) + segment)

    # -- fit -----------------------------------------------------------------------------------
    def fit(self, X, y, X_segment=None):
        X, y, X_segment = self._fit_arrays(X, y, X_segment)
        check_method_options(self)
        budget = self.budget()
        total = check_epsilon(self.epsilon)
        lower, upper = check_bounds(self.feature_bounds, 1, "feature_bounds")
        self.accountant_ = BudgetAccountant(epsilon=total, delta=0.0)
        # one independent stream per released object: changing how one part is fitted leaves the
        # noise of the others as it was (common random numbers across settings)
        rng_seg, rng_prior, rng_lr = self._streams(3)
        self.costs_ = Costs()

        with self.costs_.phase("segmentation", party="owner"):
            if budget["segmentation"] > 0:
                self.kmeans_ = DPKMeans(self.n_clusters, epsilon=budget["segmentation"],
                                        bounds=(lower[0], upper[0]), n_iter=self.kmeans_iter,
                                        init=self.kmeans_init, init_share=self.kmeans_init_share,
                                        init_bins=self.kmeans_init_bins, random_state=rng_seg,
                                        accountant=self.accountant_).fit(X_segment)
                self.cluster_centers_ = self.kmeans_.cluster_centers_
                self.labels_ = self.kmeans_.labels_
            else:
                self.kmeans_ = None
                self.cluster_centers_ = np.full((self.n_clusters, X_segment.shape[1]), np.nan)
                self.labels_ = np.zeros(len(y), dtype=np.int64)

        with self.costs_.phase("prior", party="owner"):
            self.prior_ = self._prior(y, budget["prior"], rng_prior)

        with self.costs_.phase("prediction", party="owner"):
            C = lr_C_for(budget["prediction"], self.lr_jacobian_share, self.lr_C_max) \
                if self.lr_C == "auto" else float(self.lr_C)
            self.model_ = DPLogisticRegression(
                epsilon=budget["prediction"], data_norm=self.row_norm_bound(X.shape[1]), C=C,
                max_iter=self.lr_max_iter, random_state=rng_lr, accountant=self.accountant_,
            ).fit(self._lr_features(X, self.labels_), y)

        self.budget_ = budget
        self.privacy_ = self._privacy(budget)
        self.costs_.extra = {"kmeans_iter": self.kmeans_.n_iter_ if self.kmeans_ else 0, "lr_C": C}
        return self

    def _privacy(self, budget: dict[str, float]) -> Privacy:
        spent = self.accountant_.total()
        return Privacy(
            threat_model=("central DP: a trusted curator (the data owner) fits both models; every other "
                          "party sees only the released centroids, model and class prior"),
            epsilon=float(spent[0]),
            delta=float(spent[1]),
            revealed={
                "owner": "all records and labels in the clear",
                "public": (f"{self.n_clusters} noisy centroids ({budget['segmentation']:g}-DP DPLloyd), the "
                           f"logistic-regression coefficients ({budget['prediction']:g}-DP objective "
                           "perturbation) and the class prior"
                           + (f" ({budget['prior']:g}-DP count)" if budget["prior"] else "")),
            },
            extra={
                "adjacency": "replace-one record (bounded DP); n is public",
                "budget": budget,
                "spends": [float(e) for e, _ in self.accountant_.spent_budget],
                "mechanisms": self._mechanisms(),
            },
        )

    def _streams(self, n: int) -> list:
        if self.random_state is None:  # diffprivlib's SystemRandom for every mechanism
            return [None] * n
        if not isinstance(self.random_state, Integral):
            raise ValueError(f"random_state={self.random_state!r}; expected an integer seed or None")
        states = np.random.SeedSequence(int(self.random_state)).generate_state(n)
        return [np.random.RandomState(int(s)) for s in states]

    def _prior(self, y, epsilon, rng) -> float | None:
        if self.class_prior is None:
            return None
        if self.class_prior != "dp":
            return float(self.class_prior)
        n = len(y)
        count = float(y.sum())
        if not math.isinf(epsilon):
            # replace-one: one record changes the count of positives by at most 1
            count = float(laplace_noise(count, epsilon, 1.0, rng))
        self.accountant_.spend(epsilon, 0)
        return float(np.clip(count / n, 1.0 / n, 1.0 - 1.0 / n))

    def _mechanisms(self) -> dict:
        out = {}
        if self.kmeans_ is not None:
            k = self.kmeans_
            out["kmeans"] = {"algorithm": "DPLloyd (Su et al. 2016), Laplace", "iterations": k.n_iter_,
                             "epsilon_count_per_iter": k.epsilon_count_, "epsilon_sum_per_dim_per_iter":
                             k.epsilon_sum_, "count_sensitivity": k.count_sensitivity_,
                             "sum_sensitivity": k.sum_sensitivity_.tolist()}
        m = self.model_
        out["logistic_regression"] = {
            "algorithm": "objective perturbation (Chaudhuri et al. 2011), diffprivlib Vector",
            "C": m.C, "data_norm": m.data_norm, "epsilon_noise": m.noise_epsilon(),
            "epsilon_jacobian": jacobian_epsilon(m.C)}
        return out

    # -- use -----------------------------------------------------------------------------------
    def _lr_features(self, X, labels):
        if self.kmeans_ is None:
            return X
        return with_segments(X, labels, self.n_clusters, self.segments_in_predictor)

    def segment(self, X_segment):
        X_segment = np.asarray(X_segment, dtype=float)
        if self.kmeans_ is None:
            return np.zeros(len(X_segment), dtype=np.int64)
        return self.kmeans_.predict(X_segment)

    def _proba(self, X, X_segment):
        z = self.model_.decision_function(self._lr_features(X, self.segment(X_segment)))
        if self.prior_ is not None:
            z = z - math.log(self.prior_ / (1 - self.prior_))
        return expit(z)
