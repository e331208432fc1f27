"""Peak memory of a whole process tree (this process and every descendant), sampled from /proc.

``resource.getrusage`` gives the peak of one process (or the largest finished child), not what a
parent and its workers hold at the same moment. :class:`TreeRSS` samples, every ``interval``
seconds, the resident set of this process and of each live descendant (``VmRSS``; and the
proportional set size ``Pss`` from ``smaps_rollup``, which splits pages a fork shares between
the processes sharing them) and keeps the peak of their sums and each process's own peak.
Linux only (elsewhere it reports nothing).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

PROC = Path("/proc")


def _children(pid: int) -> list[int]:
    out = []
    for task in (PROC / str(pid) / "task").glob("*"):
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError):
            pass
    return out


def descendants(pid: int) -> list[int]:
    """``pid`` and every live process below it."""
    seen, todo = [], [pid]
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.append(p)
        todo += _children(p)
    return seen


def _kib(path: Path, key: str) -> int | None:
    try:
        for line in path.read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def _name(pid: int) -> str:
    try:
        return (PROC / str(pid) / "comm").read_text().strip()
    except OSError:
        return "?"


class TreeRSS:
    """A context manager sampling this process tree's memory in a thread.

    After the block: ``peak_rss_mb`` (largest sum of VmRSS over the tree), ``peak_pss_mb``
    (largest sum of Pss), ``per_process`` ({"pid name": peak VmRSS MiB}), ``samples``.
    """

    def __init__(self, interval: float = 0.2, pid: int | None = None):
        self.interval = float(interval)
        self.pid = os.getpid() if pid is None else int(pid)
        self.peak_rss_mb = 0.0
        self.peak_pss_mb = 0.0
        self.peak_processes = 0
        self.per_process: dict[str, float] = {}
        self.samples = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def supported(self) -> bool:
        return (PROC / str(self.pid) / "status").exists()

    def sample(self) -> None:
        rss = pss = 0
        pids = descendants(self.pid)
        for p in pids:
            r = _kib(PROC / str(p) / "status", "VmRSS:")
            if r is None:
                continue
            rss += r
            pss += _kib(PROC / str(p) / "smaps_rollup", "Pss:") or r
            key = f"{p} {_name(p)}"
            self.per_process[key] = max(self.per_process.get(key, 0.0), r / 1024.0)
        self.peak_rss_mb = max(self.peak_rss_mb, rss / 1024.0)
        self.peak_pss_mb = max(self.peak_pss_mb, pss / 1024.0)
        self.peak_processes = max(self.peak_processes, len(pids))
        self.samples += 1

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> TreeRSS:
        if self.supported:
            self.sample()
            self._thread = threading.Thread(target=self._loop, name="tree-rss", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self.sample()

    def report(self) -> dict:
        """The figures, rounded, for a benchmark's JSON line."""
        return {
            "tree_peak_rss_mb": round(self.peak_rss_mb, 1),
            "tree_peak_pss_mb": round(self.peak_pss_mb, 1),
            "tree_processes": self.peak_processes,
            "rss_samples": self.samples,
            "rss_interval_s": self.interval,
            "per_process_peak_rss_mb": {k: round(v, 1) for k, v in sorted(self.per_process.items())},
        }
