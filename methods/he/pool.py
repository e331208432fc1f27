"""Worker processes that keep party shards (contexts and chunks) for a whole run.

TenSEAL holds the GIL and its objects do not pickle, so parallelism means processes that each
deserialize their own contexts once and keep their share of the chunks; per call only bytes and
small numpy arrays cross the pipe. Each worker hosts at most one shard per party; shards of
different parties share nothing (the protocol routes their bytes through its Channel).
``workers=1`` runs the same shards in-process.

Workers die with the process that started them, however it dies (:func:`methods.lifeline.die_with_parent`):
they hold shards of the secret key. On Linux the death signal follows the *thread* that opened the
pool, so a pool is closed in the thread that opened it (``with Pool(...)``).

A *chain* (:meth:`Pool.chain`) runs several shard calls in a row inside each worker, handing each
call's bytes to the next party's shard through a worker-local :class:`~methods.he.channel.Channel`
that counts them; the parent merges the counts. Parties still exchange nothing but counted bytes,
and what one party hands another within a round stays in the worker (only the centroids, which
every worker needs, and the partial totals the server shards exchange pass through the parent).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
import traceback
from dataclasses import dataclass
from typing import Any

from methods.he.channel import Channel, flatten
from methods.lifeline import close_fds, die_with_parent

CHAIN = "__chain__"


@dataclass(frozen=True)
class Step:
    """One shard call of a chain. Its result goes to the next step's shard as the first argument
    when ``to`` names that party (counted on the channel under ``tag``; ``request`` opens a round).
    With ``split`` the call returns ``(payload, kept)``: the payload is handed on, ``kept`` is
    returned to the caller; otherwise a step that hands nothing on returns its whole result."""

    party: str
    method: str
    args: tuple = ()
    to: str | None = None
    tag: str = ""
    request: bool = False
    split: bool = False


def _run_chain(shards: dict, stage: str, steps: list[Step], keep_transcript: bool):
    channel = Channel(keep_transcript=keep_transcript)
    channel.stage = stage
    outputs, cpu, handed = [], {}, None
    for i, step in enumerate(steps):
        args = step.args if i == 0 or steps[i - 1].to is None else (handed, *step.args)
        t0 = time.process_time()
        result = _call(shards, step.party, step.method, args)
        cpu[step.party] = cpu.get(step.party, 0.0) + time.process_time() - t0
        payload, kept = result if step.split else (result, None)
        if step.to is None:
            outputs.append(kept if step.split else result)
            continue
        outputs.append(kept)
        blobs = flatten(payload)
        if blobs:
            (channel.request if step.request else channel.send)(step.party, step.to, blobs, step.tag)
        handed = payload
    return outputs, channel.snapshot(), cpu


def _call(shards: dict, party: str, method: str, args: tuple) -> Any:
    from methods.he.parties import SHARDS

    if party == CHAIN:
        return _run_chain(shards, method, *args)
    if method == "__init__":
        shards[party] = SHARDS[party](*args)
        return None
    return getattr(shards[party], method)(*args)


def _worker_main(conn, parent_pid: int, inherited_fds: tuple[int, ...] = ()) -> None:
    # A worker holds party shards (the key holder's has the secret key): it must not outlive the
    # run. Closing the other pipe ends a fork copied lets the parent's death read as end-of-file;
    # the death signal and the watch thread cover a worker busy computing.
    close_fds(inherited_fds)
    die_with_parent(parent_pid)
    shards: dict = {}
    while True:
        try:
            msg = conn.recv()
        except EOFError:
            break
        if msg is None:
            break
        party, method, args = msg
        cpu = time.process_time()
        try:
            result = _call(shards, party, method, args)
            conn.send(("ok", result, time.process_time() - cpu))
        except BaseException:  # report, keep serving; the parent raises
            conn.send(("error", traceback.format_exc(), time.process_time() - cpu))
    conn.close()


class WorkerError(RuntimeError):
    """A shard call failed in a worker process (the message carries its traceback)."""


class Pool:
    """``map(party, method, per_worker_args)`` runs one call per worker, in parallel; returns the
    results in worker order and charges the workers' CPU seconds to ``cpu[party]``."""

    def __init__(self, workers: int = 1):
        if not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers={workers!r}; expected an integer >= 1")
        self.workers = workers
        self.cpu: dict[str, float] = {}
        self._procs: list = []
        self._conns: list = []
        self._local: dict = {}

    def __enter__(self) -> Pool:
        if self.workers > 1:
            # fork: the parent holds no TenSEAL state yet (contexts are made after the pool starts)
            # and children start without re-importing anything; spawn elsewhere
            method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
            ctx = mp.get_context(method)
            for _ in range(self.workers):
                parent, child = ctx.Pipe()
                # a forked worker inherits this end of its own pipe and of every earlier worker's
                inherited = tuple(c.fileno() for c in [*self._conns, parent]) if method == "fork" else ()
                proc = ctx.Process(target=_worker_main, args=(child, os.getpid(), inherited), daemon=True)
                proc.start()
                child.close()
                self._procs.append(proc)
                self._conns.append(parent)
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        for conn in self._conns:
            try:
                conn.send(None)
            except (OSError, BrokenPipeError):
                pass
        for proc in self._procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=5)
        for conn in self._conns:
            conn.close()
        self._procs, self._conns = [], []
        self._local = {}

    def map(self, party: str, method: str, per_worker: list[tuple]) -> list:
        if len(per_worker) != self.workers:
            raise ValueError(f"{len(per_worker)} argument tuples for {self.workers} workers")
        if self.workers == 1:
            cpu = time.process_time()
            try:
                return [_call(self._local, party, method, per_worker[0])]
            finally:
                self.cpu[party] = self.cpu.get(party, 0.0) + time.process_time() - cpu
        for conn, args in zip(self._conns, per_worker, strict=True):
            conn.send((party, method, args))
        results, errors = [], []
        for conn in self._conns:
            status, value, cpu = conn.recv()
            self.cpu[party] = self.cpu.get(party, 0.0) + cpu
            (results if status == "ok" else errors).append(value)
        if errors:
            raise WorkerError(f"{party}.{method} failed in a worker:\n{errors[0]}")
        return results

    def broadcast(self, party: str, method: str, args: tuple) -> list:
        return self.map(party, method, [args] * self.workers)

    def chain(self, per_worker: list[list[Step]], stage: str = "", keep_transcript: bool = False):
        """Run one chain of steps per worker, in parallel. Returns, in worker order, each worker's
        step outputs and its channel counts (:meth:`Channel.snapshot`); the workers' CPU seconds
        are charged to each step's party."""
        results = self.map(CHAIN, stage, [(steps, keep_transcript) for steps in per_worker])
        self.cpu.pop(CHAIN, None)  # charged per party below instead
        for _, _, cpu in results:
            for p, secs in cpu.items():
                self.cpu[p] = self.cpu.get(p, 0.0) + secs
        return [(outputs, counts) for outputs, counts, _ in results]
