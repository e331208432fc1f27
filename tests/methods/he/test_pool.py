"""The HE worker pool: workers never outlive the process that started them, and results come back
in worker order whatever order the workers finish in."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from methods.he import kmeans_protocol
from methods.he.transport import Pool
from methods.lifeline import alive

REPO = Path(__file__).resolve().parents[3]

# A pool of two workers, each busy in a long call (as in a Lloyd round), or idle waiting for one;
# "fallback": without the kernel's parent-death signal (as off Linux), the watch thread alone.
SCRIPT = textwrap.dedent("""
    import sys, time
    import methods.lifeline
    from methods.he import kmeans_protocol
    from methods.he.transport import Pool

    class Busy:
        def spin(self, seconds):
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                pass

    kmeans_protocol.SHARDS["busy"] = Busy
    if sys.argv[1] == "fallback":
        methods.lifeline.set_parent_death_signal = lambda sig: False
    with Pool(2) as pool:
        print(*(p.pid for p in pool._procs), flush=True)
        pool.broadcast("busy", "__init__", ())
        if sys.argv[1] != "idle":
            pool.broadcast("busy", "spin", (60.0,))
        else:
            time.sleep(60)
""")


class Sleeper:
    def nap(self, seconds):
        time.sleep(seconds)
        return os.getpid()


@pytest.mark.parametrize("state", ["busy", "idle", "fallback"])
def test_workers_die_within_seconds_of_a_killed_parent(state):
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, state], stdout=subprocess.PIPE, text=True,
                            cwd=REPO)
    try:
        workers = [int(p) for p in proc.stdout.readline().split()]
        assert len(workers) == 2
        time.sleep(1.0)  # the workers are in their call (or waiting for one)
        assert all(alive(p) for p in workers)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline and any(alive(p) for p in workers):
            time.sleep(0.1)
        survivors = [p for p in workers if alive(p)]
    finally:
        proc.kill()
    for p in survivors:  # leave nothing behind even when the test fails
        os.kill(p, signal.SIGKILL)
    assert not survivors, f"workers {survivors} outlived their parent by 5 s"


def test_results_come_in_worker_order_not_completion_order(monkeypatch):
    monkeypatch.setitem(kmeans_protocol.SHARDS, "sleeper", Sleeper)
    with Pool(2) as pool:
        pool.broadcast("sleeper", "__init__", ())
        pids = [p.pid for p in pool._procs]
        # the first worker finishes last
        assert pool.map("sleeper", "nap", [(0.5,), (0.0,)]) == pids


class Producer:
    """Hands on one blob per chunk and records how many chunks each call got."""

    def __init__(self):
        self.calls = []

    def make(self, items: dict):
        self.calls.append(sorted(items))
        return {c: [bytes([c]) * (c + 1)] for c in items}

    def calls_seen(self):
        return self.calls


class Consumer:
    def __init__(self):
        self.held = {}

    def take(self, payload: dict):
        self.held.update(payload)
        return {c: len(v[0]) for c, v in payload.items()}


@pytest.mark.parametrize("workers", [1, 2])
def test_a_streamed_step_hands_on_one_chunk_at_a_time_as_one_message(monkeypatch, workers):
    from methods.he.transport import Step

    monkeypatch.setitem(kmeans_protocol.SHARDS, "producer", Producer)
    monkeypatch.setitem(kmeans_protocol.SHARDS, "consumer", Consumer)
    groups = [{0: None, 1: None, 2: None}, {3: None, 4: None}][:workers]
    with Pool(workers) as pool:
        pool.broadcast("producer", "__init__", ())
        pool.broadcast("consumer", "__init__", ())
        res = pool.chain([[Step("producer", "make", (g,), to="consumer", tag="t", stream=True),
                           Step("consumer", "take")] for g in groups], keep_transcript=True)
        calls = pool.broadcast("producer", "calls_seen", ())
    for g, (outputs, counts), seen in zip(groups, res, calls, strict=True):
        assert seen == [[c] for c in g]  # one chunk per call, in order
        assert outputs == [None, {c: c + 1 for c in g}]  # the consumer's results, merged
        assert counts["messages"] == {("producer", "consumer"): 1}
        assert counts["bytes"] == {("producer", "consumer"): sum(c + 1 for c in g)}
        assert counts["blobs"] == len(g)
        [(sender, receiver, tag, blobs)] = counts["transcript"]
        assert (sender, receiver, tag) == ("producer", "consumer", "t")
        assert blobs == [bytes([c]) * (c + 1) for c in g]


def test_a_streamed_step_must_hand_on_to_a_last_step():
    from methods.he.transport import Step

    with pytest.raises(ValueError, match="streamed step .* needs `to`"):
        Step("owner", "encrypt", stream=True)
    with pytest.raises(ValueError, match="needs `to` and no `split`"):
        Step("owner", "encrypt", to="server", split=True, stream=True)
