"""Run one method on one dataset split and write its ``record.json``.

    python -m benchmarks.run method=<plaintext|he|federated|dp> dataset=<a conf/dataset file> k=4 seed=0
    python -m benchmarks.run -m +experiment=k_sweep          # a sweep (conf/experiment/)
    python -m benchmarks.run                                 # no arguments: the quickstart comparison

Resume: with ``resume=true`` (the default) a job whose config hash already has an ``ok`` record
anywhere under ``results_dir`` (the results store, default ``results/``) is skipped; it leaves a
``skipped.json`` pointing at that record. ``resume=false`` runs it again.
"""

from __future__ import annotations

import sys
import time

if __name__ == "__main__" and len(sys.argv) > 1:
    # the imports below (pandas, scikit-learn, Hydra) take seconds: say something first, and go on
    # saying it while they load (benchmarks._console)
    print(f"{time.strftime('%H:%M:%S')} privmark: starting (loading libraries)", flush=True)
    from benchmarks._console import start_heartbeat

    start_heartbeat(first="privmark: starting (loading libraries)")

import logging  # noqa: E402
import os  # noqa: E402
import traceback  # noqa: E402
from pathlib import Path  # noqa: E402

import hydra  # noqa: E402
import numpy as np  # noqa: E402
from hydra.core.hydra_config import HydraConfig  # noqa: E402
from hydra.types import RunMode  # noqa: E402
from omegaconf import DictConfig, OmegaConf  # noqa: E402

import datasets  # noqa: E402
from benchmarks import metrics  # noqa: E402
from benchmarks._console import say, start_heartbeat  # noqa: E402
from benchmarks._store import SKIPPED, find_ok_record  # noqa: E402
from benchmarks.config import ConfigError  # noqa: E402
from benchmarks.config_check import check  # noqa: E402
from benchmarks.record import (  # noqa: E402
    RECORD,
    RecordExists,
    config_hash,
    empty_record,
    now,
    write_json_atomic,
    write_record,
)
from datasets.errors import shorten  # noqa: E402
from methods._util import CONF, cpu_seconds  # noqa: E402
from methods.base import FitInputs, ScoringCosts, peak_rss_mb  # noqa: E402
from methods.network import network_cost, was_measured  # noqa: E402

log = logging.getLogger("privmark")

ERROR_CHARS = 1000  # of an error message kept in a record, the job log and the summary line
TRACEBACK_CHARS = 20_000  # the end of the traceback, where the cause is


def validate(cfg: DictConfig, choices=None) -> DictConfig:
    """Refuse bad configuration before any work, naming the key and what was expected; returns the
    job's config (``per_method`` / ``per_dataset`` applied). See :func:`benchmarks.config_check.check`."""
    return check(cfg, choices)


def execute(cfg: DictConfig) -> dict:
    """Run the job described by ``cfg``; returns the ``ok`` record (raises on failure)."""
    from methods import build
    from methods.kmeans_core import reference_kmeans

    method = build(cfg.method, n_clusters=cfg.k, random_state=cfg.seed)
    network = OmegaConf.to_container(cfg.network, resolve=True) if cfg.get("network") else None
    if hasattr(method, "network") and method.network is None:  # the link a real transport applies
        method.network = network
    dataset_cfg = OmegaConf.merge(cfg.dataset, dict(method.dataset_overrides))
    log.info("loading %s (subsample=%s, split_seed=%d)", dataset_cfg.name, dataset_cfg.subsample,
             cfg.split_seed)
    split = datasets.load(dataset_cfg, split_seed=cfg.split_seed)
    if cfg.k > len(split.train):
        raise ConfigError(f"k={cfg.k} is larger than the training set ({len(split.train)} rows)")
    train, test = split.train, split.test

    inputs = FitInputs(feature_names=list(split.feature_names), eval_set=(test.X, test.y, test.X_segment))
    log.info("fitting %s (k=%d, seed=%d) on %d training rows", cfg.method.name, cfg.k, cfg.seed, len(train))
    wall, cpu = time.perf_counter(), cpu_seconds()
    method.fit(train.X, train.y, train.X_segment, **inputs.for_method(method))
    wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
    log.info("fit done in %.2f s wall; scoring on %d test rows", wall, len(test))

    scoring = time.perf_counter()
    proba = method.predict_proba(test.X, test.X_segment)[:, 1]  # P(y = yes)
    if isinstance(method, ScoringCosts):
        method.record_scoring(time.perf_counter() - scoring, len(proba))
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
    if cfg.get("leakage", {}).get("enabled", True):
        from benchmarks.attacks import leakage

        log.info("measuring leakage (membership, centroid and method-specific attacks)")
        # split_seed: every method of a comparison is attacked on the same member/non-member targets
        method.privacy_.leakage.update(leakage(method, split, cfg.split_seed, cfg.get("leakage")))
    segmentation["profile"] = segment_profile(test.frame, labels, cfg.k, split.segment_names,
                                              dataset_cfg.get("never_contacted"))
    scores = {**metrics.classification(test.y, proba, cfg.threshold), **targeting(test.y, proba, cfg)}
    if cfg.method.name == "he" and getattr(method, "predictor", None) == "encrypted":
        log.info("training the encrypted predictor's plaintext twins (HE gap decomposition)")
        scores["he_gap"] = metrics.he_gap(
            train, test, (np.asarray(method.labels_), labels),
            (reference.labels_, reference.predict(test.X_segment)),
            cfg.k, segments=bool(getattr(method, "segments_in_predictor", True)), C=method.C,
            max_iter=method.lr_max_iter, class_weight=method.lr_class_weight, n_iter=method.lr_n_iter,
            learning_rate=method.lr_learning_rate, l2=method.lr_l2, interval=method.lr_interval,
            clip=method.lr_clip)
    costs = {"wall_s": wall, "cpu_s": cpu, "peak_rss_mb": peak_rss_mb(), **method.costs_.to_dict()}
    # engine start-up (Ray, SuperLink/SuperNodes, HE services) apart from training: 0 without an engine
    costs["startup_s"] = float(costs.get("startup_s") or 0.0)
    costs.setdefault("train_s", max(wall - costs["startup_s"], 0.0))
    costs["network"] = network_cost(costs, network, was_measured(costs, network))
    return {
        "metrics": scores,
        "segmentation": segmentation,
        "costs": costs,
        "privacy": method.privacy_.to_dict(),
        "data": {"source": split.source, "n_train": len(train), "n_test": len(test),
                 "n_features": train.X.shape[1], "segment_features": split.segment_names,
                 "dataset_config": OmegaConf.to_container(dataset_cfg, resolve=True)},
    }


def targeting(y: np.ndarray, proba: np.ndarray, cfg: DictConfig) -> dict:
    """The campaign metrics (:func:`benchmarks.metrics.targeting`) under the job's ``targeting``."""
    t = cfg.get("targeting") or {}
    return metrics.targeting(y, proba, shares=tuple(t.get("shares", (0.05, 0.10, 0.20))),
                             cost_per_call=t.get("cost_per_call", 5.0),
                             value_per_subscription=t.get("value_per_subscription", 50.0),
                             gains_points=t.get("gains_points", 51))


def segment_profile(frame, labels: np.ndarray, k: int, columns: list[str], never_contacted=None) -> dict:
    """Mean of each segment feature per segment, in raw units, on the test rows (for the report's
    segment profiles). The "never contacted" sentinel is left out of its column's mean."""
    out = {}
    for col in columns:
        values = frame[col].to_numpy(dtype=float)
        keep = np.ones(len(values), bool)
        if never_contacted and never_contacted.get("column") == col:
            keep = values != float(never_contacted["sentinel"])
        out[col] = [float(values[(labels == c) & keep].mean()) if ((labels == c) & keep).any() else None
                    for c in range(k)]
    return out


def execution_facts(hc) -> dict:
    """How the job was launched; timings of concurrent jobs are not comparable with sequential ones."""
    launcher = str(hc.launcher.get("_target_", "")).rsplit(".", 1)[-1] or "unknown"
    n_jobs = hc.launcher.get("n_jobs")
    if hc.mode != RunMode.MULTIRUN or launcher == "BasicLauncher":
        parallel = False
    elif "Joblib" in launcher:
        parallel = n_jobs not in (1,) and not (n_jobs == -1 and (os.cpu_count() or 1) == 1)
    else:  # cluster launchers: jobs share nodes or run on other hardware
        parallel = True
    return {"launcher": launcher, "n_jobs": n_jobs, "parallel": bool(parallel),
            "experiment": hc.runtime.choices.get("experiment"), "job_num": hc.job.get("num")}


SUMMARY_CHARS = 160


def human_bytes(n) -> str:
    """``n`` bytes in binary units: 0 B, 512 B, 3.2 KiB, 498.5 MiB, 1.25 GiB."""
    n = float(n or 0)
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            value = n / size
            return f"{value:.3g} {unit}" if value < 100 else f"{value:.0f} {unit}"
    return f"{n:.0f} B"


def human_seconds(s) -> str:
    s = float(s)
    if s < 60:
        return f"{s:.2f} s" if s < 10 else f"{s:.1f} s"
    return f"{int(s // 60)} min {s % 60:02.0f} s"


def _fit_part(c: dict) -> str:
    """Training time, start-up apart when the method has one; the whole fit time for older records."""
    train, startup = c.get("train_s"), c.get("startup_s")
    if train is None:
        return f"fit {human_seconds(c['wall_s'])}"
    return f"train {human_seconds(train)}" + (f" +{human_seconds(startup)} start-up" if startup else "")


def summary(record: dict, path: Path, limit: int = SUMMARY_CHARS) -> str:
    """The one-line summary a job prints: scores, time and bytes in human units, and where its record
    is; at most ``limit`` characters (a long error or path is shortened in the middle)."""
    head = f"{record['method']} {record['dataset']} k={record['k']} seed={record['seed']}"
    where = str(path.parent if path.name == RECORD else path)
    try:
        where = os.path.relpath(where) if not os.path.relpath(where).startswith("../..") else where
    except ValueError:  # another drive
        pass
    if record["status"] != "ok":
        where = _elide(where, 60)
        body = f"{head}: FAILED ({record['error']})"
        room = limit - len(where) - 4
        return (body if len(body) <= room else body[:room - 2] + "…)") + f" -> {where}"
    m, s, c = record["metrics"], record["segmentation"], record["costs"]
    body = (f"{head}: AUC {m['auc']:.3f} P {m['precision']:.3f} R {m['recall']:.3f} F1 {m['f1']:.3f} "
            f"wP {m['weighted_precision']:.3f} ARI {s['ari_vs_plaintext']:.2f} | {_fit_part(c)}, "
            f"{human_bytes(c['bytes_total'])}")
    where = _elide(where, limit - len(body) - 4)
    return body + (f" -> {where}" if where else "")


def _elide(path: str, room: int) -> str:
    """``path`` in at most ``room`` characters: its end (the job's own directory) after "…"."""
    if len(path) <= room:
        return path
    return "…" + path[-(room - 1):] if room > 10 else ""


def _tail(text: str, limit: int) -> str:
    return text if len(text) <= limit else f"[{len(text) - limit:,} characters before] ...{text[-limit:]}"


def run_job(cfg: DictConfig, out_dir: Path, execution: dict | None = None,
            resume: bool = False) -> dict | None:
    """Validate, execute and record one job. A failure writes a ``failed`` record and re-raises.

    With ``resume``, a job whose config and data already have an ``ok`` record in the results store is
    not run: it leaves a pointer to that record and returns None. A job never writes over a record
    already in ``out_dir`` (:class:`~benchmarks.record.RecordExists`, before any work).
    """
    path = out_dir / RECORD
    if path.exists() or path.is_symlink():
        raise RecordExists(f"{path} already exists (another job's record); refusing to run into its "
                           "directory. Give this job its own hydra.run.dir.")
    config = OmegaConf.to_container(cfg, resolve=True)
    record = empty_record(config)
    record["execution"] = execution or {"launcher": None, "n_jobs": None, "parallel": False,
                                        "experiment": None, "job_num": None}
    skipped = False
    try:
        validate(cfg)
        # the data file's sha256 is part of the hash: resume never reuses a record made from other
        # data, whatever dataset.verify_checksum says
        identity = datasets.data_identity(cfg.dataset)
        record["config_hash"] = config_hash(config, identity["sha256"])
        record["data"] = {"sha256": identity["sha256"], "origin": identity["source"],
                          "source": identity["location"]}
        if "synthetic" in identity:  # generator, its source file's sha256, seed, n_rows
            record["data"]["synthetic"] = identity["synthetic"]
        skipped = resume and skip_if_done(cfg, out_dir, record["config_hash"])
        if skipped:
            return None
        result = execute(cfg)
        result["data"] = {**record["data"], **result["data"]}
        record.update(result)
        record["costs"]["parallel"] = record["execution"]["parallel"]
        record["status"] = "ok"
    except BaseException as exc:
        record["error"] = shorten(f"{type(exc).__name__}: {exc}", ERROR_CHARS)
        record["traceback"] = _tail(traceback.format_exc(), TRACEBACK_CHARS)
        raise
    finally:
        if not skipped:
            record["provenance"]["finished_at"] = now()
            write_record(out_dir, record)
            line = summary(record, path)
            log.info(line, extra={"file_only": True})
            say(line)
    return record


def skip_if_done(cfg: DictConfig, out_dir: Path, digest: str) -> bool:
    """Resume: if the results store has an ``ok`` record with this job's config hash, point to it."""
    found = find_ok_record(Path(cfg.get("results_dir") or "results"), digest)
    if found is None:
        return False
    if found.parent.resolve() != out_dir.resolve():
        write_json_atomic(out_dir / SKIPPED, {"config_hash": digest, "record": str(found.resolve()),
                                              "skipped_at": now()})
    line = (f"{cfg.method.name} {cfg.dataset.name} k={cfg.k} seed={cfg.seed}: skipped, config "
            f"{digest} already done -> {found} (resume=false to run it again)")
    log.info(line, extra={"file_only": True})
    say(line)
    return True


_WATCHED: set[int] = set()


def die_with_launcher(hc) -> None:
    """In a joblib worker (``hydra/launcher=local``), exit as soon as the sweep process that started
    the worker dies: loky keeps its workers alive otherwise, and they would go on running (and
    holding key shards) after a ``kill -9`` of the sweep. The job's own children follow it
    (:mod:`methods.lifeline`). Once per worker process; other launchers run jobs in the sweep process
    or on hosts of their own."""
    if hc.mode != RunMode.MULTIRUN or "Joblib" not in str(hc.launcher.get("_target_", "")):
        return
    parent = os.getppid()
    if parent in _WATCHED or parent == 1:
        return
    from methods.lifeline import watch_parent

    _WATCHED.add(parent)
    watch_parent(parent, lambda: os._exit(1))


@hydra.main(version_base="1.3", config_path=str(CONF), config_name="config")
def main(cfg: DictConfig) -> None:
    hc = HydraConfig.get()
    out_dir = Path(hc.runtime.output_dir)
    die_with_launcher(hc)
    try:
        # checked before the run dir was made (benchmarks.config_check.CheckBeforeRunDir); again here for
        # the per_method / per_dataset merge, and for launchers that compose jobs elsewhere
        cfg = validate(cfg, hc.runtime.choices)
        log.info("job %s %s k=%s seed=%s -> %s", cfg.method.name, cfg.dataset.name, cfg.k, cfg.seed,
                 out_dir)
        start_heartbeat()
        run_job(cfg, out_dir, execution_facts(hc), resume=bool(cfg.get("resume", True)))
    except Exception as exc:
        log.error("job failed: %s", shorten(str(exc), ERROR_CHARS))
        if hc.mode == RunMode.MULTIRUN:
            return  # the failed record is written (none for a config refusal); the sweep goes on
        sys.exit(1)


def cli() -> None:
    """``privmark`` / ``python -m benchmarks.run``: no arguments run the main job (every method at
    k = 4, then a report); otherwise one job or a sweep (Hydra's command line)."""
    if len(sys.argv) == 1:
        from benchmarks._quickstart import quickstart

        sys.exit(quickstart())
    main()


if __name__ == "__main__":
    cli()
