"""Membership inference on a released predictor and on released centroids.

Protocol (one for every method; see docs/attacks.md): the runner fits a method on all of
``split.train``, so the only rows it never saw are ``split.test``. Non-members are test rows
(all of them, or a stratified sample of ``max_per_side``); members are training rows drawn with
exactly the non-members' label counts, so the two sides are balanced overall and per label and an
attack cannot win by guessing the label. Everything is drawn from one seeded generator.

Attacks (every score: higher means "member"):

- loss threshold (Yeom et al. 2018): the score is log P(true label | x) under the released model.
- offline LiRA (Carlini et al. 2022, offline variant with a global variance): shadow logistic
  regressions are trained on random subsets of rows that are *not* targets (so every shadow is an
  OUT model for every target); the score is the target model's logit confidence
  φ = log p_y − log(1 − p_y) standardised by its per-target OUT mean and the pooled OUT spread.
- centroid distance: the score is minus the squared distance to the nearest released centroid.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from benchmarks.attacks._metrics import AttackScores

PROB_CLIP = 1e-12


def audit_targets(y_train: np.ndarray, y_test: np.ndarray, seed: int,
                  max_per_side: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Indices of members (into the training rows) and non-members (into the test rows).

    Non-members are the test rows (a label-stratified sample when ``max_per_side`` is smaller);
    members are training rows with the same count of each label.
    """
    rng = np.random.default_rng(seed)
    y_train, y_test = np.asarray(y_train), np.asarray(y_test)
    labels = np.unique(y_test)
    want = {c: int((y_test == c).sum()) for c in labels}
    if max_per_side is not None and max_per_side < len(y_test):
        if max_per_side < 2:
            raise ValueError(f"max_per_side={max_per_side}; expected at least 2 targets per side")
        frac = max_per_side / len(y_test)
        want = {c: max(1, int(round(n * frac))) for c, n in want.items()}
    want = {c: min(n, int((y_train == c).sum())) for c, n in want.items()}
    members, nonmembers = [], []
    for c, n in want.items():
        members.append(rng.choice(np.flatnonzero(y_train == c), n, replace=False))
        nonmembers.append(rng.choice(np.flatnonzero(y_test == c), n, replace=False))
    return np.sort(np.concatenate(members)), np.sort(np.concatenate(nonmembers))


def label_log_likelihood(proba: np.ndarray, y: np.ndarray) -> np.ndarray:
    """log P(y | x) from P(y = 1 | x): minus the cross-entropy loss."""
    p = np.clip(np.asarray(proba, dtype=float), PROB_CLIP, 1 - PROB_CLIP)
    return np.where(np.asarray(y) == 1, np.log(p), np.log1p(-p))


def logit_confidence(proba: np.ndarray, y: np.ndarray) -> np.ndarray:
    """φ = log p_y − log(1 − p_y), the (approximately Gaussian) statistic LiRA models."""
    p = np.clip(np.asarray(proba, dtype=float), PROB_CLIP, 1 - PROB_CLIP)
    z = np.log(p) - np.log1p(-p)
    return np.where(np.asarray(y) == 1, z, -z)


def loss_attack(proba_in: np.ndarray, y_in: np.ndarray, proba_out: np.ndarray,
                y_out: np.ndarray) -> AttackScores:
    """Loss-threshold attack: members are the targets the model fits better."""
    scores = np.r_[label_log_likelihood(proba_in, y_in), label_log_likelihood(proba_out, y_out)]
    return AttackScores(scores, np.r_[np.ones(len(y_in), bool), np.zeros(len(y_out), bool)])


def fit_logreg(X: np.ndarray, y: np.ndarray, C: float = 1.0, max_iter: int = 50,
               tol: float = 1e-8) -> np.ndarray:
    """L2 logistic regression by Newton's method: scikit-learn's objective
    ``C * sum(log-loss) + ||w||^2 / 2`` (intercept unpenalised). Returns ``[w..., b]``.

    A few Newton steps on ~50 features cost milliseconds, so shadow models are cheap.
    """
    Z = np.hstack([np.asarray(X, float), np.ones((len(X), 1))])
    y = np.asarray(y, float)
    pen = np.ones(Z.shape[1])
    pen[-1] = 0.0
    theta = np.zeros(Z.shape[1])

    def objective(t):
        z = Z @ t
        return C * np.sum(np.logaddexp(0.0, z) - y * z) + 0.5 * np.sum(pen * t * t)

    f = objective(theta)
    for _ in range(max_iter):
        p = expit(Z @ theta)
        grad = C * Z.T @ (p - y) + pen * theta
        H = C * (Z.T * (p * (1 - p))) @ Z + np.diag(pen) + 1e-10 * np.eye(len(theta))
        step = np.linalg.solve(H, grad)
        t = 1.0
        while True:  # backtracking keeps Newton monotone on nearly separable data
            cand = theta - t * step
            fc = objective(cand)
            if fc <= f or t < 1e-6:
                break
            t /= 2
        if fc > f:
            break
        theta, f_old, f = cand, f, fc
        if abs(f_old - f) <= tol * max(1.0, abs(f)):
            break
    return theta


def shadow_confidences(F_targets: np.ndarray, y_targets: np.ndarray, F_pool: np.ndarray,
                       y_pool: np.ndarray, n_shadows: int, size: int, C: float,
                       rng: np.random.Generator) -> np.ndarray:
    """φ of every target under ``n_shadows`` OUT shadow logistic regressions, shape (n_shadows, n).

    Each shadow trains on ``size`` rows drawn without replacement from the pool (no target is in
    the pool), on features ``F`` (the released model's features).
    """
    if size > len(F_pool):
        raise ValueError(f"shadow size {size} exceeds the shadow pool ({len(F_pool)} rows)")
    sign = np.where(np.asarray(y_targets) == 1, 1.0, -1.0)
    Zt = np.hstack([F_targets, np.ones((len(F_targets), 1))])
    out = np.empty((n_shadows, len(F_targets)))
    for s in range(n_shadows):
        idx = rng.choice(len(F_pool), size, replace=False)
        theta = fit_logreg(F_pool[idx], y_pool[idx], C=C)
        out[s] = sign * (Zt @ theta)
    return out


def lira_offline(target_phi: np.ndarray, shadow_phi: np.ndarray, fixed_variance: bool = True,
                 is_member: np.ndarray | None = None) -> np.ndarray | AttackScores:
    """Offline LiRA score: how far above its OUT distribution the target's φ lies.

    ``fixed_variance`` uses one pooled OUT standard deviation (Carlini et al. recommend it for
    few shadows); otherwise each target's own. With ``is_member`` an :class:`AttackScores`.
    """
    mu = shadow_phi.mean(axis=0)
    if fixed_variance or shadow_phi.shape[0] < 2:
        sd = np.full_like(mu, (shadow_phi - mu).std() if shadow_phi.shape[0] > 1 else 1.0)
    else:
        sd = shadow_phi.std(axis=0, ddof=1)
    sd = np.maximum(sd, 1e-6)
    score = (np.asarray(target_phi, float) - mu) / sd
    return score if is_member is None else AttackScores(score, is_member)


def centroid_scores(X_segment: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Minus the squared distance of each row to its nearest centroid."""
    X = np.asarray(X_segment, float)
    C = np.asarray(centers, float)
    d = (X**2).sum(1)[:, None] + (C**2).sum(1)[None, :] - 2.0 * X @ C.T
    return -np.maximum(d.min(axis=1), 0.0)


def centroid_attack(X_in: np.ndarray, X_out: np.ndarray, centers: np.ndarray) -> AttackScores:
    """Distance-to-nearest-centroid attack: members lie closer to the centroids fitted on them."""
    scores = np.r_[centroid_scores(X_in, centers), centroid_scores(X_out, centers)]
    return AttackScores(scores, np.r_[np.ones(len(X_in), bool), np.zeros(len(X_out), bool)])


def small_clusters(sizes: np.ndarray, min_size: int = 10) -> int:
    """Clusters with at least one but fewer than ``min_size`` training members: a centroid that
    averages so few records reveals them (one member: the centroid *is* the record)."""
    sizes = np.asarray(sizes)
    return int(((sizes > 0) & (sizes < min_size)).sum())
