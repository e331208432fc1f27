"""Scores of a fitted method on the test split: classification and segmentation quality.

Definitions (all on ``split.test`` unless noted; :data:`DEFINITIONS`, which the report prints):
"""

from __future__ import annotations

import math
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
    ("calinski_harabasz, davies_bouldin", "scikit-learn's Calinski–Harabasz index (higher = better "
     "separated) and Davies–Bouldin index (lower = better) on the silhouette's sample of test rows: the "
     "same rows for every method of a split (row indices drawn from the split seed), each in its "
     "method's own segment-feature space."),
    ("sizes, conversion_rates, lift", "per segment on the test split; lift = segment rate / overall rate."),
    ("lift_spread", "max / min segment conversion rate over the non-empty test segments (how far apart "
     "the segments' subscription rates are); null when a segment has no subscriber."),
    ("lift_top5, lift_top10, lift_top20", "campaign lift: the subscription rate among the top x % of "
     "test customers by predicted probability (the first ceil(x·n) after a stable sort, highest first) "
     "divided by the overall rate; 1 = no better than calling at random."),
    ("capture_top5, capture_top10, capture_top20", "share of all test subscribers found in that top x %."),
    ("profit_top5, profit_top10, profit_top20", "expected profit of calling that top x %: value per "
     "subscription × subscribers reached − cost per call × calls, per 1,000 customers of the base "
     "(``targeting.value_per_subscription``, ``targeting.cost_per_call``; illustrative defaults, see "
     "conf/config.yaml); profit_best and profit_best_share: the best profit over the gains curve's "
     "points and the share called there."),
    ("gains", "cumulative gains curve: share of all subscribers reached (captured) vs share of customers "
     "called (contacted), at ``targeting.gains_points`` evenly spaced shares from 0 to 1."),
    ("he_gap", "HE runs (encrypted predictor): the twins of the encrypted predictor trained by the "
     "harness on the same training rows, scored on the test split: sklearn_plain (scikit-learn "
     "logistic regression on the plaintext reference's segments, the plaintext method's model), "
     "sklearn_weighted (the same with the encrypted predictor's class weights), gd_plain (the encrypted "
     "predictor's own descent in numpy: degree-3 sigmoid, fixed Nesterov schedule, standardising and "
     "clipping, on the plaintext segments) and gd_he (the same on the HE segments); AUC of each."),
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


def _top_count(n: int, share: float) -> int:
    return min(n, max(1, math.ceil(share * n - 1e-9)))


def targeting(y: np.ndarray, proba: np.ndarray, shares=(0.05, 0.10, 0.20), cost_per_call: float = 5.0,
              value_per_subscription: float = 50.0, gains_points: int = 51) -> dict:
    """Campaign metrics of a score: who is called first. ``shares`` are fractions of the customers
    (0.1 = top 10 %), named ``lift_top10`` etc. by their percentage. Ties in ``proba`` keep row order
    (a stable sort), so the result is a function of the inputs alone."""
    y = np.asarray(y).astype(int)
    proba = np.asarray(proba, dtype=float)
    if proba.shape != y.shape or not np.isfinite(proba).all():
        raise ValueError(f"predicted probabilities must be finite with shape {y.shape}; got {proba.shape}")
    n, positives = len(y), int(y.sum())
    if n == 0 or positives == 0:
        raise ValueError("targeting metrics need at least one customer and one subscriber")
    order = np.argsort(-proba, kind="stable")
    hits = np.concatenate([[0], np.cumsum(y[order])])  # hits[m]: subscribers among the first m called
    base = positives / n
    per = 1000.0 / n

    def profit(m: int) -> float:
        return float((value_per_subscription * hits[m] - cost_per_call * m) * per)

    out: dict = {}
    for share in shares:
        if not 0 < share <= 1:
            raise ValueError(f"targeting share {share!r}; expected a fraction in (0, 1]")
        m = _top_count(n, share)
        name = f"{100 * share:g}".replace(".", "_")
        out[f"lift_top{name}"] = float(hits[m] / m / base)
        out[f"capture_top{name}"] = float(hits[m] / positives)
        out[f"profit_top{name}"] = profit(m)
    if gains_points < 2:
        raise ValueError(f"targeting.gains_points={gains_points!r}; expected an integer >= 2")
    grid = np.linspace(0.0, 1.0, int(gains_points))
    counts = np.array([0 if g == 0 else _top_count(n, g) for g in grid])
    profits = [profit(int(m)) for m in counts]
    best = int(np.argmax(profits))
    out["profit_best"] = profits[best]
    out["profit_best_share"] = float(grid[best])
    out["gains"] = {"contacted": [round(float(g), 6) for g in grid],
                    "captured": [round(float(hits[m] / positives), 6) for m in counts]}
    out["targeting"] = {"cost_per_call": float(cost_per_call),
                        "value_per_subscription": float(value_per_subscription), "per_customers": 1000}
    return out


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
        "calinski_harabasz": None,
        "davies_bouldin": None,
        "lift_spread": lift_spread(rates),
    }
    if len(np.unique(labels_test)) > 1:
        n = min(silhouette_sample, len(X_test))
        idx = np.random.default_rng(seed).choice(len(X_test), size=n, replace=False)
        if len(np.unique(labels_test[idx])) > 1:
            out.update(cluster_criteria(X_test[idx], labels_test[idx]))
    if reference_labels_test is not None:
        out["ari_vs_plaintext"] = float(skm.adjusted_rand_score(reference_labels_test, labels_test))
    return out


def cluster_criteria(X: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Silhouette, Calinski–Harabasz and Davies–Bouldin of one labelling (at least two labels)."""
    return {"silhouette": float(skm.silhouette_score(X, labels)),
            "calinski_harabasz": float(skm.calinski_harabasz_score(X, labels)),
            "davies_bouldin": float(skm.davies_bouldin_score(X, labels))}


def lift_spread(rates) -> float | None:
    """max / min conversion rate over the non-empty segments (None if the lowest is 0 or < 2 segments)."""
    seen = [r for r in rates if r is not None]
    if len(seen) < 2 or min(seen) <= 0:
        return None
    return float(max(seen) / min(seen))


def he_gap(train, test, he_labels: tuple[np.ndarray, np.ndarray], plain_labels: tuple[np.ndarray, np.ndarray],
           n_clusters: int, *, segments: bool = True, C: float = 1.0, max_iter: int = 1000,
           class_weight="balanced", n_iter: int = 10, learning_rate: float = 2.0, l2: float = 1e-3,
           interval: float = 16.0, clip: float | None = 4.0) -> dict[str, float]:
    """Test AUCs of the encrypted predictor's plaintext twins, one change at a time (see
    :data:`DEFINITIONS`, ``he_gap``): ``train``/``test`` have ``X``, ``y``; ``*_labels`` are (train,
    test) segment labels; the keyword arguments are the HE method's ``C``, ``lr_max_iter`` (scikit-learn
    twins) and ``lr_*`` parameters (descent twins). With ``segments=False`` no twin sees segments."""
    from sklearn.linear_model import LogisticRegression

    from methods.he.logreg import reference_gd
    from methods.he.logreg_math import class_weights

    def onehot(X, labels):
        return np.hstack([X, np.eye(n_clusters)[labels]]) if segments else X

    def sklearn_auc(weight) -> float:
        model = LogisticRegression(C=C, class_weight=weight, max_iter=max_iter)
        model.fit(onehot(train.X, plain_labels[0]), train.y)
        return float(skm.roc_auc_score(test.y, model.predict_proba(onehot(test.X, plain_labels[1]))[:, 1]))

    mean = train.X.mean(axis=0)
    sd = train.X.std(axis=0)
    scale = np.where(sd > 0, sd, 1.0)

    def standardise(X):
        Z = (X - mean) / scale
        return Z if clip is None else np.clip(Z, -clip, clip)

    y = np.asarray(train.y).astype(np.int64)
    w_neg, w_pos = class_weights(class_weight, int((y == 0).sum()), int((y == 1).sum()))

    def gd_auc(labels) -> float:
        A = np.hstack([onehot(standardise(train.X), labels[0]), np.ones((len(y), 1))])
        w, _ = reference_gd(A, y, n_iter=n_iter, learning_rate=learning_rate, l2=l2, interval=interval,
                            w_neg=w_neg, w_pos=w_pos)
        B = np.hstack([onehot(standardise(test.X), labels[1]), np.ones((len(test.y), 1))])
        return float(skm.roc_auc_score(test.y, B @ w))

    return {"sklearn_plain": sklearn_auc(None), "sklearn_weighted": sklearn_auc(class_weight),
            "gd_plain": gd_auc(plain_labels), "gd_he": gd_auc(he_labels)}
