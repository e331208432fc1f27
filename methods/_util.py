"""Plumbing shared by datasets/, methods/ and benchmarks/: atomic file writes, the repository's
paths, process CPU time and JSON-safe values.

It lives in ``methods`` because that package imports nothing of the other two (its ``__init__``
pulls in numpy only), so each of them can import this module without a cycle; the layout card fixes
the top-level folders, so it is not a package of its own.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

#: the clone's root (an editable install, as ``uv run`` makes, runs from it); for an installed
#: wheel, the site-packages folder holding the three packages
REPO = Path(__file__).resolve().parents[1]
#: the Hydra config tree: ``conf/`` in a clone, ``benchmarks/conf`` inside an installed wheel
CONF = (REPO / "benchmarks" / "conf") if (REPO / "benchmarks" / "conf").is_dir() else REPO / "conf"


def _file_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


#: what ``open()`` would give (mkstemp makes 0600): colleagues sharing a results store can read it
FILE_MODE = _file_mode()


@contextmanager
def atomic_path(path: Path | str, *, prefix: str | None = None, suffix: str = ".tmp",
                commit: Callable[[Path, Path], None] | None = None) -> Iterator[Path]:
    """A fresh temporary name beside ``path`` to write to; on normal exit the file is flushed to
    disk and moved onto ``path`` (``commit(tmp, path)``, default :func:`os.replace`), so a reader
    sees the old file or the new one, never a part. On an error the temporary file is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=prefix or f".{path.name}.",
                                suffix=suffix)
    tmp = Path(name)
    try:
        os.fchmod(fd, FILE_MODE)
        os.close(fd)
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        (commit or os.replace)(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_atomic(path: Path | str, data: bytes | str, *,
                 commit: Callable[[Path, Path], None] | None = None) -> Path:
    """Write ``data`` (str as UTF-8) to ``path`` through :func:`atomic_path`."""
    blob = data.encode() if isinstance(data, str) else data
    with atomic_path(path, commit=commit) as tmp:
        tmp.write_bytes(blob)
    return Path(path)


def cpu_seconds() -> float:
    """CPU seconds (user + system) of this process and its finished, waited-for children."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def jsonable(obj: Any) -> Any:
    """``obj`` with numpy values, tuples and paths turned into JSON types; a non-finite float
    becomes null (NaN) or the string "inf" / "-inf"."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return jsonable(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    if isinstance(obj, Path):
        return str(obj)
    return obj
