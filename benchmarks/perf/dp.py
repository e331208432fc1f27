"""DP method against diffprivlib used as documented, and the ε curve, side by side.

    python -m benchmarks.perf dp [--epsilons 0.1 0.3 1 3 10 inf] [--seeds 0 1 2 3 4] [--k 4]
                                 [--dataset bank_full] [--split-seed 0] [--subsample N]

Each split is loaded once and every (variant, ε, seed) is fitted on it, so this is the quick way to
the numbers of docs/dp.md; ``+experiment=epsilon_sweep`` produces the same runs as records.

Per run: test AUC, and the segmentation inertia ratio to the plaintext K-means (same k and seed):
``ratio_same_space`` compares the released centroids with scikit-learn's K-means on the very
features the variant clusters (its own preprocessing); ``ratio_plaintext_space`` scores the variant's
partition of the training rows in the plaintext method's z-scored features (sum of squares to each
segment's mean there) against the plaintext K-means inertia, so variants with different
preprocessing are compared on one scale. Medians over seeds are printed.

Variants: ``ours`` is ``method=dp`` with its defaults. ``documented`` is diffprivlib as its
documentation shows: ``KMeans(epsilon=ε/2, bounds=(0, 1))`` on the public [0, 1] features and
``LogisticRegression(epsilon=ε/2, data_norm=sqrt(n_features))`` (the norm bound implied by the
per-column bounds) on the features plus the segment one-hot, defaults otherwise.
"""

from __future__ import annotations

import argparse
import math
import time
import warnings

import numpy as np
from omegaconf import OmegaConf

from benchmarks.metrics import inertia
from methods.base import with_segments

REPO_CONF = "conf"


def _dataset_cfg(name: str, subsample, **overrides):
    cfg = OmegaConf.load(f"{REPO_CONF}/dataset/{name}.yaml")
    cfg.subsample = subsample
    for key, value in overrides.items():
        OmegaConf.update(cfg, key, value)
    return cfg


def partition_ss(X: np.ndarray, labels: np.ndarray) -> float:
    """Sum of squared distances of rows to their segment's mean (the partition's K-means cost)."""
    total = 0.0
    for c in np.unique(labels):
        part = X[labels == c]
        total += float(((part - part.mean(axis=0)) ** 2).sum())
    return total


def documented(split, k: int, epsilon: float, seed: int):
    """diffprivlib's KMeans and LogisticRegression as documented, ε split evenly."""
    from diffprivlib.models import KMeans, LogisticRegression

    half = epsilon / 2
    km = KMeans(n_clusters=k, epsilon=half, bounds=(0.0, 1.0), random_state=seed).fit(split.train.X_segment)
    Z = with_segments(split.train.X, km.labels_, k)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*L-BFGS-B solver are deprecated",
                                category=DeprecationWarning)
        lr = LogisticRegression(epsilon=half, data_norm=math.sqrt(Z.shape[1]), random_state=seed).fit(
            Z, split.train.y)
    test_labels = km.predict(split.test.X_segment)
    proba = lr.predict_proba(with_segments(split.test.X, test_labels, k))[:, 1]
    return km.cluster_centers_, km.labels_, proba


def ours(split, k: int, epsilon: float, seed: int, **params):
    from methods.dp import DPMethod

    m = DPMethod(n_clusters=k, random_state=seed, epsilon=epsilon,
                 categorical=dict(split.preprocessor.categorical), **params)
    m.fit(split.train.X, split.train.y, split.train.X_segment)
    return m.cluster_centers_, m.labels_, m.predict_proba(split.test.X, split.test.X_segment)


def main(argv: list[str]) -> dict:
    from sklearn.metrics import roc_auc_score

    import datasets
    from methods.dp import DPMethod
    from methods.plaintext import PlaintextMethod, reference_kmeans

    ap = argparse.ArgumentParser(prog="python -m benchmarks.perf dp", description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", default="bank_full")
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--epsilons", type=float, nargs="+", default=[0.1, 0.3, 1, 3, 10, math.inf])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--split-seed", type=int, default=0)
    ap.add_argument("--subsample", type=int, default=None)
    ap.add_argument("--variants", nargs="+", default=["ours", "documented"])
    args = ap.parse_args(argv)

    overrides = DPMethod().dataset_overrides
    splits = {
        "plaintext": datasets.load(_dataset_cfg(args.dataset, args.subsample), args.split_seed),
        "ours": datasets.load(_dataset_cfg(args.dataset, args.subsample, **overrides), args.split_seed),
        "documented": datasets.load(_dataset_cfg(args.dataset, args.subsample, scaling="public", clip=True),
                                    args.split_seed),
    }
    plain = splits["plaintext"]
    results: dict = {"plaintext": {}, "runs": []}
    ref_inertia = {}
    for seed in args.seeds:
        pm = PlaintextMethod(n_clusters=args.k, random_state=seed).fit(plain.train.X, plain.train.y,
                                                                        plain.train.X_segment)
        auc = roc_auc_score(plain.test.y, pm.predict_proba(plain.test.X, plain.test.X_segment))
        results["plaintext"][seed] = {"auc": auc, "inertia": float(pm.kmeans_.inertia_)}
        for v in args.variants:
            ref_inertia[v, seed] = float(reference_kmeans(splits[v].train.X_segment, args.k, seed).inertia_)
    plain_auc = float(np.median([r["auc"] for r in results["plaintext"].values()]))
    print(f"plaintext: auc={plain_auc:.4f} (median over seeds {args.seeds})", flush=True)

    fits = {"ours": ours, "documented": documented}
    for v in args.variants:
        split = splits[v]
        for eps in args.epsilons:
            rows = []
            for seed in args.seeds:
                t = time.perf_counter()
                centers, labels, proba = fits[v](split, args.k, eps, seed)
                row = {
                    "variant": v, "epsilon": eps, "seed": seed,
                    "auc": float(roc_auc_score(split.test.y, proba)),
                    "ratio_same_space": inertia(split.train.X_segment, centers) / ref_inertia[v, seed],
                    "ratio_plaintext_space": partition_ss(plain.train.X_segment, labels)
                    / results["plaintext"][seed]["inertia"],
                    "fit_s": time.perf_counter() - t,
                }
                rows.append(row)
            results["runs"] += rows
            med = {key: float(np.median([r[key] for r in rows]))
                   for key in ("auc", "ratio_same_space", "ratio_plaintext_space")}
            print(f"{v:10s} eps={eps:<5g} auc={med['auc']:.4f} "
                  f"(gap to plaintext {plain_auc - med['auc']:+.4f}) "
                  f"inertia ratio same-space={med['ratio_same_space']:.3f} "
                  f"plaintext-space={med['ratio_plaintext_space']:.3f}   "
                  f"auc per seed {[round(r['auc'], 4) for r in rows]}", flush=True)
    results["plaintext_auc_median"] = plain_auc
    return results
