"""Measured privacy leakage: membership inference, centroid and federated-update attacks, DP and
HE checks, under one protocol for every method (docs/attacks.md).

The runner calls :func:`leakage` once per job; the attack functions are usable on plain arrays.
"""

from benchmarks.attacks._hook import LeakageConfig, LeakageConfigError, leakage, leakage_config
from benchmarks.attacks._metrics import (
    AttackScores,
    auc_ci,
    clopper_pearson,
    epsilon_lower_bound,
    summarize,
    tpr_at_fpr,
)
from benchmarks.attacks.dp import advantage_bound, dp_audit
from benchmarks.attacks.federated import (
    kmeans_singletons,
    reconstruct_lr_inputs,
    reconstruction_report,
    reconstruction_sweep,
    simulate_fedavg_lr,
)
from benchmarks.attacks.he import ciphertext_leakage, distinguisher_auc
from benchmarks.attacks.membership import (
    audit_targets,
    centroid_attack,
    fit_logreg,
    lira_offline,
    loss_attack,
    small_clusters,
)

__all__ = [
    "AttackScores", "LeakageConfig", "LeakageConfigError", "advantage_bound", "audit_targets", "auc_ci",
    "centroid_attack", "ciphertext_leakage", "clopper_pearson", "distinguisher_auc",
    "dp_audit", "epsilon_lower_bound", "fit_logreg", "kmeans_singletons", "leakage", "leakage_config",
    "lira_offline", "loss_attack", "reconstruct_lr_inputs", "reconstruction_report",
    "reconstruction_sweep", "simulate_fedavg_lr", "small_clusters", "summarize", "tpr_at_fpr",
]
