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
from methods._util import CONF
from methods.base import with_segments


def _dataset_cfg(name: str, subsample, **overrides):
    cfg = OmegaConf.load(CONF / "dataset" / f"{name}.yaml")
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
    return m.cluster_centers_, m.labels_, m.predict_proba(split.test.X, split.test.X_segment)[:, 1]


def kmeans_noise(n_dims: int, epsilon: float = 1.0, iters: int = 5, rounds: int = 200,
                 n_clusters: int = 10, seed: int = 0) -> dict:
    """Measured per-iteration ε of diffprivlib's KMeans update and of :class:`DPKMeans`'s.

    diffprivlib's ``_update_centers`` is called ``rounds`` times on fixed data (every row in the middle
    of [0, 1]^d, clusters of 2,000 rows, so neither the folding of the counts nor the bounded domain
    of the sums bites) with its mechanisms wrapped to record the noise they add. ε per mechanism is
    read off the noise: a two-sided geometric count with mean |noise| m has ε = -ln((sqrt(1 + m²) - 1)
    / m); a bounded-domain Laplace sum with scale b (mean |noise|) and sensitivity 1 has
    ε = 1/b + ln ΔC(b) (Holohan et al.'s correction: at these small ε it doubles the noise of a plain
    Laplace with the same ε). Sensitivities are
    diffprivlib's own (1 for a count, the width 1 for a sum; add/remove-one). The same is done for
    DPKMeans' release (:func:`methods.dp.noisy_cluster_stats`; replace-one sensitivities 2 and 1).
    """
    import diffprivlib.models.k_means as dkm

    from methods.dp import DPKMeans, noisy_cluster_stats

    noise = {"count": [], "sum": []}

    class Geometric(dkm.GeometricFolded):
        def randomise(self, value):
            out = super().randomise(value)
            noise["count"].append(out - value)
            return out

    class Bounded(dkm.LaplaceBoundedDomain):
        def randomise(self, value):
            out = super().randomise(value)
            noise["sum"].append(out - value)
            return out

    X = np.full((2000 * n_clusters, n_dims), 0.5)
    labels = np.repeat(np.arange(n_clusters), 2000)
    model = dkm.KMeans(n_clusters=n_clusters, epsilon=epsilon, bounds=(0.0, 1.0))
    model.bounds = model._check_bounds(model.bounds, n_dims, min_separation=1e-5)
    rng = np.random.RandomState(seed)
    saved = dkm.GeometricFolded, dkm.LaplaceBoundedDomain
    dkm.GeometricFolded, dkm.LaplaceBoundedDomain = Geometric, Bounded
    try:
        for _ in range(rounds):
            model._update_centers(X, np.zeros((n_clusters, n_dims)), labels, n_dims, iters, rng)
    finally:
        dkm.GeometricFolded, dkm.LaplaceBoundedDomain = saved
    m = float(np.mean(np.abs(noise["count"])))
    eps_count = -math.log((math.sqrt(1 + m * m) - 1) / m)
    b = float(np.mean(np.abs(noise["sum"])))
    # the bounded-domain Laplace (Holohan et al.) is ε-DP with ε = Δ/b + ln ΔC(b), not Δ/b: its
    # normalising constant moves with the value; the domain of a sum is [0, count] here
    diam = 2000.0
    delta_c = (2 - math.exp(-1 / b) - math.exp(-(diam - 1) / b)) / (1 - math.exp(-diam / b))
    eps_sum = 1.0 / b + math.log(delta_c)
    c = float(np.cbrt(4 * n_dims * 0.225**2))
    su_count, su_sum = c / (n_dims + c) * epsilon / iters, epsilon / iters / (n_dims + c)
    out = {"d": n_dims, "requested_epsilon": epsilon, "iterations": iters,
           "su_per_iter": {"count": su_count, "sum_per_dim": su_sum},
           "diffprivlib_per_iter": {"count": eps_count, "sum_per_dim": eps_sum},
           "diffprivlib_spent": iters * (eps_count + n_dims * eps_sum)}

    ours = DPKMeans(n_clusters, epsilon=epsilon, bounds=(0.0, 1.0), n_iter=iters, init="random")
    ours.fit(np.random.default_rng(seed).uniform(size=(50, n_dims)))
    Z = np.zeros_like(X)
    c_noise, s_noise = [], []
    for _ in range(rounds):
        counts, sums, noisy_counts, noisy_sums = noisy_cluster_stats(
            Z, labels, n_clusters, ours.epsilon_count_, ours.epsilon_sum_, 2.0, np.ones(n_dims), rng)
        c_noise.append(noisy_counts - counts)
        s_noise.append(noisy_sums - sums)
    o_count = 2.0 / float(np.mean(np.abs(np.concatenate(c_noise))))
    o_sum = 1.0 / float(np.mean(np.abs(np.vstack(s_noise))))
    out["ours_per_iter"] = {"count": o_count, "sum_per_dim": o_sum}
    out["ours_spent"] = iters * (o_count + n_dims * o_sum)
    out["diffprivlib_sum_noise_scale"] = b
    return out


#: One change from the defaults each, for ``--ablation`` (name, dataset overrides, DPMethod params).
ABLATION = [
    ("defaults", {}, {}),
    ("random K-means start", {}, {"kmeans_init": "random"}),
    ("no log1p", {"log_heavy_tailed": False}, {"log_heavy_tailed": False}),
    ("C = 1 (diffprivlib default)", {}, {"lr_C": 1.0}),
    ("row norm from per-column bounds", {}, {"categorical": None}),
    ("epsilon_split 0.5", {}, {"epsilon_split": 0.5}),
]


def ablation(args) -> list[dict]:
    """What each choice of the DP method buys: one change from the defaults at a time."""
    from sklearn.metrics import roc_auc_score

    import datasets
    from methods.dp import DPMethod
    from methods.plaintext import reference_kmeans

    out = []
    for name, data_overrides, params in ABLATION:
        overrides = {**DPMethod().dataset_overrides, **data_overrides}
        split = datasets.load(_dataset_cfg(args.dataset, args.subsample, **overrides), args.split_seed)
        for eps in args.epsilons:
            aucs, ratios = [], []
            for seed in args.seeds:
                kw = {"categorical": dict(split.preprocessor.categorical), **params}
                m = DPMethod(n_clusters=args.k, random_state=seed, epsilon=eps, **kw)
                m.fit(split.train.X, split.train.y, split.train.X_segment)
                proba = m.predict_proba(split.test.X, split.test.X_segment)[:, 1]
                aucs.append(roc_auc_score(split.test.y, proba))
                ref = reference_kmeans(split.train.X_segment, args.k, seed).inertia_
                ratios.append(inertia(split.train.X_segment, m.cluster_centers_) / ref)
            row = {"change": name, "epsilon": eps, "auc": float(np.median(aucs)),
                   "ratio_same_space": float(np.median(ratios))}
            out.append(row)
            print(f"eps={eps:<5g} {name:34s} auc={row['auc']:.4f} "
                  f"inertia ratio (same space)={row['ratio_same_space']:.3f}", flush=True)
    return out


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
    ap.add_argument("--kmeans-noise", action="store_true",
                    help="only measure the K-means noise scales (diffprivlib vs DPKMeans vs Su et al.)")
    ap.add_argument("--ablation", action="store_true",
                    help="one change from the DP method's defaults at a time (use with --epsilons 1)")
    args = ap.parse_args(argv)
    if args.ablation:
        return {"ablation": ablation(args)}
    if args.kmeans_noise:
        res = {}
        for d in (5, 20):
            r = res[d] = kmeans_noise(d)
            su, dl, us = r["su_per_iter"], r["diffprivlib_per_iter"], r["ours_per_iter"]
            print(f"d={d}: requested ε=1 over {r['iterations']} iterations; per iteration "
                  f"Su et al. count={su['count']:.4f} sum/dim={su['sum_per_dim']:.4f} | "
                  f"diffprivlib measured count={dl['count']:.4f} sum/dim={dl['sum_per_dim']:.4f} "
                  f"-> spent {r['diffprivlib_spent']:.4f} | DPKMeans measured count={us['count']:.4f} "
                  f"sum/dim={us['sum_per_dim']:.4f} -> spent {r['ours_spent']:.4f} "
                  f"(diffprivlib's sum noise scale {r['diffprivlib_sum_noise_scale']:.1f}, "
                  f"a plain Laplace at its ε: {1 / dl['sum_per_dim']:.1f})", flush=True)
        return res

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
        auc = roc_auc_score(plain.test.y, pm.predict_proba(plain.test.X, plain.test.X_segment)[:, 1])
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
