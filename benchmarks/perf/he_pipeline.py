"""The whole ``method=he`` job, encrypted end to end: wall time, bytes and rounds per stage, AUC.

``python -m benchmarks.perf he_pipeline [--subsample N] [--workers W] [--include-duration] [--k K]
[--transport grpc --network lan|wan|<profile>]``

Runs the job exactly as ``python -m benchmarks.run method=he`` does (``benchmarks.run.execute`` on
the composed config; leakage attacks off unless ``--leakage``): secure k-means++ seeding, Lloyd on
ciphertexts, the final one-hot assignments served under the logistic regression's public context,
encrypted training, the owner's decryption and scoring of the test split. Then, for reference, the
same gradient descent in numpy on the same columns and segments (identical polynomial, schedule,
iterations) and the ``method=plaintext`` job on the same split.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from hydra import compose, initialize_config_dir
from sklearn.metrics import roc_auc_score

import methods
from benchmarks.perf import _network
from benchmarks.run import execute
from methods._util import CONF
from methods.base import peak_rss_mb
from methods.he.logreg import reference_gd
from methods.he.method import STAGES


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.perf he_pipeline", description=__doc__)
    p.add_argument("--subsample", type=int, default=None, help="rows of bank_full (stratified); default all")
    p.add_argument("--workers", type=int, default=1, help="K-means worker processes (method.workers)")
    p.add_argument("--include-duration", action="store_true", help="dataset.include_duration=true")
    p.add_argument("--k", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--split-seed", type=int, default=0)
    p.add_argument("--leakage", action="store_true", help="also run the leakage attacks (as the runner does)")
    _network.add_arguments(p)
    p.add_argument("overrides", nargs="*", help="further Hydra overrides, e.g. method.lr_n_iter=12")
    return p


def _config(args, method: str):
    overrides = [f"method={method}", f"k={args.k}", f"seed={args.seed}", f"split_seed={args.split_seed}",
                 f"dataset.include_duration={str(bool(args.include_duration)).lower()}",
                 f"leakage.enabled={str(bool(args.leakage)).lower()}"]
    if args.subsample:
        overrides.append(f"dataset.subsample={args.subsample}")
    if os.environ.get("PRIVMARK_DATA_DIR"):
        overrides.append(f"dataset.data_dir={os.environ['PRIVMARK_DATA_DIR']}")
    overrides.append(f"network={args.network}")
    if method == "he":
        overrides += [f"method.workers={args.workers}", f"method.transport={args.transport}", *args.overrides]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("config", overrides=overrides)


def _run(cfg) -> tuple[dict, object, object]:
    """``execute`` as the runner calls it, keeping the fitted method and the split it loaded."""
    import datasets

    built, loaded = [], []
    build, load = methods.build, datasets.load

    def keep_build(*a, **kw):
        built.append(build(*a, **kw))
        return built[-1]

    def keep_load(*a, **kw):
        loaded.append(load(*a, **kw))
        return loaded[-1]

    methods.build, datasets.load = keep_build, keep_load
    try:
        record = execute(cfg)
    finally:
        methods.build, datasets.load = build, load
    return record, built[-1], loaded[-1]


def _floors(he, lr, stages: dict, n: int, bytes_total: int) -> dict:
    """Bytes per customer, and the clustering's and the training's bytes per iteration against
    their floors (``lloyd_bytes_floor``, ``iteration_bytes_floor``)."""
    from methods.he.kmeans_protocol import lloyd_bytes_floor
    from methods.he.logreg_protocol import iteration_bytes_floor

    km = he.kmeans_
    k_floor = lloyd_bytes_floor(n, he.n_clusters, km.cluster_centers_.shape[1], km.params_)
    k_iter = stages["clustering"]["bytes"] / max(int(km.n_iter_), 1)
    l_floor = iteration_bytes_floor(n, len(lr.w_), lr.params_)
    l_iter = stages["lr_training"]["bytes"] / max(int(lr.n_iter), 1)
    return {"bytes_per_customer": round(bytes_total / n, 1),
            "kmeans_bytes_per_iteration": int(k_iter),
            "kmeans_floor_per_iteration": int(k_floor["per_iteration"]),
            "kmeans_over_floor": round(k_iter / k_floor["per_iteration"], 2),
            "lr_bytes_per_iteration": int(l_iter), "lr_floor_per_iteration": int(l_floor["per_iteration"]),
            "lr_over_floor": round(l_iter / l_floor["per_iteration"], 2)}


def main(argv: list[str]) -> dict:
    args = _parser().parse_args(argv)
    t = time.perf_counter()
    record, he, split = _run(_config(args, "he"))
    job_wall = time.perf_counter() - t
    costs = record["costs"]
    if he.predictor != "encrypted":
        raise SystemExit(f"method.predictor={he.predictor!r}: this benchmark measures predictor=encrypted")

    # the identical descent in numpy on the very columns the server trained on
    lr = he.model_
    tr, te = split.train, split.test
    A = np.hstack([he.model_features(tr.X, tr.X_segment), np.ones((len(tr.y), 1))])
    A[:, tr.X.shape[1]:-1] = np.eye(he.n_clusters)[he.labels_]  # the served (training) assignments
    t = time.perf_counter()
    w_ref, out_of_interval = reference_gd(A, tr.y, n_iter=lr.n_iter, learning_rate=lr.learning_rate, l2=lr.l2,
                                          interval=lr.interval, w_neg=lr.class_weights_[0],
                                          w_pos=lr.class_weights_[1])
    gd_wall = time.perf_counter() - t
    Ate = np.hstack([he.model_features(te.X, te.X_segment), np.ones((len(te.y), 1))])
    auc_gd = float(roc_auc_score(te.y, Ate @ w_ref))

    plain, _, _ = _run(_config(args, "plaintext"))
    stages = costs["stages"]
    return {
        "benchmark": "he_pipeline",
        "n_train": record["data"]["n_train"],
        "n_test": record["data"]["n_test"],
        "d": record["data"]["n_features"],
        "k": args.k,
        "include_duration": bool(args.include_duration),
        "workers": args.workers,
        "kmeans_iterations": int(he.n_iter_),
        "lr_iterations": int(lr.n_iter),
        "fit_wall_s": costs["wall_s"],
        "fit_cpu_s": costs["cpu_s"],
        "job_wall_s": job_wall,
        "bytes_total": costs["bytes_total"],
        "rounds": costs["rounds"],
        "parties": costs["parties"],
        "peak_rss_mb": peak_rss_mb(),
        "auc": {"he": record["metrics"]["auc"], "plaintext_gd_same_segments": auc_gd,
                "plaintext_method": plain["metrics"]["auc"]},
        "auc_gap_he_vs_plaintext_gd": record["metrics"]["auc"] - auc_gd,
        "auc_gap_he_vs_plaintext_method": record["metrics"]["auc"] - plain["metrics"]["auc"],
        "max_abs_weight_diff_he_vs_plaintext_gd": float(np.abs(lr.w_ - w_ref).max()),
        "plaintext_gd_wall_s": gd_wall,
        "plaintext_method_fit_wall_s": plain["costs"]["wall_s"],
        "metrics": {m: record["metrics"][m] for m in ("precision", "recall", "f1", "pr_auc", "accuracy",
                                                      "weighted_precision", "weighted_recall")},
        "ari_vs_plaintext": record["segmentation"]["ari_vs_plaintext"],
        "out_of_interval_train_max_over_iterations": float(out_of_interval.max()),
        "machine": {"cpus": os.cpu_count(), "loadavg_1m": os.getloadavg()[0]},
        **_floors(he, lr, stages, record["data"]["n_train"], costs["bytes_total"]),
        # last: per-stage wall seconds, bytes and rounds
        "stages": {s: stages[s] for s in STAGES if s in stages},
        "total_wall_s": costs["wall_s"] + stages["scoring"]["wall_s"],
        # the run on its network (measured through the shaped link with --transport grpc)
        **_network.summary(args.transport, _network.profile(args.network), costs["wall_s"],
                           int(costs["bytes_total"]), int(costs["rounds"]), int(record["data"]["n_train"]),
                           costs.get("wire")),
        "costs_network": costs["network"],
    }
