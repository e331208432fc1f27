"""Federated method: wall time with engine start-up apart, seconds and bytes per round, test AUC; with
``--compare``, the ARI against centralised Lloyd from the same initial centers and the AUC gap to
the plaintext logistic regression; with ``--jobs N``, N fits in one process (seeds 0..N-1, as the
jobs of a sweep that one process runs), each job's start-up, with Ray's node shared or not.

    uv run python -m benchmarks.perf federated [--clients 10] [--rounds 20] [--partition iid] ...
    uv run python -m benchmarks.perf federated --engine deployment --clients 10
    uv run python -m benchmarks.perf federated --jobs 9 [--no-ray-reuse]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

from methods._util import CONF


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.perf federated",
                                description=__doc__.split("\n")[0])
    p.add_argument("--clients", type=int, default=10, help="clients (iid / dirichlet)")
    p.add_argument("--rounds", type=int, default=20, help="FedAvg rounds")
    p.add_argument("--partition", default="iid", choices=["iid", "dirichlet", "natural"])
    p.add_argument("--alpha", type=float, default=0.5, help="Dirichlet concentration")
    p.add_argument("--k", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dataset", default="bank_full")
    p.add_argument("--subsample", type=int, default=None, help="rows (default: the full data)")
    p.add_argument("--init", default="reference", choices=["reference", "k-fed"],
                   help="initial centers (reference: the plaintext k-means++ ones, for an exact comparison)")
    p.add_argument("--noise-multiplier", type=float, default=None, help="client-level DP on FedAvg")
    p.add_argument("--clipping-norm", type=float, default=1.0)
    p.add_argument("--delta", type=float, default=1e-5)
    p.add_argument("--compare", action="store_true", help="also fit the plaintext reference and compare")
    p.add_argument("--engine", default="simulation", choices=["simulation", "deployment"])
    p.add_argument("--max-iter", type=int, default=300, help="K-means rounds at most")
    p.add_argument("--jobs", type=int, default=1, help="fits in this process, seeds 0..jobs-1")
    p.add_argument("--no-ray-reuse", action="store_true", help="a Ray node per fit (simulation)")
    return p.parse_args(argv)


def main(argv: list[str]) -> dict:
    args = parse(argv)
    from omegaconf import OmegaConf

    import datasets

    cfg = OmegaConf.load(CONF / "dataset" / f"{args.dataset}.yaml")
    cfg.subsample = args.subsample
    split = datasets.load(cfg, split_seed=0)
    tr, te = split.train, split.test
    dp = None
    if args.noise_multiplier is not None:
        dp = {"noise_multiplier": args.noise_multiplier, "clipping_norm": args.clipping_norm,
              "delta": args.delta}
    if args.jobs > 1:
        return sweep(args, tr, te, split.feature_names, dp)
    method = _method(args, args.seed, dp)
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    method.fit(tr.X, tr.y, tr.X_segment, feature_names=split.feature_names,
               eval_set=(te.X, te.y, te.X_segment))
    wall = time.perf_counter() - t0
    costs = method.costs_.to_dict()
    fed = costs["federated"]
    fedavg = [r for r in fed["per_round"] if r["phase"] == "fedavg"]
    kmeans = [r for r in fed["per_round"] if r["phase"] == "kmeans"]
    from sklearn.metrics import roc_auc_score

    auc = float(roc_auc_score(te.y, method.predict_proba(te.X, te.X_segment)[:, 1]))
    out = {
        "benchmark": "federated", "engine": args.engine, "dataset": args.dataset, "n_train": len(tr),
        "partition": args.partition,
        "alpha": args.alpha if args.partition == "dirichlet" else None, "clients": fed["num_clients"],
        "client_sizes": fed["client_sizes"], "rounds": args.rounds, "k": args.k, "init": args.init,
        "wall_s": wall, "startup_s": costs["startup_s"], "train_s": costs["train_s"],
        "engine_stop_s": costs["phases"]["engine_stop"],
        "startup_parts": {k: fed[k] for k in ("engine_boot_s", "warmup_s", "import_s", "ray_start_s",
                                               "ray_connect_s", "ray_reused", "launch_s") if k in fed},
        "kmeans_rounds": fed["kmeans_rounds"], "kmeans_s": sum(r["seconds"] for r in kmeans),
        "round_s": [r["seconds"] for r in fedavg],
        "round_s_median": statistics.median(r["seconds"] for r in fedavg),
        "kmeans_round_s_median": statistics.median(r["seconds"] for r in kmeans),
        "bytes_per_round": statistics.median(r["bytes_down"] + r["bytes_up"] for r in fedavg),
        "kmeans_bytes_per_round": statistics.median(r["bytes_down"] + r["bytes_up"] for r in kmeans),
        "bytes_total": method.costs_.bytes_total, "superlink_traffic": fed.get("superlink_traffic"),
        "auc": auc, "auc_per_round": [r["auc"] for r in method.history_["fedavg"]],
        "labels_test": np.bincount(method.segment(te.X_segment), minlength=args.k).tolist(),
        "epsilon": method.privacy_.epsilon, "delta": method.privacy_.delta,
        "loadavg_1min_before": load0, "loadavg_1min_after": os.getloadavg()[0], "cpus": os.cpu_count(),
    }
    if args.compare:
        from sklearn.metrics import adjusted_rand_score

        from methods.plaintext import PlaintextMethod, reference_kmeans

        lloyd = reference_kmeans(tr.X_segment, args.k, args.seed, init=method.initial_centers_)
        plain = PlaintextMethod(n_clusters=args.k, random_state=args.seed).fit(tr.X, tr.y, tr.X_segment)
        auc_plain = float(roc_auc_score(te.y, plain.predict_proba(te.X, te.X_segment)[:, 1]))
        out.update(
            ari_vs_lloyd_train=float(adjusted_rand_score(lloyd.labels_, method.labels_)),
            ari_vs_lloyd_test=float(adjusted_rand_score(lloyd.predict(te.X_segment),
                                                        method.segment(te.X_segment))),
            lloyd_iter=int(lloyd.n_iter_),
            # same initial centers, so cluster i corresponds in both
            max_center_diff=float(np.abs(lloyd.cluster_centers_ - method.cluster_centers_).max()),
            auc_plaintext=auc_plain, auc_gap=auc - auc_plain,
        )
    return out


def _method(args, seed: int, dp):
    from methods.federated import FederatedMethod

    return FederatedMethod(n_clusters=args.k, random_state=seed,
                           num_clients=None if args.partition == "natural" else args.clients,
                           partition=args.partition, alpha=args.alpha, rounds=args.rounds, init=args.init,
                           max_iter=args.max_iter, dp=dp, engine=args.engine,
                           ray_reuse=not args.no_ray_reuse)


def sweep(args, tr, te, feature_names, dp) -> dict:
    """``args.jobs`` fits one after another in this process, as one process of a sweep runs them."""
    from methods.federated.simulation import stop_shared_ray_node

    rows = []
    t0 = time.perf_counter()
    for seed in range(args.jobs):
        method = _method(args, seed, dp)
        t = time.perf_counter()
        method.fit(tr.X, tr.y, tr.X_segment, feature_names=feature_names, eval_set=(te.X, te.y, te.X_segment))
        c = method.costs_.to_dict()
        rows.append({"seed": seed, "wall_s": time.perf_counter() - t, "startup_s": c["startup_s"],
                     "train_s": c["train_s"], "ray_start_s": c["federated"].get("ray_start_s")})
    stop_shared_ray_node()
    total = time.perf_counter() - t0
    return {"benchmark": "federated-sweep", "jobs": args.jobs, "ray_reuse": not args.no_ray_reuse,
            "engine": args.engine, "n_train": len(tr), "clients": args.clients, "rounds": args.rounds,
            "total_s": total, "startup_s_total": sum(r["startup_s"] for r in rows),
            "train_s_total": sum(r["train_s"] for r in rows),
            "ray_started": sum(1 for r in rows if r["ray_start_s"]), "per_job": rows,
            "loadavg_1min_after": os.getloadavg()[0]}
