"""The results store: every ``record.json`` (and resume pointer ``skipped.json``) below a directory.

There is no index to keep in sync: the store is the directory tree itself (``results/`` by default),
so records copied in from another machine, or moved, are found as they are. Beside each record lies
its key file (``record.key``: config hash, status, finish time), so a resume scan reads a few hundred
bytes per run, never the records themselves (a record without a key file, from an older version, is
read whole, up to the record size limit). Anything that is not a regular file is never opened for
reading in a way that could block.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

from benchmarks.record import KEY, MAX_KEY_BYTES, MAX_RECORD_BYTES, RECORD, read_json

SKIPPED = "skipped.json"
#: the sections of a record that are JSON objects whenever present
SECTIONS = ("config", "metrics", "segmentation", "costs", "privacy", "provenance", "data", "execution")


def iter_dirs(root: Path, names: tuple[str, ...] = (RECORD, SKIPPED)) -> Iterator[tuple[Path, list[str]]]:
    """``(directory, its file names)`` for each directory below ``root`` holding one of ``names``
    (Hydra's ``.hydra`` folders are not descended; symlinked directories are not followed)."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        if any(name in filenames for name in names):
            yield Path(dirpath), filenames


def iter_files(root: Path, names: tuple[str, ...] = (RECORD, SKIPPED)) -> Iterator[Path]:
    """Paths of ``names`` anywhere below ``root``."""
    root = Path(root)
    if root.is_file():
        yield root
        return
    for directory, filenames in iter_dirs(root, names):
        for name in names:
            if name in filenames:
                yield directory / name


def load_json(path: Path, limit: int = MAX_RECORD_BYTES) -> dict | None:
    """The parsed file, or None if it is unreadable (a reader never fails on one bad file)."""
    try:
        return read_json(path, limit)
    except ValueError:
        return None


def find_ok_record(root: Path, digest: str) -> Path | None:
    """The newest ``ok`` record below ``root`` whose ``config_hash`` is ``digest``."""
    best, best_time = None, ""
    if not Path(root).is_dir():
        return None
    for directory, filenames in iter_dirs(Path(root), (RECORD,)):
        key = load_json(directory / KEY, MAX_KEY_BYTES) if KEY in filenames else None
        if key is None:  # an older record, or its key file was lost: read the record itself
            key = load_json(directory / RECORD)
        if key and key.get("config_hash") == digest and key.get("status") == "ok":
            finished = str(key.get("finished_at") or (key.get("provenance") or {}).get("finished_at") or "")
            if best is None or finished > best_time:
                best, best_time = directory / RECORD, finished
    return best


def problem(rec: dict) -> str | None:
    """Why ``rec`` cannot be a run record, or None when its shape is sound."""
    if not isinstance(rec.get("config_hash"), str):
        return "no config_hash"
    if rec.get("status") not in ("ok", "failed"):
        return f"status {str(rec.get('status'))[:40]!r}, expected 'ok' or 'failed'"
    for key in SECTIONS:
        if rec.get(key) is not None and not isinstance(rec[key], dict):
            return f"{key!r} is a JSON {type(rec[key]).__name__}, expected an object"
    for key in ("method", "dataset"):
        if not isinstance(rec.get(key), str | None):
            return f"{key!r} is not a string"
    for key in ("k", "seed", "split_seed"):
        if rec.get(key) is not None and (not isinstance(rec[key], int) or isinstance(rec[key], bool)):
            return f"{key!r} is not an integer"
    return None


def warn_skipped(path: Path, why: str) -> None:
    print(f"warning: skipped {path}: {why}", file=sys.stderr, flush=True)


def iter_records(roots: list[Path], skipped: list[dict] | None = None) -> Iterator[tuple[Path, dict]]:
    """``(path, record)`` for every sound record below ``roots``, following resume pointers.

    A file that cannot be read or is not shaped like a record is skipped with one warning line naming
    it and the problem; ``skipped`` (if given) collects ``{"record": path, "problem": why}``.
    """
    seen: set[Path] = set()

    def skip(path: Path, why: str) -> None:
        warn_skipped(path, why)
        if skipped is not None:
            skipped.append({"record": str(path), "problem": why})

    for root in roots:
        for path in iter_files(Path(root)):
            if path.name == SKIPPED:
                try:
                    target = read_json(path, MAX_KEY_BYTES).get("record")
                except ValueError as exc:
                    skip(path, str(exc))
                    continue
                if not isinstance(target, str) or not target:
                    skip(path, "a resume pointer without a record path")
                    continue
                path = Path(target)
            key = path.resolve()
            if key in seen:
                continue
            seen.add(key)
            try:
                rec = read_json(path)
            except ValueError as exc:
                skip(path, str(exc))
                continue
            why = problem(rec)
            if why is not None:
                skip(path, why)
                continue
            yield path, rec
