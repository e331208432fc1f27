"""Federated method: wall time with Ray start-up apart, seconds and bytes per round, test AUC; with
``--compare``, the ARI against centralised Lloyd from the same initial centers and the AUC gap to
the plaintext logistic regression.

    uv run python -m benchmarks.perf federated [--clients 10] [--rounds 20] [--partition iid] ...
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
    return p.parse_args(argv)


def main(argv: list[str]) -> dict:
    args = parse(argv)
    from omegaconf import OmegaConf

    import datasets
    from methods.federated import FederatedMethod

    cfg = OmegaConf.load(CONF / "dataset" / f"{args.dataset}.yaml")
    cfg.subsample = args.subsample
    split = datasets.load(cfg, split_seed=0)
    tr, te = split.train, split.test
    dp = None
    if args.noise_multiplier is not None:
        dp = {"noise_multiplier": args.noise_multiplier, "clipping_norm": args.clipping_norm,
              "delta": args.delta}
    method = FederatedMethod(n_clusters=args.k, random_state=args.seed,
                             num_clients=None if args.partition == "natural" else args.clients,
                             partition=args.partition, alpha=args.alpha, rounds=args.rounds, init=args.init,
                             dp=dp)
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    method.fit(tr.X, tr.y, tr.X_segment, feature_names=split.feature_names,
               eval_set=(te.X, te.y, te.X_segment))
    wall = time.perf_counter() - t0
    fed = method.costs_.extra["federated"]
    fedavg = [r for r in fed["per_round"] if r["phase"] == "fedavg"]
    kmeans = [r for r in fed["per_round"] if r["phase"] == "kmeans"]
    from sklearn.metrics import roc_auc_score

    auc = float(roc_auc_score(te.y, method.predict_proba(te.X, te.X_segment)[:, 1]))
    out = {
        "benchmark": "federated", "dataset": args.dataset, "n_train": len(tr), "partition": args.partition,
        "alpha": args.alpha if args.partition == "dirichlet" else None, "clients": fed["num_clients"],
        "client_sizes": fed["client_sizes"], "rounds": args.rounds, "k": args.k, "init": args.init,
        "wall_s": wall, "ray_start_s": fed["ray_start_s"], "import_s": fed["import_s"],
        "ray_init_s": fed["ray_init_s"],
        "worker_warmup_s": fed["worker_warmup_s"], "training_s": wall - fed["ray_start_s"],
        "engine_s": fed["engine_s"], "shutdown_s": fed["shutdown_s"],
        "kmeans_rounds": fed["kmeans_rounds"], "kmeans_s": sum(r["seconds"] for r in kmeans),
        "round_s": [r["seconds"] for r in fedavg],
        "round_s_median": statistics.median(r["seconds"] for r in fedavg),
        "bytes_per_round": statistics.median(r["bytes_down"] + r["bytes_up"] for r in fedavg),
        "kmeans_bytes_per_round": statistics.median(r["bytes_down"] + r["bytes_up"] for r in kmeans),
        "bytes_total": method.costs_.bytes_total, "auc": auc,
        "auc_per_round": [r["auc"] for r in method.history_["fedavg"]],
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
