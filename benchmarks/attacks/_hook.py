"""The runner's entry point: every attack that applies to a fitted method, as one flat dict.

``leakage(method, split, seed, cfg)`` is called after ``method.fit(split.train...)``. It attacks
what the method releases (its predictor through ``predict_proba``, its ``cluster_centers_``) and
whatever else it exposes to its server (federated client updates, the HE key holder's transcript
measure); an artefact a method does not expose is skipped with the reason in ``skipped``, and an
attack that fails is reported in ``errors`` rather than failing the job.

Artefacts read when the method has them, each declared as a Protocol in :mod:`methods.base`:
:class:`~methods.base.Segmenter` (the released segments, for the predictor's features),
:class:`~methods.base.Centroids`, :class:`~methods.base.FederatedServerView` (client updates and
K-means statistics), :class:`~methods.base.HomomorphicServer` (the ciphertext checks run for it) and
:class:`~methods.base.KeyHolderAudit`; ``privacy_.epsilon`` / ``privacy_.delta`` are the claimed DP
guarantee.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

import numpy as np
from omegaconf import OmegaConf
from sklearn.base import clone as sklearn_clone
from threadpoolctl import threadpool_limits

from benchmarks.attacks import dp as _dp
from benchmarks.attacks import federated as _fl
from benchmarks.attacks import he as _he
from benchmarks.attacks import membership as _mi
from benchmarks.attacks._metrics import AttackScores, epsilon_lower_bound, summarize
from benchmarks.config import ConfigError, LeakageConfig, conform
from methods.base import (
    Centroids,
    FederatedServerView,
    HomomorphicServer,
    KeyHolderAudit,
    Segmenter,
    with_segments,
)

log = logging.getLogger("privmark")


# the schema lives with every other config group's (benchmarks.config); one refusal type
LeakageConfigError = ConfigError


def leakage_config(cfg=None):
    """Validate ``cfg`` (dict, DictConfig or None) against :class:`LeakageConfig`; defaults fill gaps."""
    c = conform(LeakageConfig, cfg, "leakage")
    checks = [
        ("alpha", 0 < c.alpha < 1, "a probability in (0, 1)"),
        ("delta", 0 <= c.delta < 1, "0 <= delta < 1"),
        ("max_per_side", c.max_per_side is None or c.max_per_side >= 2, "null or >= 2"),
        ("roc_points", c.roc_points >= 2, ">= 2"),
        ("lira.n_shadows", c.lira.n_shadows >= 2, ">= 2 shadow models"),
        ("lira.shadow_fraction", 0 < c.lira.shadow_fraction < 1, "a fraction in (0, 1)"),
        ("lira.C", c.lira.C > 0, "> 0"),
        ("centroids.min_cluster_size", c.centroids.min_cluster_size >= 1, ">= 1"),
        ("reference.n_estimators", c.reference.n_estimators >= 1, ">= 1"),
        ("small_train.size", c.small_train.size >= 10, ">= 10 rows"),
        ("small_train.repeats", c.small_train.repeats >= 1, ">= 1"),
        ("he.n_ciphertexts", c.he.n_ciphertexts >= 20, ">= 20"),
    ]
    for key, ok, expected in checks:
        if not ok:
            value = OmegaConf.select(c, key)
            raise ConfigError(f"leakage.{key}={value!r}; expected {expected}")
    return c


class Skip(Exception):
    """An attack does not apply (the method does not expose what it needs)."""


def _positive_proba(method) -> Callable:
    """The released predictor as the attacks read it: ``(X, X_segment) -> P(y = 1)``."""
    return lambda X, Xs: method.predict_proba(X, Xs)[:, 1]


def _model_features(method) -> Callable | None:
    """The released predictor's input features (model features + released-segment one-hot)."""
    if not isinstance(method, Segmenter):
        return None
    include = bool(getattr(method, "segments_in_predictor", True))
    return lambda X, Xs: with_segments(X, np.asarray(method.segment(Xs)), method.n_clusters, include)


class _Audit:
    """One member/non-member target set and the attacks on one released model."""

    def __init__(self, train, test, members, nonmembers, c, seed, out, results):
        self.train, self.test = train, test
        self.members, self.nonmembers = members, nonmembers
        self.c, self.seed, self.out, self.results = c, seed, out, results

    def _add(self, prefix: str, res: AttackScores) -> dict:
        return _summarize(prefix, res, self.c, self.seed, self.out, self.results)

    def predictor(self, proba: Callable, features: Callable | None, pool: np.ndarray,
                  target_size: int, prefix: str, lira: bool = True) -> dict:
        tr, te, m, nm = self.train, self.test, self.members, self.nonmembers
        p_in = np.asarray(proba(tr.X[m], tr.X_segment[m]), float)
        p_out = np.asarray(proba(te.X[nm], te.X_segment[nm]), float)
        out = self._add(prefix, _mi.loss_attack(p_in, tr.y[m], p_out, te.y[nm]))
        if lira and self.c.lira.enabled:
            try:
                out.update(self.lira(p_in, p_out, features, pool, target_size, prefix))
            except Skip as s:
                self.out["skipped"][f"{prefix}_lira"] = str(s)
            except Exception as exc:  # keep the loss attack's result
                log.warning("leakage: %s LiRA failed", prefix, exc_info=True)
                self.out["errors"][f"{prefix}_lira"] = f"{type(exc).__name__}: {exc}"
        return out

    def lira(self, p_in, p_out, features, pool, target_size, prefix) -> dict:
        tr, te, m, nm, lc = self.train, self.test, self.members, self.nonmembers, self.c.lira
        feats = features or (lambda X, Xs: X)
        size = min(target_size, int(lc.shadow_fraction * len(pool)))
        if size < 10:
            raise Skip(f"shadow pool of {len(pool)} rows is too small")
        F_pool = feats(tr.X[pool], tr.X_segment[pool])
        F_t = np.vstack([feats(tr.X[m], tr.X_segment[m]), feats(te.X[nm], te.X_segment[nm])])
        y_t = np.r_[tr.y[m], te.y[nm]]
        rng = np.random.default_rng([self.seed, 1])
        shadow = _mi.shadow_confidences(F_t, y_t, F_pool, tr.y[pool], lc.n_shadows, size, lc.C, rng)
        target = _mi.logit_confidence(np.r_[p_in, p_out], y_t)
        member = np.r_[np.ones(len(m), bool), np.zeros(len(nm), bool)]
        res = _mi.lira_offline(target, shadow, lc.fixed_variance, member)
        name = prefix.replace("mia", "lira") if "mia" in prefix else f"{prefix}_lira"
        return {**self._add(name, res), f"{name}_shadows": lc.n_shadows, f"{name}_shadow_size": size}

    def centroids(self, centers, prefix: str) -> dict:
        tr, te, m, nm = self.train, self.test, self.members, self.nonmembers
        centers = np.asarray(centers, float)
        if centers.ndim != 2 or centers.shape[1] != tr.X_segment.shape[1]:
            raise Skip(f"cluster_centers_ has shape {centers.shape}; expected (k, {tr.X_segment.shape[1]})")
        return self._add(prefix, _mi.centroid_attack(tr.X_segment[m], te.X_segment[nm], centers))


def _summarize(prefix: str, res: AttackScores, c, seed: int, out: dict, results: dict) -> dict:
    """Keep an attack's scores (for the DP audit) and return its metrics; its ROC goes to ``out``."""
    results[prefix] = res
    return summarize(res, prefix, delta=c.delta, alpha=c.alpha, seed=seed, roc=out["roc"],
                     roc_n=c.roc_points)


def _section(out: dict, name: str, fn: Callable[[], dict | None]) -> None:
    t = time.perf_counter()
    try:
        res = fn()
        if res:
            out.update(res)
    except Skip as s:
        out["skipped"][name] = str(s)
    except Exception as exc:  # an attack must not fail the (possibly hours-long) job it measures
        log.warning("leakage: %s failed", name, exc_info=True)
        out["errors"][name] = f"{type(exc).__name__}: {exc}"
    out["seconds"][name] = round(time.perf_counter() - t, 3)


def leakage(method, split, seed: int = 0, cfg=None) -> dict:
    """Measured leakage of a fitted ``method`` trained on ``split.train``.

    Parameters
    ----------
    method : a fitted :class:`methods.base.Method`.
    split : the :class:`datasets.Split` it was fitted on (``split.train``; never saw ``split.test``).
    seed : seeds the target draw, the shadow models and the threshold-selection halves; pass the
        same value for every method of one comparison (e.g. ``split_seed``) so all are attacked
        on the same targets.
    cfg : the ``leakage`` config group (dict, DictConfig or None for the defaults).

    Returns a flat dict of ``snake_case`` metrics (``mia_auc``, ...), plus ``protocol``, ``roc``
    (curves for plots), ``skipped`` and ``errors`` (reasons), ``seconds`` (per section).
    """
    c = leakage_config(cfg)
    # The attacks make many small BLAS calls; multi-threaded OpenBLAS spins on a busy machine
    # (a 13k x 57 Newton step measured 100x slower with 2 threads under load than with 1).
    with threadpool_limits(limits=1, user_api="blas"):
        return _leakage(method, split, seed, c)


def _leakage(method, split, seed: int, c) -> dict:
    out: dict = {"skipped": {}, "errors": {}, "seconds": {}, "roc": {}}
    if not c.enabled:
        out["skipped"]["all"] = "leakage.enabled=false"
        return out
    train, test = split.train, split.test
    members, nonmembers = _mi.audit_targets(train.y, test.y, seed, c.max_per_side)
    pool = np.setdiff1d(np.arange(len(train)), members)
    out["protocol"] = {
        "members": int(len(members)), "nonmembers": int(len(nonmembers)), "seed": int(seed),
        "members_from": "split.train (label counts matched to the non-members)",
        "nonmembers_from": "split.test (never seen by the method)",
        "shadow_pool": int(len(pool)), "alpha": c.alpha, "delta": c.delta,
    }
    results: dict[str, AttackScores] = {}
    audit = _Audit(train, test, members, nonmembers, c, seed, out, results)

    _section(out, "mia", lambda: audit.predictor(_positive_proba(method), _model_features(method), pool,
                                                  len(train), "mia"))
    if c.centroids.enabled:
        _section(out, "centroids", lambda: _centroids(method, audit, c))
    if c.reference.enabled:
        _section(out, "reference", lambda: _reference(audit, pool, c))
    if c.small_train.enabled:
        _section(out, "small_train", lambda: _small_train(method, split, seed, c, out, results))
    if c.federated.enabled:
        _section(out, "federated", lambda: _federated(method, train))
    if c.federated.simulation:
        _section(out, "fl_simulation", lambda: _fl_simulation(train, seed, c))
    he_on = c.he.enabled if c.he.enabled is not None else isinstance(method, HomomorphicServer)
    if he_on:
        _section(out, "he", lambda: _he_checks(method, train, seed, c))
    _section(out, "dp", lambda: _dp_section(method, results, c, seed))
    return out


def _centroids(method, audit: _Audit, c) -> dict:
    centers = method.cluster_centers_ if isinstance(method, Centroids) else None
    if centers is None:
        raise Skip("method exposes no cluster_centers_")
    out = audit.centroids(centers, "centroid_mia")
    sizes = np.bincount(np.asarray(method.segment(audit.train.X_segment)), minlength=len(centers))
    out["small_clusters"] = _mi.small_clusters(sizes, c.centroids.min_cluster_size)
    out["min_cluster_size"] = int(sizes.min())
    return out


def _reference(audit: _Audit, pool: np.ndarray, c) -> dict:
    from sklearn.ensemble import RandomForestClassifier

    rf = RandomForestClassifier(n_estimators=c.reference.n_estimators, n_jobs=c.reference.n_jobs,
                                random_state=audit.seed)
    rf.fit(audit.train.X, audit.train.y)
    out = audit.predictor(lambda X, Xs: rf.predict_proba(X)[:, 1], None, pool, len(audit.train), "rf_mia")
    return {**out, "rf_n_estimators": c.reference.n_estimators}


def _stratified_subsets(y: np.ndarray, size: int, repeats: int, rng) -> list[np.ndarray]:
    """``repeats`` disjoint label-stratified subsets of ``size`` rows."""
    if size * repeats > len(y) // 2:
        raise Skip(f"small_train.size x repeats = {size * repeats} exceeds half the training rows")
    parts = [[] for _ in range(repeats)]
    for lab in np.unique(y):
        rows = rng.permutation(np.flatnonzero(y == lab))
        n = max(1, int(round(size * len(rows) / len(y))))
        for r in range(repeats):
            parts[r].append(rows[r * n:(r + 1) * n])
    return [np.sort(np.concatenate(p)) for p in parts]


def _small_train(method, split, seed, c, out, results) -> dict:
    """Refit a fresh copy of the method on small training sets and attack each copy; the scores of
    all copies are pooled (one threshold across copies)."""
    train, test = split.train, split.test
    rng = np.random.default_rng([seed, 2])
    subsets = _stratified_subsets(train.y, c.small_train.size, c.small_train.repeats, rng)
    found: dict[str, list[AttackScores]] = {}
    sizes_small = []
    for r, rows in enumerate(subsets):
        clone = sklearn_clone(method)  # a fresh, unfitted copy with the same parameters
        clone.fit(train.X[rows], train.y[rows], train.X_segment[rows])
        # members: every row of the small training set; non-members: label-matched test rows
        pos, nonmembers = _mi.audit_targets(train.y[rows], test.y, seed + 1000 + r)
        members = rows[pos]
        sub: dict[str, AttackScores] = {}
        # per-copy curves are dropped (the pooled one is kept); skips and errors are reported
        scratch = {"roc": {}, "skipped": out["skipped"], "errors": out["errors"]}
        a = _Audit(train, test, members, nonmembers, c, seed, scratch, sub)
        a.predictor(_positive_proba(clone), _model_features(clone), np.setdiff1d(np.arange(len(train)), rows),
                    len(rows), "small_mia")
        if c.centroids.enabled and isinstance(clone, Centroids) and clone.cluster_centers_ is not None:
            a.centroids(clone.cluster_centers_, "small_centroid_mia")
            sizes_small.append(np.bincount(np.asarray(clone.segment(train.X_segment[rows])),
                                           minlength=len(clone.cluster_centers_)))
        for k, v in sub.items():
            found.setdefault(k, []).append(v)
    summary = {"small_train_size": int(len(subsets[0])), "small_train_repeats": len(subsets)}
    for prefix, parts in found.items():
        summary.update(_summarize(prefix, AttackScores.concat(parts), c, seed, out, results))
    if sizes_small:
        summary["small_train_small_clusters"] = int(sum(_mi.small_clusters(s, c.centroids.min_cluster_size)
                                                  for s in sizes_small))
    return summary


def _federated(method, train) -> dict:
    out: dict = {}
    view = isinstance(method, FederatedServerView)
    updates = method.client_updates_ if view else None
    counts = method.kmeans_client_counts_ if view else None
    if updates is None and counts is None:
        raise Skip("method exposes no client_updates_ or kmeans_client_counts_ (not federated)")
    rows = method.client_rows_
    if updates is not None:
        if rows is None:
            raise Skip("client_updates_ without client_rows_: no ground truth to compare with")
        w, b = np.asarray(updates["w"], float), np.asarray(updates["b"], float)
        d, n_features = w.shape[-1], train.X.shape[1]
        k = method.n_clusters
        if d == n_features:
            truth = [train.X[np.asarray(r)] for r in rows]
        elif d == n_features + k:
            seg = np.asarray(method.segment(train.X_segment))
            truth = [with_segments(train.X[np.asarray(r)], seg[np.asarray(r)], k) for r in rows]
        else:
            raise Skip(f"updates have {d} weights; expected {n_features} or {n_features + k}")
        gw, gb = updates.get("global_w"), updates.get("global_b")
        x_hat, y_hat = _fl.reconstruct_lr_inputs(
            w, b, kind=updates.get("kind", "delta"), l2=float(updates.get("l2", 0.0) or 0.0),
            global_w=None if gw is None else np.asarray(gw, float)[:, None, :],
            global_b=None if gb is None else np.asarray(gb, float)[:, None], lr=updates.get("lr"))
        rep = _fl.reconstruction_report(x_hat, y_hat, truth, [train.y[np.asarray(r)] for r in rows])
        out.update({f"fl_recon_{key}": v for key, v in rep.items()})
    if counts is not None:
        sums = method.kmeans_client_sums_
        seg_truth = None if rows is None else [train.X_segment[np.asarray(r)] for r in rows]
        out.update(_fl.kmeans_singletons(counts, sums, seg_truth))
    return out


def _fl_simulation(train, seed, c) -> dict:
    fc = c.federated
    rows = _fl.reconstruction_sweep(train.X, train.y, n_clients=fc.sim_clients, rounds=fc.sim_rounds,
                                    lr=fc.sim_lr, seed=seed)
    keep = ("records_per_client", "batch_size", "local_epochs", "cosine_mean", "frac_cosine_ge_0_99",
            "label_accuracy")
    return {"fl_simulation": [{k: r[k] for k in keep} for r in rows]}


def _he_checks(method, train, seed, c) -> dict:
    hc = c.he
    out = _he.ciphertext_leakage(hc.n_ciphertexts, seed=seed, alpha=c.alpha, control=hc.control,
                                 poly_modulus_degree=hc.poly_modulus_degree,
                                 coeff_mod_bit_sizes=tuple(hc.coeff_mod_bit_sizes),
                                 global_scale_bits=hc.global_scale_bits)
    audited = isinstance(method, KeyHolderAudit)
    rho = _he.method_key_holder_spearman(method, train.X_segment) if audited else None
    out["he_key_holder_spearman"] = None if rho is None else float(rho)
    return out


def _dp_section(method, results: dict[str, AttackScores], c, seed) -> dict:
    eps = method.privacy_.epsilon
    if eps is None or not (isinstance(eps, (int, float)) and math.isfinite(eps) and eps > 0):
        raise Skip("method claims no finite epsilon")
    delta = float(method.privacy_.delta or 0.0)
    # attacks on this mechanism: its release and its small-training-set copies (DP holds at any
    # size), not the random-forest reference
    own = {k: v for k, v in results.items() if not k.startswith("rf_")}
    if not own:
        raise Skip("no attack on the released artefacts succeeded")
    bounds = {k: epsilon_lower_bound(v, delta=delta, alpha=c.alpha, seed=seed) for k, v in own.items()}
    worst = max(bounds, key=lambda k: bounds[k]["eps_lb"])
    best_adv = max(b["advantage_lb"] for b in bounds.values())
    out = _dp.dp_audit({"eps_lb": bounds[worst]["eps_lb"], "advantage_lb": best_adv}, eps, delta)
    out["dp_eps_lb_attack"] = worst
    if not out["dp_eps_lb_within_claim"] or not out["dp_advantage_within_bound"]:
        log.error("leakage: the %s attack's empirical bound exceeds the claimed epsilon=%s", worst, eps)
    return out
