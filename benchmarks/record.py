"""RunRecord: one ``record.json`` per job, written atomically; provenance and config hashing."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import secrets
import stat
import subprocess
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from methods._util import FILE_MODE, REPO, jsonable, write_atomic

SCHEMA = 1
RECORD = "record.json"
#: beside each record: its config hash, status and finish time, all a resume scan needs to read
KEY = "record.key"
#: records are tens of kilobytes; a larger file is refused when written and when read
MAX_RECORD_BYTES = 16 << 20
MAX_KEY_BYTES = 4096
PACKAGES = ("numpy", "scipy", "scikit-learn", "pandas", "tenseal", "flwr", "diffprivlib",
            "hydra-core", "omegaconf", "ray", "matplotlib", "pyarrow")
#: config keys that say where or how a job runs, not what it computes: left out of the hash.
#: (which file was read is in the hash through its sha256)
NOT_HASHED = ("resume", "results_dir", "dataset.data_dir", "dataset.source", "dataset.url",
              "dataset.download", "hydra")


# A token unique to one launch, for run-dir names (conf/config.yaml): ``${now:}`` has one-second
# resolution, and two jobs started together must never share a directory. Cached like ``now``, so the
# jobs of one sweep see one value (Hydra copies the resolver cache into each job's config). Registered
# here because every process that resolves a run dir imports this module, joblib workers included.
OmegaConf.register_new_resolver("privmark.token", lambda: secrets.token_hex(3), use_cache=True,
                                replace=True)


def _up_to(value, limit, below, above):
    """``${privmark.up_to:${dataset.n_rows},300000,encrypted,owner}``: ``below`` while ``value`` is at
    most ``limit``, else ``above`` (a sweep that switches an option off past a size it can afford)."""
    return below if value is None or float(value) <= float(limit) else above


OmegaConf.register_new_resolver("privmark.up_to", _up_to, replace=True)


def config_hash(config: dict, data_sha256: str | None = None) -> str:
    """A stable hash of what a job computes: its resolved config minus run-location keys, and the
    sha256 of the data file it read (two files behind one config are two different jobs)."""
    cfg = json.loads(json.dumps(jsonable(config)))
    for key in NOT_HASHED:
        *parents, leaf = key.split(".")
        node = cfg
        for p in parents:
            node = node.get(p, {}) if isinstance(node, dict) else {}
        if isinstance(node, dict):
            node.pop(leaf, None)
    if data_sha256 is not None:
        cfg = {"config": cfg, "data_sha256": data_sha256}
    blob = json.dumps(cfg, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _cpu_model() -> str | None:
    """The CPU's model name (Linux: /proc/cpuinfo; elsewhere what the platform module says)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Hardware", "Processor", "cpu model"):
                    return value.strip() or None
    except OSError:
        pass
    return platform.processor() or platform.machine() or None


def _memory_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):
        return None


def _os_name() -> str:
    try:
        release = platform.freedesktop_os_release()
        return release.get("PRETTY_NAME") or release.get("NAME") or platform.system()
    except OSError:
        return f"{platform.system()} {platform.release()}".strip()


def machine() -> dict:
    """What the job ran on: CPU model, logical cores (and those this process may use), memory, OS."""
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count()
    memory = _memory_bytes()
    return {"cpu_model": _cpu_model(), "cpu_cores": os.cpu_count(), "cpu_cores_usable": usable,
            "memory_gib": None if memory is None else round(memory / 2**30, 1), "os": _os_name(),
            "kernel": platform.release(), "arch": platform.machine()}


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
        "machine": machine(),
    }


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class RecordExists(FileExistsError):
    """A record is already at the path a job was about to write: another job's result, never replaced."""


class RecordTooLarge(ValueError):
    """A record over :data:`MAX_RECORD_BYTES`."""


def write_json_atomic(path: Path, obj: Any, *, exclusive: bool = False, limit: int | None = None) -> Path:
    """Write JSON to ``path`` so that a reader sees the old file or the new one, never a part.

    ``exclusive``: refuse (:class:`RecordExists`) when ``path`` exists, atomically, even against a
    concurrent writer. ``limit``: refuse (:class:`RecordTooLarge`) output over that many bytes.
    """
    path = Path(path)
    blob = json.dumps(jsonable(obj), indent=2, allow_nan=False).encode()
    if limit is not None and len(blob) > limit:
        raise RecordTooLarge(f"{path}: {len(blob):,} bytes, over the {limit:,}-byte limit")
    return write_atomic(path, blob, commit=_link_exclusive if exclusive else None)


def _link_exclusive(tmp: Path, path: Path) -> None:
    """Move ``tmp`` to ``path`` unless ``path`` exists, with no window in which two writers both win."""
    try:
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise
        except OSError:  # a filesystem without hard links: claim the name, then fill it atomically
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
            os.replace(tmp, path)
            return
    except FileExistsError:
        raise RecordExists(f"{path} already exists (another job's record); refusing to replace it. "
                           "Give this job its own hydra.run.dir.") from None
    tmp.unlink()


def read_json(path: Path, limit: int = MAX_RECORD_BYTES) -> dict:
    """The JSON object in ``path``; ``ValueError`` naming the problem for anything that is not a
    regular file of at most ``limit`` bytes holding one JSON object. Never blocks on a FIFO."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise ValueError(f"cannot open ({exc.strerror})") from exc
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise ValueError("not a regular file")
        if st.st_size > limit:
            raise ValueError(f"{st.st_size:,} bytes, over the {limit:,}-byte limit")
        blob = f.read(limit + 1)
    if len(blob) > limit:
        raise ValueError(f"over the {limit:,}-byte limit")
    try:
        obj = json.loads(blob)
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"not valid JSON ({str(exc)[:100]})") from None
    if not isinstance(obj, dict):
        raise ValueError(f"a JSON {type(obj).__name__}, expected an object")
    return obj


def read_record(path: Path) -> dict:
    return read_json(path)


def write_record(out_dir: Path, record: dict) -> Path:
    """``record.json`` (exclusive: never over another job's) and its key file beside it."""
    path = write_json_atomic(Path(out_dir) / RECORD, record, exclusive=True, limit=MAX_RECORD_BYTES)
    key = {k: record.get(k) for k in ("config_hash", "status")}
    key["finished_at"] = record["provenance"].get("finished_at")
    write_json_atomic(Path(out_dir) / KEY, key)
    return path


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
