"""The results store: every ``record.json`` (and resume pointer ``skipped.json``) below a directory.

There is no index to keep in sync: the store is the directory tree itself (``results/`` by default),
so records copied in from another machine, or moved, are found as they are. Resume scans it once
per job, which costs well under a second for thousands of records.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

from benchmarks.record import RECORD

SKIPPED = "skipped.json"


def iter_files(root: Path, names: tuple[str, ...] = (RECORD, SKIPPED)) -> Iterator[Path]:
    """Paths of ``names`` anywhere below ``root`` (Hydra's ``.hydra`` folders are not descended)."""
    root = Path(root)
    if root.is_file():
        yield root
        return
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in names:
            if name in filenames:
                yield Path(dirpath) / name


def load_json(path: Path) -> dict | None:
    """The parsed file, or None if it is unreadable (a reader never fails on one bad file)."""
    try:
        with open(path) as f:
            obj = json.load(f)
    except (OSError, ValueError):
        return None
    return obj if isinstance(obj, dict) else None


def find_ok_record(root: Path, digest: str) -> Path | None:
    """The newest ``ok`` record below ``root`` whose ``config_hash`` is ``digest``."""
    best, best_time = None, ""
    if not Path(root).exists():
        return None
    for path in iter_files(root, (RECORD,)):
        rec = load_json(path)
        if rec and rec.get("config_hash") == digest and rec.get("status") == "ok":
            finished = str((rec.get("provenance") or {}).get("finished_at") or "")
            if best is None or finished > best_time:
                best, best_time = path, finished
    return best


def iter_records(roots: list[Path]) -> Iterator[tuple[Path, dict]]:
    """``(path, record)`` for every record below ``roots``, following resume pointers."""
    seen: set[Path] = set()
    for root in roots:
        for path in iter_files(Path(root)):
            if path.name == SKIPPED:
                pointer = load_json(path)
                if not pointer or not pointer.get("record"):
                    continue
                path = Path(pointer["record"])
            key = path.resolve()
            if key in seen:
                continue
            seen.add(key)
            rec = load_json(path)
            if rec is not None and "config_hash" in rec:
                yield path, rec
