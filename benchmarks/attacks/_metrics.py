"""Scores of a membership (or any binary distinguishing) attack: ROC, low-FPR TPR, advantage, and an
empirical ε lower bound with Clopper–Pearson intervals.

An attack is summarised by :class:`AttackScores`: one score per target, higher meaning "member"
(or, for any distinguishing game, "world 1"), and the ground truth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats
from sklearn.metrics import roc_auc_score, roc_curve

#: FPR levels at which the TPR is reported (0.1% and 1%), and their key suffixes.
FPR_LEVELS = {"0_001": 1e-3, "0_01": 1e-2}


@dataclass(frozen=True)
class AttackScores:
    """Per-target attack scores (higher = member) and the truth (``True`` = member)."""

    scores: np.ndarray
    is_member: np.ndarray

    def __post_init__(self):
        s = np.asarray(self.scores, dtype=float)
        m = np.asarray(self.is_member, dtype=bool)
        if s.ndim != 1 or s.shape != m.shape:
            raise ValueError(f"scores and is_member must be 1-D of one length; got {s.shape}, {m.shape}")
        if not np.isfinite(s).all():
            raise ValueError("attack scores must be finite")
        if m.all() or not m.any():
            raise ValueError("an attack needs both members and non-members")
        object.__setattr__(self, "scores", s)
        object.__setattr__(self, "is_member", m)

    @property
    def n_members(self) -> int:
        return int(self.is_member.sum())

    @property
    def n_nonmembers(self) -> int:
        return int((~self.is_member).sum())

    @classmethod
    def concat(cls, parts: list[AttackScores]) -> AttackScores:
        """Pool the targets of several attacks (one global threshold over all of them)."""
        return cls(np.concatenate([p.scores for p in parts]), np.concatenate([p.is_member for p in parts]))


def auc_ci(auc: float, n_pos: int, n_neg: int, alpha: float = 0.05) -> tuple[float, float]:
    """Normal-approximation interval for a ROC-AUC (Hanley & McNeil 1982 standard error)."""
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    var = (auc * (1 - auc) + (n_pos - 1) * (q1 - auc**2) + (n_neg - 1) * (q2 - auc**2)) / (n_pos * n_neg)
    # at AUC 0 or 1 the formula gives 0; a small floor keeps the interval from being a point
    var = max(var, (n_pos + n_neg + 1) / (12.0 * n_pos * n_neg) * 1e-2)
    z = stats.norm.ppf(1 - alpha / 2)
    half = z * math.sqrt(var)
    return float(max(0.0, auc - half)), float(min(1.0, auc + half))


def tpr_at_fpr(fpr: np.ndarray, tpr: np.ndarray, level: float) -> float:
    """Largest TPR of a threshold whose FPR is at most ``level`` (0 when none is)."""
    ok = fpr <= level + 1e-12
    return float(tpr[ok].max()) if ok.any() else 0.0


def clopper_pearson(k: np.ndarray, n: int, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Two-sided (1 − alpha) Clopper–Pearson interval for ``k`` successes out of ``n`` (vectorised)."""
    k = np.asarray(k, dtype=float)
    lo = np.where(k > 0, stats.beta.ppf(alpha / 2, k, n - k + 1), 0.0)
    hi = np.where(k < n, stats.beta.ppf(1 - alpha / 2, k + 1, n - k), 1.0)
    return np.nan_to_num(lo, nan=0.0), np.nan_to_num(hi, nan=1.0)


def _counts(scores: np.ndarray, member: np.ndarray, thresholds: np.ndarray) -> tuple[np.ndarray, ...]:
    """True and false positives of "score >= t" for each threshold t."""
    pos = np.sort(scores[member])
    neg = np.sort(scores[~member])
    tp = len(pos) - np.searchsorted(pos, thresholds, side="left")
    fp = len(neg) - np.searchsorted(neg, thresholds, side="left")
    return tp, fp, len(pos), len(neg)


def _eps_bounds(tp, fp, n_pos, n_neg, delta: float, alpha: float) -> np.ndarray:
    """Per threshold, the ε that (ε, δ)-DP would need to allow the observed rates, using the
    pessimistic end of Clopper–Pearson intervals (each at level alpha/2, so jointly 1 − alpha).

    (ε, δ)-DP bounds every test: TPR <= e^ε FPR + δ and TNR <= e^ε FNR + δ (Kairouz et al. 2015).
    """
    tpr_lo, _ = clopper_pearson(tp, n_pos, alpha)
    _, fpr_hi = clopper_pearson(fp, n_neg, alpha)
    tnr_lo, _ = clopper_pearson(n_neg - fp, n_neg, alpha)
    _, fnr_hi = clopper_pearson(n_pos - tp, n_pos, alpha)
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.log(np.clip(tpr_lo - delta, 0, None) / fpr_hi)
        b = np.log(np.clip(tnr_lo - delta, 0, None) / fnr_hi)
    return np.nan_to_num(np.maximum(np.maximum(a, b), 0.0), nan=0.0, posinf=0.0, neginf=0.0)


def _eps_point(tp, fp, n_pos, n_neg, delta: float) -> float | None:
    tpr, fpr, tnr, fnr = tp / n_pos, fp / n_neg, 1 - fp / n_neg, 1 - tp / n_pos
    vals = []
    for num, den in ((tpr - delta, fpr), (tnr - delta, fnr)):
        if num <= 0:
            continue
        if den == 0:
            return None  # infinite: no false positives (or negatives) observed at this threshold
        vals.append(math.log(num / den))
    return max([0.0, *vals])


def epsilon_lower_bound(result: AttackScores, delta: float = 0.0, alpha: float = 0.05,
                        seed: int = 0, max_thresholds: int = 2000) -> dict:
    """Empirical ε lower bound of an attack (Jagielski et al. 2020; Nasr et al. 2021 style).

    The targets are split at random in two halves. On the first the threshold is chosen that
    maximises the Clopper–Pearson bound; on the second, independent half, that one threshold's
    true- and false-positive counts give the reported bound, so choosing the threshold costs no
    confidence. With probability at least 1 − alpha, an (ε, δ)-DP release has ε >= ``eps_lb``.

    Returns ``eps_lb``, ``eps_point`` (the rates' plain ratio on the second half; ``None`` when
    infinite), ``advantage_lb`` (TPR lower minus FPR upper bound there), ``threshold``.
    """
    rng = np.random.default_rng(seed)
    first = np.zeros(len(result.scores), bool)
    for group in (np.flatnonzero(result.is_member), np.flatnonzero(~result.is_member)):
        first[rng.permutation(group)[: len(group) // 2]] = True
    s1, m1 = result.scores[first], result.is_member[first]
    s2, m2 = result.scores[~first], result.is_member[~first]
    cand = np.unique(s1)
    if len(cand) > max_thresholds:  # quantiles: the same choice to within 1/max_thresholds of the rates
        cand = np.unique(np.quantile(s1, np.linspace(0, 1, max_thresholds)))
    tp, fp, n_pos, n_neg = _counts(s1, m1, cand)
    bounds = _eps_bounds(tp, fp, n_pos, n_neg, delta, alpha)
    t = cand[int(np.argmax(bounds))]
    tp, fp, n_pos, n_neg = _counts(s2, m2, np.array([t]))
    eps_lb = float(_eps_bounds(tp, fp, n_pos, n_neg, delta, alpha)[0])
    tpr_lo, _ = clopper_pearson(tp, n_pos, alpha)
    _, fpr_hi = clopper_pearson(fp, n_neg, alpha)
    return {
        "eps_lb": eps_lb,
        "eps_point": _eps_point(int(tp[0]), int(fp[0]), n_pos, n_neg, delta),
        "advantage_lb": float(max(0.0, tpr_lo[0] - fpr_hi[0])),
        "threshold": float(t),
    }


def roc_points(fpr: np.ndarray, tpr: np.ndarray, n: int = 60) -> dict[str, list[float]]:
    """The ROC curve at ``n`` FPR levels, log-spaced from 1e-4 to 1 (for log-log ROC plots)."""
    grid = np.r_[0.0, np.logspace(-4, 0, n - 1)]
    return {"fpr": [round(float(g), 6) for g in grid],
            "tpr": [round(tpr_at_fpr(fpr, tpr, g), 6) for g in grid]}


def summarize(result: AttackScores, prefix: str, delta: float = 0.0, alpha: float = 0.05,
              seed: int = 0, roc: dict | None = None, roc_n: int = 60) -> dict:
    """All metrics of one attack under ``{prefix}_<metric>`` keys; the ROC goes into ``roc``."""
    y, s = result.is_member, result.scores
    fpr, tpr, _ = roc_curve(y, s)
    auc = float(roc_auc_score(y, s))
    eps = epsilon_lower_bound(result, delta=delta, alpha=alpha, seed=seed)
    out = {
        f"{prefix}_auc": auc,
        f"{prefix}_auc_ci": list(auc_ci(auc, result.n_members, result.n_nonmembers, alpha)),
        **{f"{prefix}_tpr_at_fpr_{k}": tpr_at_fpr(fpr, tpr, v) for k, v in FPR_LEVELS.items()},
        f"{prefix}_advantage": float(np.max(tpr - fpr)),
        f"{prefix}_advantage_lb": eps["advantage_lb"],
        f"{prefix}_eps_lb": eps["eps_lb"],
        f"{prefix}_eps_point": eps["eps_point"],
        f"{prefix}_n_members": result.n_members,
        f"{prefix}_n_nonmembers": result.n_nonmembers,
    }
    if roc is not None:
        roc[prefix] = roc_points(fpr, tpr, roc_n)
    return out
