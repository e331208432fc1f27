"""What a run's traffic costs on a network: the model every record and report uses.

A link is a bandwidth (Mbit/s, ``None``: unshaped) and a round-trip time (ms). A run that moved
``bytes_total`` bytes in ``round_trips`` request/reply rounds spends, on that link,

    modelled_s = bytes_total * 8 / (bandwidth_mbit * 1e6) + round_trips * rtt_ms / 1000

on top of its compute (no overlap of transfer and compute is assumed, none is subtracted; methods
that move nothing cost 0). The HE transport applies the same link for real (``method.transport=grpc``:
a token bucket per direction on the socket, RTT/2 each way: :class:`LinkShaper`), which is how the
model is checked; the federated Deployment Engine puts one on each SuperNode's link to the
SuperLink.
"""

from __future__ import annotations

import collections
import socket
import threading
import time
from collections.abc import Mapping
from typing import Any

#: the profiles shipped in conf/network (name -> bandwidth Mbit/s, RTT ms), for reports
PROFILES: dict[str, tuple[float | None, float]] = {"loopback": (None, 0.0), "lan": (1000.0, 0.5),
                                                   "wan": (100.0, 40.0)}


def modelled_seconds(bytes_total: float, round_trips: float, bandwidth_mbit: float | None,
                     rtt_ms: float) -> float:
    """Seconds the bytes and round trips take on the link (0 for an unshaped, zero-RTT one)."""
    if bytes_total < 0 or round_trips < 0:
        raise ValueError(f"bytes_total={bytes_total!r}, round_trips={round_trips!r}; expected >= 0")
    transfer = bytes_total * 8 / (bandwidth_mbit * 1e6) if bandwidth_mbit else 0.0
    return float(transfer + round_trips * (rtt_ms or 0.0) / 1000.0)


def network_cost(costs: Mapping[str, Any], network: Mapping[str, Any] | None,
                 measured: bool = False) -> dict[str, Any]:
    """``costs.network`` of a record: the profile, and what the record's own ``bytes_total`` and
    ``rounds`` cost on it; ``measured`` says whether the run's traffic really crossed that link."""
    net = dict(network or {})
    bw, rtt = net.get("bandwidth_mbit"), float(net.get("rtt_ms") or 0.0)
    return {"profile": net.get("name", "loopback"), "bandwidth_mbit": bw, "rtt_ms": rtt,
            "modelled_s": modelled_seconds(float(costs.get("bytes_total") or 0),
                                           float(costs.get("rounds") or 0), bw, rtt),
            "measured": bool(measured)}


def was_measured(costs: Mapping[str, Any], network: Mapping[str, Any] | None) -> bool:
    """Whether a record's traffic went through a shaped link of this profile (the HE transport
    says so in ``costs.wire.measured``)."""
    net = dict(network or {})
    if not (net.get("bandwidth_mbit") or net.get("rtt_ms")):
        return False
    wire = costs.get("wire") or {}
    return bool(wire.get("measured")) and (wire.get("network") or {}).get("name") == net.get("name")


class _Bucket:
    """Departure times of the bytes leaving in one direction: a token bucket of ``burst_s`` seconds
    of credit at ``bandwidth`` bits/s (None: no limit)."""

    def __init__(self, bandwidth_bps: float | None, burst_s: float = 0.005):
        self.bps, self.burst, self.next = bandwidth_bps, burst_s, 0.0
        self.lock = threading.Lock()

    def departure(self, n: int) -> float:
        now = time.monotonic()
        if not self.bps:
            return now
        with self.lock:
            self.next = max(self.next, now - self.burst) + n * 8 / self.bps
            return self.next


class LinkShaper:
    """A TCP relay from a local port to ``target`` (``host:port``) that counts the bytes per
    direction (``up``: towards the target, ``down``: back) and, when given, enforces
    ``bandwidth_mbit`` per direction and adds ``rtt_ms / 2`` of delay each way."""

    CHUNK = 256 << 10

    def __init__(self, target: str, bandwidth_mbit: float | None = None, rtt_ms: float = 0.0):
        host, _, port = target.rpartition(":")
        self.target = (host.strip("[]"), int(port))
        bps = float(bandwidth_mbit) * 1e6 if bandwidth_mbit else None
        self.delay = max(float(rtt_ms or 0.0), 0.0) / 2000.0
        self._buckets = {"up": _Bucket(bps), "down": _Bucket(bps)}
        self.bytes = {"up": 0, "down": 0}
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self._socks: list[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._accept, name="link-accept", daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            try:
                out = socket.create_connection(self.target)
            except OSError:
                conn.close()
                continue
            for s in (conn, out):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._socks += [conn, out]
            self._pump(conn, out, "up")
            self._pump(out, conn, "down")

    def _pump(self, src: socket.socket, dst: socket.socket, direction: str) -> None:
        queue: collections.deque = collections.deque()
        ready = threading.Condition()
        bucket = self._buckets[direction]

        def read():
            buf = bytearray(self.CHUNK)
            while True:
                try:
                    n = src.recv_into(buf)
                except OSError:
                    n = 0
                if not n:
                    break
                leave = bucket.departure(n)
                with self._lock:
                    self.bytes[direction] += n
                with ready:
                    queue.append((leave + self.delay, bytes(buf[:n])))
                    ready.notify()
                wait = leave - time.monotonic()
                if wait > 0:  # the sender sees the link's pace
                    time.sleep(wait)
            with ready:
                queue.append(None)
                ready.notify()

        def write():
            while True:
                with ready:
                    while not queue:
                        ready.wait()
                    item = queue.popleft()
                if item is None:
                    try:
                        dst.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
                    return
                at, data = item
                wait = at - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                try:
                    dst.sendall(data)
                except OSError:
                    return

        threading.Thread(target=read, name=f"link-{direction}-read", daemon=True).start()
        threading.Thread(target=write, name=f"link-{direction}-write", daemon=True).start()

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self.bytes)

    def close(self) -> None:
        self._closed = True
        for s in [self._listener, *self._socks]:
            try:
                s.close()
            except OSError:
                pass
