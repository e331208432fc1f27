"""RunRecord: one ``record.json`` per job, written atomically; provenance and config hashing."""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

SCHEMA = 1
RECORD = "record.json"
REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("numpy", "scipy", "scikit-learn", "pandas", "tenseal", "flwr", "diffprivlib",
            "hydra-core", "omegaconf", "ray")
#: config keys that say where or how a job runs, not what it computes: left out of the hash.
NOT_HASHED = ("resume", "results_dir", "dataset.data_dir", "dataset.url", "dataset.download", "hydra")


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return _jsonable(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    if isinstance(obj, Path):
        return str(obj)
    return obj


def config_hash(config: dict) -> str:
    """A stable hash of what a job computes (its resolved config minus run-location keys)."""
    cfg = json.loads(json.dumps(_jsonable(config)))
    for key in NOT_HASHED:
        *parents, leaf = key.split(".")
        node = cfg
        for p in parents:
            node = node.get(p, {}) if isinstance(node, dict) else {}
        if isinstance(node, dict):
            node.pop(leaf, None)
    blob = json.dumps(cfg, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def provenance() -> dict:
    versions = {}
    for pkg in PACKAGES:
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": None if status is None else bool(status),
        "versions": versions,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
    }


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def write_json_atomic(path: Path, obj: Any) -> Path:
    """Write JSON to ``path`` so that a reader sees the old file or the new one, never a part."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(_jsonable(obj), f, indent=2, allow_nan=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_record(path: Path) -> dict:
    with open(path) as f:
        return json.load(f)


def empty_record(config: dict) -> dict:
    """A record with every contract key present; the runner fills it in."""
    return {
        "schema": SCHEMA,
        "status": "failed",
        "error": None,
        "method": config.get("method", {}).get("name"),
        "dataset": config.get("dataset", {}).get("name"),
        "k": config.get("k"),
        "seed": config.get("seed"),
        "split_seed": config.get("split_seed"),
        "config": config,
        "config_hash": config_hash(config),
        "metrics": {},
        "segmentation": {},
        "costs": {},
        "privacy": {},
        "provenance": {**provenance(), "started_at": now(), "finished_at": None},
    }
