"""The Flower App's own run config (``[tool.flwr.app.config]`` in pyproject.toml, overridden by
``flwr run . --run-config``): with it, ``flwr run .`` runs the apps without the harness.

The harness instead prepares a run directory (``run-dir``) with each client's rows and the
settings; then nothing here is used. Without one, every client loads the dataset named by the run
config, splits the training rows exactly as the harness does (:func:`~.partition.make_partition`
with the same seed) and keeps only its own partition (``partition-id`` of ``num-partitions`` from
its node config); the server loads only the held-out test rows.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

import numpy as np


def run_dir_setting(run_config: Mapping) -> str:
    return str(run_config.get("run-dir", "") or "")


def _split(run_config: Mapping):
    return _load_split(str(run_config.get("dataset", "bank_full")), int(run_config.get("subsample", 0)),
                       int(run_config.get("split-seed", 0)), bool(run_config.get("include-duration", False)))


@functools.cache
def _load_split(name: str, subsample: int, split_seed: int, include_duration: bool):
    from omegaconf import OmegaConf

    import datasets
    from methods._util import CONF

    path = CONF / "dataset" / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in (CONF / "dataset").glob("*.yaml"))
        raise ValueError(f"run config dataset={name!r}; expected one of {known}")
    cfg = OmegaConf.load(path)
    cfg.subsample = subsample or None
    cfg.include_duration = include_duration
    return datasets.load(cfg, split_seed=split_seed)


def _int_or_none(value) -> int | None:
    return int(value) if int(value) > 0 else None


def spec(run_config: Mapping, n_features: int, n_train: int) -> dict:
    """The server's settings (what the harness writes to ``run.json``) from the run config."""
    seed, k = int(run_config.get("seed", 0)), int(run_config.get("k", 4))
    noise = float(run_config.get("noise-multiplier", 0.0))
    dp = None
    if noise > 0:
        dp = {"noise_multiplier": noise, "clipping_norm": float(run_config.get("clipping-norm", 1.0)),
              "delta": float(run_config.get("delta", 1e-5))}
    return {
        "tasks": ["kmeans", "logreg"], "num_clients": int(run_config.get("num-clients", 10)),
        "n_clusters": k, "seed": seed, "tol": float(run_config.get("tol", 1e-4)),
        "max_iter": int(run_config.get("max-iter", 300)),
        "seed_candidates": _int_or_none(run_config.get("seed-candidates", 0)) or k,
        "rounds": int(run_config.get("rounds", 20)), "local_epochs": int(run_config.get("local-epochs", 1)),
        "batch_size": int(run_config.get("batch-size", 64)),
        "learning_rate": float(run_config.get("learning-rate", 0.5)),
        "l2": 1.0 / (float(run_config.get("C", 1.0)) * n_train), "n_features": n_features, "dp": dp,
        "keep_server_view": False, "warmup": "ping",
    }


def server_inputs(run_config: Mapping) -> tuple[dict, dict[str, np.ndarray], np.ndarray | None]:
    """Settings, the held-out set and the initial centers (``init="reference"``) for the server."""
    split = _split(run_config)
    tr, te = split.train, split.test
    settings = spec(run_config, tr.X.shape[1], len(tr))
    init = None
    if str(run_config.get("init", "k-fed")) == "reference":
        from methods.kmeans_core import reference_init

        init = reference_init(tr.X_segment, settings["n_clusters"], settings["seed"])
    return settings, {"X": te.X, "y": te.y, "X_segment": te.X_segment}, init


def client_rows(run_config: Mapping, partition_id: int, num_partitions: int) -> dict[str, np.ndarray]:
    """Client ``partition_id``'s training rows, split as the harness splits them."""
    from methods.federated.partition import make_partition, onehot_groups

    split = _split(run_config)
    tr = split.train
    scheme = str(run_config.get("partition", "iid"))
    groups = None
    if scheme == "natural":
        groups, _ = onehot_groups(tr.X, split.feature_names, str(run_config.get("partition-column", "job")))
    parts = make_partition(scheme, tr.y, None if scheme == "natural" else num_partitions,
                           int(run_config.get("seed", 0)), float(run_config.get("alpha", 0.5)), groups)
    if not 0 <= partition_id < len(parts):
        raise ValueError(f"partition-id={partition_id} but the {scheme} split has {len(parts)} clients")
    idx = parts[partition_id]
    return {"X": tr.X[idx], "y": tr.y[idx], "X_segment": tr.X_segment[idx]}
