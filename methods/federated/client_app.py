"""The client (a bank branch): holds its rows, answers the server's three kinds of requests.

- ``train.seed``: local k-means candidates with their sizes (k-FED seeding), plus the row count and
  per-feature sums and sums of squares (the server needs the global variance for the tolerance).
- ``train.kmeans``: per-cluster sums and counts of its rows for the global centers it was sent.
- ``train``: local epochs of minibatch SGD on logistic regression from the global model (FedAvg).

Every reply carries ``client-id`` (the node config's ``partition-id``) and the CPU seconds it took.
The client finds its rows, in this order, through ``node_config["data-path"]`` (the Deployment
Engine: each SuperNode is started with its own file and sees no other),
``<run-dir>/client-<partition-id>.npz`` where ``run-dir`` comes from the run config or the
``PRIVMARK_FL_RUN_DIR`` variable (the harness's simulation, see :mod:`methods.federated.simulation`),
or else the run config itself (``flwr run .``: the dataset it names, split as the harness splits it,
see :mod:`methods.federated.app_config`).

Imports are kept to what every message needs: under the Deployment Engine each message may be
handled by a fresh ``flwr-clientapp`` process.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
from flwr.app import Array, ArrayRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.clientapp.mod import fixedclipping_mod
from flwr.supercore.differential_privacy import KEY_CLIPPING_NORM

from methods.base import with_segments
from methods.federated.schema import MODEL, SUMS, pack_model, pack_sums, unpack_model
from methods.federated.strategy import aggregate_kmeans, local_sums
from methods.kmeans_core import nearest_center, weighted_kmeans_pp

RUN_DIR_ENV = "PRIVMARK_FL_RUN_DIR"

app = ClientApp()

_CACHE: dict[str, dict[str, np.ndarray]] = {}


def data_path(context: Context) -> Path | None:
    """The client's own rows file, or None when the run config names the data instead."""
    if "data-path" in context.node_config:
        return Path(str(context.node_config["data-path"]))
    run_dir = context.run_config.get("run-dir") or os.environ.get(RUN_DIR_ENV)
    if not run_dir:
        return None
    return Path(str(run_dir)) / f"client-{int(context.node_config['partition-id'])}.npz"


def load_data(context: Context) -> dict[str, np.ndarray]:
    path = data_path(context)
    if path is None:
        from methods.federated.app_config import client_rows

        key = f"run-config:{sorted(context.run_config.items())}:{dict(context.node_config)}"
        if key not in _CACHE:
            if "partition-id" not in context.node_config:
                raise RuntimeError("client data not found: set node_config 'data-path' or 'partition-id' "
                                   f"(with 'num-partitions'), run_config 'run-dir' or {RUN_DIR_ENV}")
            _CACHE[key] = client_rows(context.run_config, int(context.node_config["partition-id"]),
                                      int(context.node_config.get("num-partitions", 0)))
        return _CACHE[key]
    key = f"{path}:{path.stat().st_mtime_ns}"
    if key not in _CACHE:
        with np.load(path) as f:
            _CACHE[key] = {k: f[k] for k in f.files}
    return _CACHE[key]


def _client_id(context: Context) -> int:
    return int(context.node_config.get("partition-id", -1))


def _reply(msg: Message, arrays: dict[str, np.ndarray], metrics: dict, cpu0: float) -> Message:
    metrics = {**metrics, "cpu-s": time.process_time() - cpu0}
    content = RecordDict({
        "arrays": ArrayRecord({k: Array(np.ascontiguousarray(v)) for k, v in arrays.items()}),
        "metrics": MetricRecord(metrics),
    })
    return Message(content=content, reply_to=msg)


@app.query("ping")
def ping(msg: Message, context: Context) -> Message:
    return Message(content=RecordDict(), reply_to=msg)


@app.train("seed")
def propose_seeds(msg: Message, context: Context) -> Message:
    cpu0 = time.process_time()
    X = load_data(context)["X_segment"]
    cfg = msg.content["config"]
    rng = np.random.default_rng([int(cfg["seed"]), _client_id(context)])
    centers, sizes = local_kmeans(X, int(cfg["seed-candidates"]), rng, int(cfg.get("seed-lloyd-iter", 20)))
    arrays = {"candidates": centers, "sizes": sizes, "sum": X.sum(0), "sumsq": (X**2).sum(0)}
    return _reply(msg, arrays, {"num-examples": len(X), "client-id": _client_id(context)}, cpu0)


def local_kmeans(X: np.ndarray, m: int, rng: np.random.Generator, n_iter: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """A client's k-FED proposal: k-means++ and a few Lloyd steps on its own rows; the centers and
    their cluster sizes (empty clusters dropped)."""
    m = min(m, len(X))
    centers = weighted_kmeans_pp(X, np.ones(len(X)), m, rng)
    for _ in range(n_iter):
        sums, counts, _ = local_sums(X, centers)
        new, _ = aggregate_kmeans(centers, [sums], [counts])
        if np.array_equal(new, centers):
            break
        centers = new
    _, counts, _ = local_sums(X, centers)
    keep = counts > 0
    return centers[keep], counts[keep].astype(float)


@app.train("kmeans")
def kmeans_step(msg: Message, context: Context) -> Message:
    cpu0 = time.process_time()
    X = load_data(context)["X_segment"]
    centers = msg.content["arrays"]["centers"].numpy()
    sums, counts, inertia = local_sums(X, centers)
    metrics = {"num-examples": len(X), "inertia": inertia, "client-id": _client_id(context)}
    return _reply(msg, {SUMS: pack_sums(sums, counts)}, metrics, cpu0)


def clip_when_private(msg: Message, context: Context, call_next) -> Message:
    """Flower's client-side clipping, applied when the server's DP wrapper asks for it."""
    if KEY_CLIPPING_NORM in msg.content["config"]:
        return fixedclipping_mod(msg, context, call_next)
    return call_next(msg, context)


def features(data: dict[str, np.ndarray], centers: np.ndarray | None) -> np.ndarray:
    """All model features, plus the one-hot of each row's segment when there are centers."""
    if centers is None:
        return data["X"]
    return with_segments(data["X"], nearest_center(data["X_segment"], centers), len(centers))


def sgd_logreg(Z: np.ndarray, y: np.ndarray, coef: np.ndarray, intercept: float, *, epochs: int,
               batch_size: int, lr: float, l2: float, rng: np.random.Generator
               ) -> tuple[np.ndarray, float, float]:
    """Minibatch SGD on the mean logistic loss + ``l2``/2 ||coef||²; returns the model and final loss."""
    w, b = coef.astype(float).copy(), float(intercept)
    n = len(y)
    for _ in range(epochs):
        order = rng.permutation(n)
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            z = Z[idx] @ w + b
            err = 1.0 / (1.0 + np.exp(-z)) - y[idx]
            w -= lr * (Z[idx].T @ err / len(idx) + l2 * w)
            b -= lr * float(err.mean())
    z = Z @ w + b
    loss = float(np.mean(np.logaddexp(0.0, z) - y * z) + 0.5 * l2 * w @ w)
    return w, b, loss


@app.train(mods=[clip_when_private])
def fedavg_step(msg: Message, context: Context) -> Message:
    cpu0 = time.process_time()
    data = load_data(context)
    cfg = msg.content["config"]
    k = int(cfg.get("n-clusters", 0))
    centers = np.asarray(cfg["centers"], float).reshape(k, -1) if k else None
    coef, intercept = unpack_model(msg.content["arrays"][MODEL].numpy())
    rng = np.random.default_rng([int(cfg["seed"]), int(cfg["server-round"]), _client_id(context)])
    w, b, loss = sgd_logreg(features(data, centers), data["y"].astype(float), coef, intercept,
                            epochs=int(cfg["local-epochs"]),
                            batch_size=int(cfg["batch-size"]), lr=float(cfg["learning-rate"]),
                            l2=float(cfg["l2"]), rng=rng)
    weight = 1 if cfg.get("uniform-weights", False) else len(data["y"])
    metrics = {"num-examples": weight, "train-loss": loss, "client-id": _client_id(context)}
    return _reply(msg, {MODEL: pack_model(w, b)}, metrics, cpu0)
