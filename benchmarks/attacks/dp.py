"""Differential privacy set against what the attacks measured.

ε-DP (δ = 0) bounds every membership test: TPR ≤ e^ε·FPR and TNR ≤ e^ε·FNR, hence the balanced
advantage TPR − FPR ≤ (e^ε − 1)/(e^ε + 1) = tanh(ε/2); with δ > 0 the advantage bound is
(e^ε − 1 + 2δ)/(e^ε + 1). An empirical ε lower bound above the claimed ε, or an advantage lower
bound above tanh(ε/2), means the claim is false (a bug to find, not to hide). Both checks use the
held-out Clopper–Pearson bounds of :func:`benchmarks.attacks._metrics.epsilon_lower_bound`.

A bound from one training run and many targets is far below the claimed ε even for a leaky
mechanism; it audits the released artefact as trained, not the worst case over neighbouring data
sets. Steinke, Nasr & Jagielski (2023) justify one-run audits when each target's membership is
randomised independently; the seeded train/test split approximates that.
"""

from __future__ import annotations

import math

from benchmarks.attacks._metrics import AttackScores, epsilon_lower_bound


def advantage_bound(epsilon: float, delta: float = 0.0) -> float:
    """Largest TPR − FPR any membership test can reach against an (ε, δ)-DP release."""
    if math.isinf(epsilon):
        return 1.0
    return min(1.0, (math.expm1(epsilon) + 2 * delta) / (math.exp(epsilon) + 1))


def dp_audit(result: AttackScores | dict, claimed_epsilon: float, delta: float = 0.0,
             alpha: float = 0.05, seed: int = 0) -> dict:
    """Compare an attack's empirical ε lower bound and advantage with the claimed (ε, δ).

    ``result`` is an :class:`AttackScores`, or the output of ``epsilon_lower_bound`` (keys
    ``eps_lb`` and ``advantage_lb``) when the bound has already been computed.
    """
    if claimed_epsilon is None or not claimed_epsilon > 0:
        raise ValueError(f"claimed_epsilon={claimed_epsilon!r}; expected a positive number")
    bound = result if isinstance(result, dict) else epsilon_lower_bound(result, delta, alpha, seed)
    adv_bound = advantage_bound(claimed_epsilon, delta)
    return {
        "dp_claimed_epsilon": float(claimed_epsilon),
        "dp_eps_lb": float(bound["eps_lb"]),
        "dp_eps_lb_within_claim": bool(bound["eps_lb"] <= claimed_epsilon),
        "dp_advantage_lb": float(bound["advantage_lb"]),
        "dp_advantage_bound": adv_bound,
        "dp_advantage_within_bound": bool(bound["advantage_lb"] <= adv_bound),
    }
