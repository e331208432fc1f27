"""Encrypted logistic regression on bank_full: time, bytes, op counts and AUC against its twins.

``python -m benchmarks.perf he_logreg [--subsample N] [--n-iter T] [--include-duration]``

Trains on all model features plus the one-hot of the plaintext k = 4 segmentation (the encrypted
K-means stage supplies the same columns encrypted once the pipeline is wired), then in the same
run: the identical gradient descent in numpy and scikit-learn's LogisticRegression (same
features, same class weights). The efficiency compares the measured training wall time with the
op-count lower bound: every homomorphic operation the protocol performed, priced by per-op times
measured in this run on one core, with no Python, waiting or messaging on top.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import tenseal as ts
from omegaconf import OmegaConf
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

import datasets
from methods._util import CONF
from methods.base import peak_rss_mb, with_segments
from methods.he.logreg import HELogisticRegression
from methods.he.logreg_server import _Lazy
from methods.plaintext import reference_kmeans

TRAIN_PHASES = ("he_load", "he_setup", "he_setup_keyholder", "he_scores", "he_refresh", "he_gradient",
                "he_update", "he_finish")
ITER_PHASES = ("he_scores", "he_refresh", "he_gradient", "he_update")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.perf he_logreg", description=__doc__)
    p.add_argument("--subsample", type=int, default=None, help="rows of bank_full (stratified); default all")
    p.add_argument("--n-iter", type=int, default=10, help="Nesterov iterations (default 10)")
    p.add_argument("--k", type=int, default=4, help="segments whose one-hot joins the features (default 4)")
    p.add_argument("--include-duration", action="store_true", help="dataset.include_duration=true")
    p.add_argument("--split-seed", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--op-reps", type=int, default=20, help="repetitions per op in the per-op timing")
    return p


def _features(args):
    cfg = OmegaConf.load(CONF / "dataset" / "bank_full.yaml")
    if os.environ.get("PRIVMARK_DATA_DIR"):
        cfg.data_dir = os.environ["PRIVMARK_DATA_DIR"]
    cfg.include_duration = bool(args.include_duration)
    cfg.subsample = args.subsample
    split = datasets.load(cfg, split_seed=args.split_seed)
    km = reference_kmeans(split.train.X_segment, args.k, args.seed)
    Xtr = with_segments(split.train.X, km.labels_, args.k)
    Xte = with_segments(split.test.X, km.predict(split.test.X_segment), args.k)
    return Xtr, split.train.y, Xte, split.test.y


def _median_time(fn, reps: int) -> float:
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def per_op_seconds(est: HELogisticRegression, reps: int) -> dict[str, float]:
    """Median seconds of each operation kind, on the fitted run's own contexts and levels."""
    server, kh = est.server_, est.key_holder_
    ctx, slots = server.ctx, est.params_.slots
    rng = np.random.default_rng(0)
    x1, x2 = server.x_z[0][0], server.x_g[0][0]
    v = server.load(kh.encrypt(np.full(slots, 0.1)))
    v1 = server.load(kh.encrypt(np.full(slots, 0.1)))
    with _Lazy(ctx):
        x1 * v1                      # switch v1 down to L1
        prod = x1 * v1
    r = server.load(kh.encrypt(rng.normal(size=slots)))
    r2 = (r * r) * (r * r)           # L2, like the residual
    fresh = server.load(kh.encrypt(rng.normal(size=slots)))
    mask = rng.uniform(-1, 1, slots)
    payload = server.dump(prod)
    fresh_payload = kh.encrypt(np.full(slots, 0.3))

    def tensor(a, b):
        def f():
            with _Lazy(ctx):
                a * b
        return f

    def add_prod():
        with _Lazy(ctx):
            prod + prod

    out = {
        "tensor_L1": _median_time(tensor(x1, v1), reps),
        "tensor_L2": _median_time(tensor(x2, r2), reps),
        "mul_relin_L0": _median_time(lambda: fresh * fresh, reps),
        "add": _median_time(add_prod, reps),
        "mul_plain": _median_time(lambda: server._mask(prod, mask), reps),
        "encrypt": _median_time(lambda: ts.ckks_vector(kh._ctx, np.full(slots, 0.3)), reps),
        "decrypt": _median_time(lambda: ts.ckks_vector_from(kh._ctx, payload).decrypt(), reps),
        # serialized sizes differ: the server sends unrelinearised products, the key holder fresh
        # ciphertexts; price each side with its own kind
        "serialize_product": _median_time(lambda: prod.serialize(), reps),
        "serialize_fresh": _median_time(lambda: fresh.serialize(), reps),
        "deserialize_product": _median_time(lambda: ts.ckks_vector_from(ctx, payload), reps),
        "deserialize_fresh": _median_time(lambda: ts.ckks_vector_from(ctx, fresh_payload), reps),
    }
    del v
    return out


def lower_bound_s(est: HELogisticRegression, t: dict[str, float]) -> tuple[float, dict]:
    """Op counts of the training (after the owner's data encryption) times per-op seconds: one
    core, nothing but the ops. Compared with the training phases' wall time."""
    ops = est.costs_.extra["he_ops"]
    kho = est.costs_.extra["keyholder_ops"]
    tensor = 0.5 * (t["tensor_L1"] + t["tensor_L2"])
    parts = {
        "tensor": ops["tensor"] * tensor,
        "mul_relin": (ops["mul_relin"] + ops["mul_scalar"]) * t["mul_relin_L0"],
        "mul_plain": ops["mul_plain"] * t["mul_plain"],
        "add": ops["add"] * t["add"],
        "encrypt": (kho["encrypt"] + ops["encrypt"]) * t["encrypt"],
        "decrypt": kho["decrypt"] * t["decrypt"],
        # each message is serialized by its sender and parsed by its receiver
        "serialize": ops["serialize"] * t["serialize_product"] + kho["encrypt"] * t["serialize_fresh"],
        "deserialize": (ops["deserialize"] * t["deserialize_fresh"]
                        + kho["decrypt"] * t["deserialize_product"]),
    }
    return float(sum(parts.values())), parts


def _bytes_vs_floor(he, n: int) -> dict:
    """Bytes per record, and one training iteration's measured bytes against the floor
    (:func:`methods.he.logreg_protocol.iteration_bytes_floor`)."""
    from methods.he.logreg_protocol import iteration_bytes_floor

    stages = he.costs_.extra.get("channel_stages", {})
    iters = max(int(he.n_iter), 1)
    per_iter = stages.get("training", {}).get("bytes", 0) / iters
    floor = iteration_bytes_floor(n, len(he.w_), he.params_)
    return {"bytes_per_customer": round(he.costs_.bytes_total / n, 1),
            "training_bytes_per_iteration": int(per_iter),
            "floor": {k: round(v, 1) for k, v in floor.items()},
            "training_over_floor": round(per_iter / floor["per_iteration"], 2)}


def main(argv: list[str]) -> dict:
    args = _parser().parse_args(argv)
    Xtr, ytr, Xte, yte = _features(args)
    kw = dict(n_iter=args.n_iter, random_state=args.seed)

    t = time.perf_counter()
    pt = HELogisticRegression(encrypted=False, **kw).fit(Xtr, ytr)
    plaintext_gd_wall = time.perf_counter() - t

    cpu0, t = time.process_time(), time.perf_counter()
    he = HELogisticRegression(**kw).fit(Xtr, ytr)
    he_wall = time.perf_counter() - t
    he_cpu = time.process_time() - cpu0

    t = time.perf_counter()
    sk = LogisticRegression(max_iter=5000, class_weight=he.class_weight).fit(Xtr, ytr)
    sklearn_wall = time.perf_counter() - t

    phases = he.costs_.phases
    train_wall = sum(phases.get(p, 0.0) for p in TRAIN_PHASES)
    per_iter = sum(phases.get(p, 0.0) for p in ITER_PHASES) / args.n_iter
    op_s = per_op_seconds(he, args.op_reps)
    lb, lb_parts = lower_bound_s(he, op_s)

    auc = {
        "he": roc_auc_score(yte, he.predict_proba(Xte)[:, 1]),
        "plaintext_gd": roc_auc_score(yte, pt.predict_proba(Xte)[:, 1]),
        "sklearn": roc_auc_score(yte, sk.predict_proba(Xte)[:, 1]),
    }
    z_test = he.decision_function(Xte)
    return {
        "benchmark": "he_logreg",
        "n": int(len(ytr)),
        "n_test": int(len(yte)),
        "d": int(he.server_.d),  # features + k one-hot + intercept
        "k": args.k,
        "include_duration": bool(args.include_duration),
        "iterations": args.n_iter,
        "rounds": he.costs_.rounds,
        "he_wall_s": he_wall,
        "he_cpu_s": he_cpu,
        "he_train_wall_s": train_wall,
        "he_encrypt_s": phases.get("he_encrypt", 0.0),
        "per_iteration_s": per_iter,
        "plaintext_gd_wall_s": plaintext_gd_wall,
        "sklearn_wall_s": sklearn_wall,
        "ratio_he_to_plaintext_gd": he_wall / plaintext_gd_wall,
        "op_counts": {"server": he.costs_.extra["he_ops"], "keyholder": he.costs_.extra["keyholder_ops"],
                      "owner_data_encryptions": he.costs_.extra["owner_data_encryptions"]},
        "per_op_s": op_s,
        "lower_bound_s": lb,
        "lower_bound_parts_s": lb_parts,
        "efficiency": lb / train_wall,
        "bytes_total": he.costs_.bytes_total,
        **_bytes_vs_floor(he, len(ytr)),
        "peak_rss_mb": peak_rss_mb(),
        "auc": auc,
        "auc_gap_he_vs_plaintext_gd": auc["he"] - auc["plaintext_gd"],
        "auc_gap_he_vs_sklearn": auc["he"] - auc["sklearn"],
        "max_abs_weight_diff_he_vs_plaintext_gd": float(np.abs(he.w_ - pt.w_).max()),
        "out_of_interval": {
            "interval": he.interval,
            "plaintext_gd_train_max_over_iterations": float(pt.out_of_interval_.max()),
            "he_train_final": he.out_of_interval_final_,
            "he_test_final": float(np.mean(np.abs(z_test) > he.interval)),
            "max_abs_score_test": float(np.abs(z_test).max()),
        },
        "class_weights": {"mode": he.class_weight, "counts_from": "owner-known labels",
                          "weights": list(he.class_weights_)},
        "params": he.costs_.extra["he_logreg"]["params"],
        "phases_s": phases,
        "parties": {k: vars(v) for k, v in he.costs_.parties.items()},
        "machine": {"cpus": os.cpu_count(), "loadavg_1m": os.getloadavg()[0]},
    }
