"""Run one method on one dataset split and write its ``record.json``.

    python -m benchmarks.run method=<plaintext|he|federated|dp> dataset=<bank_full|bank_additional> k=4 seed=0
"""

from __future__ import annotations

import logging
import os
import sys
import time
import traceback
from pathlib import Path

import hydra
import numpy as np
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from benchmarks import metrics
from benchmarks.record import RECORD, empty_record, now, write_json_atomic
from methods.base import peak_rss_mb

log = logging.getLogger("privmark")

TOP_LEVEL = {"dataset", "method", "k", "seed", "split_seed", "threshold", "silhouette_sample"}


class ConfigError(ValueError):
    """Invalid configuration, refused before any work starts."""


def validate(cfg: DictConfig) -> None:
    """Refuse bad configuration early, naming the key and what was expected."""
    unknown = sorted(set(cfg) - TOP_LEVEL - {"hydra"})
    if unknown:
        raise ConfigError(f"unknown config key {unknown[0]!r}; expected one of {sorted(TOP_LEVEL)}")
    for key in ("k", "seed", "split_seed"):
        if not isinstance(cfg[key], int) or isinstance(cfg[key], bool):
            raise ConfigError(f"{key}={cfg[key]!r}; expected an integer")
    if cfg.k < 2:
        raise ConfigError(f"k={cfg.k}; expected k >= 2 segments")
    if cfg.seed < 0 or cfg.split_seed < 0:
        raise ConfigError("seed and split_seed must be >= 0")
    if not 0 < float(cfg.threshold) < 1:
        raise ConfigError(f"threshold={cfg.threshold}; expected a probability in (0, 1)")
    from methods import method_class

    method_class(cfg.method.get("name"))


def _cpu_s() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def execute(cfg: DictConfig, out_dir: Path) -> dict:
    """Run the job described by ``cfg``; returns the ``ok`` record (raises on failure)."""
    import datasets
    from methods import build
    from methods.plaintext import reference_kmeans

    method = build(cfg.method, n_clusters=cfg.k, random_state=cfg.seed)
    dataset_cfg = OmegaConf.merge(cfg.dataset, dict(method.dataset_overrides))
    split = datasets.load(dataset_cfg, split_seed=cfg.split_seed)
    if cfg.k > len(split.train):
        raise ConfigError(f"k={cfg.k} is larger than the training set ({len(split.train)} rows)")
    train, test = split.train, split.test

    wall, cpu = time.perf_counter(), _cpu_s()
    method.fit(train.X, train.y, train.X_segment)
    wall, cpu = time.perf_counter() - wall, _cpu_s() - cpu

    proba = method.predict_proba(test.X, test.X_segment)
    labels = np.asarray(method.segment(test.X_segment))
    reference = reference_kmeans(train.X_segment, cfg.k, cfg.seed)
    segmentation = metrics.segmentation(
        train.X_segment, test.X_segment, labels, np.asarray(method.cluster_centers_), test.y,
        reference_labels_test=reference.predict(test.X_segment),
        silhouette_sample=cfg.silhouette_sample, seed=cfg.split_seed,
    )
    # the plaintext K-means on this run's own segment features: methods that preprocess differently
    # (DP: public scaling) have inertias on different scales, their ratios to this one do compare
    segmentation["inertia_reference"] = metrics.inertia(train.X_segment, reference.cluster_centers_)
    return {
        "metrics": metrics.classification(test.y, proba, cfg.threshold),
        "segmentation": segmentation,
        "costs": {"wall_s": wall, "cpu_s": cpu, "peak_rss_mb": peak_rss_mb(), **method.costs_.to_dict()},
        "privacy": method.privacy_.to_dict(),
        "data": {"source": split.source, "n_train": len(train), "n_test": len(test),
                 "n_features": train.X.shape[1], "segment_features": split.segment_names,
                 "dataset_config": OmegaConf.to_container(dataset_cfg, resolve=True)},
    }


def summary(record: dict, path: Path) -> str:
    head = f"{record['method']} {record['dataset']} k={record['k']} seed={record['seed']}"
    if record["status"] != "ok":
        return f"{head}: FAILED ({record['error']}) -> {path}"
    m, s, c = record["metrics"], record["segmentation"], record["costs"]
    return (f"{head}: auc={m['auc']:.4f} precision={m['precision']:.3f} recall={m['recall']:.3f} "
            f"f1={m['f1']:.3f} w_precision={m['weighted_precision']:.3f} "
            f"w_recall={m['weighted_recall']:.3f} ari={s['ari_vs_plaintext']:.3f} "
            f"wall={c['wall_s']:.2f}s bytes={c['bytes_total']} -> {path}")


def run_job(cfg: DictConfig, out_dir: Path) -> dict:
    """Validate, execute and record one job. A failure writes a ``failed`` record and re-raises."""
    config = OmegaConf.to_container(cfg, resolve=True)
    record = empty_record(config)
    path = out_dir / RECORD
    try:
        validate(cfg)
        record.update(execute(cfg, out_dir))
        record["status"] = "ok"
    except BaseException as exc:
        record["error"] = f"{type(exc).__name__}: {exc}"
        record["traceback"] = traceback.format_exc()
        raise
    finally:
        record["provenance"]["finished_at"] = now()
        write_json_atomic(path, record)
        line = summary(record, path)
        log.info(line)
        print(line, flush=True)
    return record


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> None:
    out_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        run_job(cfg, out_dir)
    except Exception as exc:
        log.error("job failed: %s", exc)
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            return  # the failed record is written; the sweep goes on
        sys.exit(1)


if __name__ == "__main__":
    main()
