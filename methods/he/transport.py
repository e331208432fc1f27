"""How HE parties talk and where their shards run: :class:`Channel` and :class:`Pool`.

**Channel.** Parties never share Python objects. Everything that crosses is ``bytes`` (a TenSEAL
``serialize()``, or an encoded array), counted per direction; a round is one request and its
reply. Keeping the parties this separable means the same code can later run them in separate
processes or hosts.

**Pool.** Worker processes that keep party shards (contexts and chunks) for a whole run.
TenSEAL holds the GIL and its objects do not pickle, so parallelism means processes that each
deserialize their own contexts once and keep their share of the chunks; per call only bytes and
small numpy arrays cross the pipe. Each worker hosts at most one shard per party (the shard
classes are :data:`methods.he.kmeans_protocol.SHARDS`); shards of different parties share nothing
(the protocol routes their bytes through its Channel). ``workers=1`` runs the same shards
in-process.

Workers die with the process that started them, however it dies (:func:`methods.lifeline.die_with_parent`):
they hold shards of the secret key. On Linux the death signal follows the *thread* that opened the
pool, so a pool is closed in the thread that opened it (``with Pool(...)``).

A *chain* (:meth:`Pool.chain`) runs several shard calls in a row inside each worker, handing each
call's bytes to the next party's shard through a worker-local :class:`Channel` that counts them;
the parent merges the counts. Parties still exchange nothing but counted bytes, and what one party
hands another within a round stays in the worker (only the centroids, which every worker needs,
and the partial totals the server shards exchange pass through the parent).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
import traceback
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from methods.lifeline import close_fds, die_with_parent

Payload = bytes | Sequence[bytes]


def flatten(blobs) -> list[bytes]:
    """The ciphertexts of a payload (bytes, or lists / dicts by chunk of them), in chunk order."""
    if isinstance(blobs, (bytes, bytearray)):
        return [bytes(blobs)]
    if isinstance(blobs, dict):
        return [b for c in sorted(blobs) for b in flatten(blobs[c])]
    return [b for item in blobs for b in flatten(item)]


def _size(payload: Payload) -> int:
    if isinstance(payload, (bytes, bytearray, memoryview)):
        return len(payload)
    if isinstance(payload, Sequence) and all(isinstance(p, (bytes, bytearray, memoryview)) for p in payload):
        return sum(len(p) for p in payload)
    raise TypeError(f"only bytes cross a Channel; got {type(payload).__name__}")


@dataclass
class Channel:
    """Counts bytes per (sender, receiver) and request/reply rounds.

    ``send`` returns the payload unchanged (the receiver's copy); ``request`` is a send that opens
    a round. ``transcript`` optionally keeps every message for security tests. ``stages`` counts
    bytes, messages and rounds per protocol stage (whatever ``stage`` names when they are sent).
    ``blobs`` counts the ciphertexts (serialized objects) moved.

    Worker processes count their share of a message on channels of their own; :meth:`merge` adds
    those counts: bytes add up, while a message (or round) split across workers counts once.
    """

    keep_transcript: bool = False
    bytes: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    messages: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    rounds: int = 0
    transcript: list[tuple[str, str, str, Payload]] = field(default_factory=list)
    #: the protocol stage that traffic is attributed to (set by the protocol driver)
    stage: str = ""
    stages: dict[str, dict[str, int]] = field(default_factory=dict)
    blobs: int = 0

    def _stage(self) -> dict[str, int]:
        return self.stages.setdefault(self.stage, {"bytes": 0, "messages": 0, "rounds": 0})

    def send(self, sender: str, receiver: str, payload: Payload, tag: str = "") -> Payload:
        n = _size(payload)
        self.blobs += 1 if isinstance(payload, (bytes, bytearray, memoryview)) else len(payload)
        self.bytes[(sender, receiver)] += n
        self.messages[(sender, receiver)] += 1
        st = self._stage()
        st["bytes"] += n
        st["messages"] += 1
        if self.keep_transcript:
            self.transcript.append((sender, receiver, tag, payload))
        return payload

    def extend(self, sender: str, receiver: str, payload: Payload) -> Payload:
        """More of the message just sent from ``sender`` to ``receiver`` (a streamed message: its
        bytes and ciphertexts add up, it counts as one message)."""
        n = _size(payload)
        self.blobs += 1 if isinstance(payload, (bytes, bytearray, memoryview)) else len(payload)
        self.bytes[(sender, receiver)] += n
        self._stage()["bytes"] += n
        if self.keep_transcript:
            for i in range(len(self.transcript) - 1, -1, -1):
                s, r, tag, sent = self.transcript[i]
                if (s, r) == (sender, receiver):
                    self.transcript[i] = (s, r, tag, [*flatten(sent), *flatten(payload)])
                    break
        return payload

    def request(self, sender: str, receiver: str, payload: Payload, tag: str = "") -> Payload:
        self.rounds += 1
        self._stage()["rounds"] += 1
        return self.send(sender, receiver, payload, tag)

    def snapshot(self) -> dict:
        """This channel's counts (and transcript) as plain data, for :meth:`merge` in another process."""
        return {"bytes": dict(self.bytes), "messages": dict(self.messages), "rounds": self.rounds,
                "stages": {k: dict(v) for k, v in self.stages.items()}, "blobs": self.blobs,
                "transcript": list(self.transcript)}

    def merge(self, parts: list[dict]) -> None:
        """Add the counts of worker channels that each carried a share of the same messages."""
        parts = [p for p in parts if p["blobs"]]
        if not parts:
            return
        for p in parts:
            for pair, n in p["bytes"].items():
                self.bytes[pair] += n
            self.blobs += p["blobs"]
        for pair in {pair for p in parts for pair in p["messages"]}:
            self.messages[pair] += max(p["messages"].get(pair, 0) for p in parts)
        self.rounds += max(p["rounds"] for p in parts)
        for stage in {s for p in parts for s in p["stages"]}:
            mine = self.stages.setdefault(stage, {"bytes": 0, "messages": 0, "rounds": 0})
            theirs = [p["stages"].get(stage, {}) for p in parts]
            mine["bytes"] += sum(t.get("bytes", 0) for t in theirs)
            mine["messages"] += max(t.get("messages", 0) for t in theirs)
            mine["rounds"] += max(t.get("rounds", 0) for t in theirs)
        if self.keep_transcript:
            # one entry per message: the workers' shares concatenated in worker (= chunk) order
            merged: dict[tuple, list] = {}
            for p in parts:
                for sender, receiver, tag, payload in p["transcript"]:
                    merged.setdefault((sender, receiver, tag), []).extend(flatten(payload))
            self.transcript.extend((s, r, t, pl) for (s, r, t), pl in merged.items())

    def sent(self, party: str) -> int:
        return sum(n for (s, _), n in self.bytes.items() if s == party)

    def received(self, party: str) -> int:
        return sum(n for (_, r), n in self.bytes.items() if r == party)

    @property
    def total(self) -> int:
        return sum(self.bytes.values())

    def charge(self, costs) -> None:
        """Add this channel's byte counts and rounds to a :class:`methods.base.Costs`."""
        for party in {p for pair in self.bytes for p in pair}:
            pc = costs.party(party)
            pc.bytes_sent += self.sent(party)
            pc.bytes_received += self.received(party)
        costs.rounds += self.rounds


# --------------------------------------------------------------------------- worker pool

CHAIN = "__chain__"
#: a call that drops every shard of a worker (a service starting its next run)
RESET = "__reset__"


@dataclass(frozen=True)
class Step:
    """One shard call of a chain. Its result goes to the next step's shard as the first argument
    when ``to`` names that party (counted on the channel under ``tag``; ``request`` opens a round).
    With ``split`` the call returns ``(payload, kept)``: the payload is handed on, ``kept`` is
    returned to the caller; otherwise a step that hands nothing on returns its whole result.

    With ``stream`` the first argument is a dict by chunk that is handed to this step one chunk at
    a time, each result going straight to the next step (whose results, dicts or None, are merged):
    no more than one chunk's payload is held at once, and the whole stream counts as one message."""

    party: str
    method: str
    args: tuple = ()
    to: str | None = None
    tag: str = ""
    request: bool = False
    split: bool = False
    stream: bool = False

    def __post_init__(self):
        if self.stream and (self.to is None or self.split):
            raise ValueError(f"a streamed step ({self.party}.{self.method}) hands every result on: "
                             "it needs `to` and no `split`")


def _merge(merged, part):
    if part is None:
        return merged
    if not isinstance(part, dict):
        raise TypeError(f"a step after a streamed one returns dicts or None; got {type(part).__name__}")
    return {**(merged or {}), **part}


def _run_stream(shards: dict, channel: Channel, cpu: dict, step: Step, nxt: Step, args: tuple):
    """``step`` on one chunk of its first argument at a time, each result handed to ``nxt``."""
    items, rest = args[0], args[1:]
    merged, sent = None, False
    for c in items:
        t0 = time.process_time()
        payload = _call(shards, step.party, step.method, ({c: items[c]}, *rest))
        t1 = time.process_time()
        cpu[step.party] = cpu.get(step.party, 0.0) + t1 - t0
        blobs = flatten(payload)
        if blobs and sent:
            channel.extend(step.party, step.to, blobs)
        elif blobs:
            (channel.request if step.request else channel.send)(step.party, step.to, blobs, step.tag)
            sent = True
        del blobs
        merged = _merge(merged, _call(shards, nxt.party, nxt.method, (payload, *nxt.args)))
        cpu[nxt.party] = cpu.get(nxt.party, 0.0) + time.process_time() - t1
    return merged


def _run_chain(shards: dict, stage: str, steps: list[Step], keep_transcript: bool):
    channel = Channel(keep_transcript=keep_transcript)
    channel.stage = stage
    outputs, cpu, handed = [], {}, None
    streamed = False
    for i, step in enumerate(steps):
        if streamed:  # run with the streamed step before it
            streamed = False
            continue
        args = step.args if i == 0 or steps[i - 1].to is None else (handed, *step.args)
        if step.stream:
            if i + 1 == len(steps) or steps[i + 1].to is not None:
                raise ValueError(f"the streamed step {step.party}.{step.method} needs a next step "
                                 "that hands nothing on")
            outputs += [None, _run_stream(shards, channel, cpu, step, steps[i + 1], args)]
            streamed = True
            continue
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
    from methods.he.kmeans_protocol import SHARDS

    if party == CHAIN:
        return _run_chain(shards, method, *args)
    if method == "__init__":
        shards[party] = SHARDS[party](*args)
        return None
    if method == RESET:
        shards.clear()
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
        done = self.run({w: (party, method, args) for w, args in enumerate(per_worker)})
        errors = [value for status, value, _ in done.values() if status != "ok"]
        if errors:
            raise WorkerError(f"{party}.{method} failed in a worker:\n{errors[0]}")
        return [done[w][1] for w in range(self.workers)]

    def run(self, calls: dict[int, tuple[str, str, tuple]]) -> dict[int, tuple[str, Any, float]]:
        """One call ``(party, method, args)`` on each worker named, in parallel; returns
        ``{worker: (status, value or traceback, cpu seconds)}`` ("ok" or "error") and charges the
        CPU seconds to ``cpu[party]``."""
        done: dict[int, tuple[str, Any, float]] = {}
        if self.workers == 1:
            for w, (party, method, args) in calls.items():
                if w != 0:
                    raise ValueError(f"worker {w} of a one-worker pool")
                cpu = time.process_time()
                try:  # in-process: an exception propagates as it is
                    value = _call(self._local, party, method, args)
                finally:
                    self.cpu[party] = self.cpu.get(party, 0.0) + time.process_time() - cpu
                done[w] = ("ok", value, time.process_time() - cpu)
            return done
        for w, msg in calls.items():
            self._conns[w].send(msg)
        for w, (party, _, _) in calls.items():
            done[w] = self._conns[w].recv()
            self.cpu[party] = self.cpu.get(party, 0.0) + done[w][2]
        return done

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
