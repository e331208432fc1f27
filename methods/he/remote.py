"""The owner's side of a run whose parties are apart: a :class:`Session` with the HE services.

``transport="local"`` (default) runs every party's shards in the owner's :class:`~methods.he.transport.Pool`.
``transport="grpc"`` puts the compute server (and, unless the owner holds the key, the K-means key
holder's shards) in services (:mod:`methods.he.serve`): at ``server`` / ``keyholder`` addresses, or
started by the session as child processes on 127.0.0.1 (``server=None``: both started, each with
the run's ``workers``; stopped when the session ends; they die with this process).

The link to the compute server goes through a :class:`~methods.he.rpc.LinkShaper` that counts the
bytes crossing its socket, per direction and per call (one round trip), and applies the ``network``
profile (bandwidth per direction, RTT/2 each way). The owner and the key holder are on the same
side (the merchant's): only owner <-> server and key holder <-> server traffic crosses the
profile's link; a key-holder service is reached unshaped (its bytes counted as encoded messages),
and what the server and the key holder exchange is relayed by the owner.

:class:`RemotePool` has :class:`~methods.he.transport.Pool`'s interface, so the protocol drivers
run unchanged: a chain runs step by step, each step of all workers in one call to the party's
service (ciphertexts that every worker needs cross once), counted on the same per-worker
:class:`~methods.he.transport.Channel` as in a local chain. What server shards hand each other
(the partial totals of :data:`SERVER_INTERNAL` steps) stays in the server service.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from methods._util import REPO
from methods.he import rpc
from methods.he.transport import Channel, Pool, WorkerError, flatten

TRANSPORTS = ("local", "grpc")
#: server steps whose result only other server shards use: kept in the server service
SERVER_INTERNAL = {"partial_sums", "packed_sums", "extract_partials"}
START_TIMEOUT_S = 120.0

_current: contextvars.ContextVar[Session | None] = contextvars.ContextVar("he_session", default=None)


def current() -> Session | None:
    """The session open in this context (a pipeline's stages share one), or None."""
    return _current.get()


def check_address(name: str, value) -> None:
    if value is None:
        return
    host, sep, port = str(value).rpartition(":")
    if not (isinstance(value, str) and sep and host and port.isdigit() and 0 < int(port) < 65536):
        raise ValueError(f"{name}={value!r}; expected HOST:PORT (port 1-65535) or None")


def check_link(transport, server, keyholder, tls, tls_cert, token_file, network) -> None:
    """The data-free checks of a run's transport settings (ValueError naming the parameter)."""
    if transport not in TRANSPORTS:
        raise ValueError(f"transport={transport!r}; expected one of {list(TRANSPORTS)}")
    check_address("server", server)
    check_address("keyholder", keyholder)
    if not isinstance(tls, bool):
        raise ValueError(f"tls={tls!r}; expected true or false")
    if transport == "local" and (server or keyholder):
        raise ValueError(f"server={server!r}, keyholder={keyholder!r} need transport='grpc' "
                         "(transport='local' runs every party in this process's pool)")
    if keyholder and not server:
        raise ValueError(f"keyholder={keyholder!r} without server: give the compute server's address too")
    if server and token_file is None and not os.environ.get(rpc.TOKEN_ENV):
        raise ValueError(f"server={server!r} needs the services' token: token_file=<path> or "
                         f"${rpc.TOKEN_ENV}")
    if server and tls and tls_cert is None:
        raise ValueError("tls=true with a server address needs tls_cert=<the services' certificate (PEM)>")
    if network is not None:
        bw, rtt = dict(network).get("bandwidth_mbit"), dict(network).get("rtt_ms", 0.0)
        if bw is not None and not (isinstance(bw, (int, float)) and bw > 0):
            raise ValueError(f"network bandwidth_mbit={bw!r}; expected a number > 0 or None")
        if not (isinstance(rtt, (int, float)) and rtt >= 0):
            raise ValueError(f"network rtt_ms={rtt!r}; expected a number >= 0")


def shaped(network) -> bool:
    net = dict(network or {})
    return bool(net.get("bandwidth_mbit")) or bool(net.get("rtt_ms"))


class _Service:
    """A service started by the session as a child process (``python -m methods.he.serve``)."""

    def __init__(self, role: str, workers: int, token: str, tls: tuple[Path, Path] | None):
        cmd = [sys.executable, "-m", "methods.he.serve", role, "--listen", "127.0.0.1:0",
               "--workers", str(workers), "--parent", str(os.getpid())]
        if tls is not None:
            cmd += ["--tls-cert", str(tls[0]), "--tls-key", str(tls[1])]
        env = {**os.environ, rpc.TOKEN_ENV: token}
        pythonpath = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
        env["PYTHONPATH"] = pythonpath
        self.role = role
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, env=env, cwd=REPO, close_fds=True)
        self.address: str | None = None

    def wait_address(self) -> str:
        """The address it listens on, from its first line of output (it starts in the meantime)."""
        role = self.role
        deadline = time.monotonic() + START_TIMEOUT_S
        line = b""
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if ready:
                line = self.proc.stdout.readline()
                break
            if self.proc.poll() is not None:
                break
        text = line.decode(errors="replace").strip()
        if not text.startswith("listening on "):
            self.stop()
            raise RuntimeError(f"the {role} service did not start (exit code {self.proc.returncode}): "
                               f"{text!r}")
        self.address = text.removeprefix("listening on ")
        return self.address

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()


class _Link:
    """The owner's connection to one service: gRPC client, and on the link to the compute server a
    shaper (counts the socket's bytes, applies the profile). The key holder is on the owner's side:
    its link is neither shaped nor relayed (its bytes are the encoded messages)."""

    def __init__(self, role: str, address: str, token: str, cert: bytes | None, network):
        self.role = role
        self.shaper = None
        target = address
        if role == "server":
            net = dict(network or {})
            self.shaper = rpc.LinkShaper(address, net.get("bandwidth_mbit"), net.get("rtt_ms") or 0.0)
            target = self.shaper.address
        host = address.rpartition(":")[0].strip("[]")
        name = ("localhost" if host in ("127.0.0.1", "localhost") else host) if cert else None
        self.client = rpc.Client(target, token, cert, server_name=name)
        self.client.address = address
        self.stages: dict[str, dict[str, int]] = {}
        self.rounds: list[list] = []  # per call: [stage, bytes up, bytes down, seconds crossing]

    def _counts(self) -> dict[str, int]:
        if self.shaper is not None:
            return self.shaper.counts()
        return {"up": self.client.sent, "down": self.client.received}

    def call(self, request, stage: str = ""):
        before, wall, service = self._counts(), self.client.wall_s, self.client.service_s
        try:
            return self.client.call(request)
        finally:
            after = self._counts()
            st = self.stages.setdefault(stage, {"up": 0, "down": 0, "calls": 0, "transit_s": 0.0})
            st["up"] += after["up"] - before["up"]
            st["down"] += after["down"] - before["down"]
            st["calls"] += 1
            transit = (self.client.wall_s - wall) - (self.client.service_s - service)
            st["transit_s"] += transit
            # one request and its reply: a round trip on this link
            self.rounds.append([stage, after["up"] - before["up"], after["down"] - before["down"],
                                round(transit, 6)])

    def counts(self) -> dict:
        wire = self._counts()
        return {"address": self.client.address, "socket_counted": self.shaper is not None,
                "wire_up": wire["up"], "wire_down": wire["down"],
                "messages_up": self.client.sent, "messages_down": self.client.received,
                "calls": self.client.calls, "call_s": self.client.wall_s, "service_s": self.client.service_s,
                "transit_s": self.client.wall_s - self.client.service_s,
                "stages": {k: dict(v) for k, v in self.stages.items()},
                "rounds": [list(r) for r in self.rounds]}

    def close(self) -> None:
        self.client.close()
        if self.shaper is not None:
            self.shaper.close()


class Session:
    """The services of one run and the owner's links to them (a context manager)."""

    def __init__(self, transport: str = "local", server: str | None = None, keyholder: str | None = None,
                 tls: bool = False, tls_cert: str | None = None, token_file: str | None = None,
                 network=None, workers: int = 1):
        check_link(transport, server, keyholder, tls, tls_cert, token_file, network)
        self.transport, self.server, self.keyholder = transport, server, keyholder
        self.tls, self.tls_cert, self.token_file = tls, tls_cert, token_file
        self.network = dict(network) if network is not None else None
        self.workers = int(workers)
        self.links: dict[str, _Link] = {}
        self._services: list[_Service] = []
        self._tmp: Path | None = None
        self._reset = None
        self.startup_s = 0.0

    @property
    def remote(self) -> bool:
        return self.transport == "grpc"

    @property
    def measured(self) -> bool:
        """Whether the traffic to the compute server crosses a shaped link."""
        return self.remote and shaped(self.network)

    def __enter__(self) -> Session:
        t0 = time.perf_counter()
        try:
            if self.remote:
                self._open()
        except BaseException:
            self.close()
            raise
        self.startup_s = time.perf_counter() - t0
        self._reset = _current.set(self)
        return self

    def _open(self) -> None:
        cert = None
        if self.server is None:  # start both services here, for this run
            token = rpc.new_token()
            self._tmp = Path(tempfile.mkdtemp(prefix="privmark-he-"))
            pair = rpc.self_signed(self._tmp) if self.tls else None
            cert = pair[0].read_bytes() if pair else None
            for role in ("server", "keyholder"):  # both start at once
                self._services.append(_Service(role, self.workers, token, pair))
            addresses = {svc.role: svc.wait_address() for svc in self._services}
        else:
            token = (Path(self.token_file).read_text().strip() if self.token_file
                     else os.environ.get(rpc.TOKEN_ENV, "").strip())
            cert = Path(self.tls_cert).read_bytes() if self.tls else None
            addresses = {"server": self.server}
            if self.keyholder:
                addresses["keyholder"] = self.keyholder
        for role, address in addresses.items():
            link = _Link(role, address, token, cert, self.network)
            self.links[role] = link
            link.client.wait_ready()

    def __exit__(self, *exc) -> None:
        if self._reset is not None:
            _current.reset(self._reset)
            self._reset = None
        self.close()

    def close(self) -> None:
        for link in self.links.values():
            link.close()
        for svc in self._services:
            svc.stop()
        self._services = []
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    # -- what the protocols use ------------------------------------------------------------------
    def pool(self, workers: int, channel: Channel | None = None):
        if not self.remote:
            return Pool(workers)
        return RemotePool(workers, self.links, channel)

    def lr_server(self, public: bytes, params, seed=None, channel: Channel | None = None):
        from methods.he.logreg_server import LRServer

        if not self.remote:
            return LRServer(public, params, seed=seed)
        return RemoteLRServer(self.links["server"], public, params, seed, channel)

    def wire(self) -> dict:
        """The bytes that crossed each link's socket (both directions), per stage, and the calls."""
        return {"transport": self.transport, "network": self.network, "measured": self.measured,
                "startup_s": self.startup_s, "tls": bool(self.tls),
                "links": {role: link.counts() for role, link in self.links.items()}}


@contextlib.contextmanager
def session_for(est, workers: int):
    """The session an estimator runs in: the one open in this context (a pipeline's), else its own
    (from its ``transport``, ``server``, ... parameters), closed when the block ends."""
    open_one = current()
    if open_one is not None:
        yield open_one
        return
    with Session(getattr(est, "transport", "local"), getattr(est, "server", None),
                 getattr(est, "keyholder", None), bool(getattr(est, "tls", False)),
                 getattr(est, "tls_cert", None), getattr(est, "token_file", None),
                 getattr(est, "network", None), workers) as session:
        yield session


def lr_server(public: bytes, params, seed=None, channel: Channel | None = None):
    """The logistic regression's compute server: in this process, or in the open session's service."""
    session = current()
    if session is None:
        from methods.he.logreg_server import LRServer

        return LRServer(public, params, seed=seed)
    return session.lr_server(public, params, seed, channel)


# -- the pool with remote parties ---------------------------------------------------------------
class RemotePool:
    """:class:`~methods.he.transport.Pool`'s interface over a local pool (the owner's shards, and
    the key holder's when the owner holds the key) and the services' pools."""

    def __init__(self, workers: int, links: dict[str, _Link], channel: Channel | None = None):
        if not isinstance(workers, int) or workers < 1:
            raise ValueError(f"workers={workers!r}; expected an integer >= 1")
        self.workers = workers
        self.links = links
        self.local = Pool(workers)
        self.channel = channel
        self.cpu: dict[str, float] = {}

    def __enter__(self) -> RemotePool:
        self.local.__enter__()
        try:
            for link in self.links.values():
                link.call(("hello", self.workers), "setup")
        except BaseException:
            self.local.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.local.close()
        for party, secs in self.local.cpu.items():
            self.cpu[party] = self.cpu.get(party, 0.0) + secs
        self.local.cpu = {}

    def _stage(self) -> str:
        return self.channel.stage if self.channel is not None else ""

    def _run(self, party: str, calls: dict[int, tuple[str, tuple, bool]]) -> dict[int, Any]:
        link = self.links.get(party)
        if link is None:
            done = self.local.run({w: (party, m, a) for w, (m, a, _) in calls.items()})
        else:
            keep = any(k for _, _, k in calls.values())
            request = ("run", party, {w: (m, a) for w, (m, a, _) in calls.items()}, keep)
            done = link.call(request, self._stage())
            for _, _, secs in done.values():
                self.cpu[party] = self.cpu.get(party, 0.0) + secs
        errors = [v for s, v, _ in done.values() if s != "ok"]
        if errors:
            method = next(iter(calls.values()))[0]
            raise WorkerError(f"{party}.{method} failed in a worker:\n{errors[0]}")
        return {w: v for w, (_, v, _) in done.items()}

    def map(self, party: str, method: str, per_worker: list[tuple]) -> list:
        if len(per_worker) != self.workers:
            raise ValueError(f"{len(per_worker)} argument tuples for {self.workers} workers")
        done = self._run(party, {w: (method, args, False) for w, args in enumerate(per_worker)})
        return [done[w] for w in range(self.workers)]

    def broadcast(self, party: str, method: str, args: tuple) -> list:
        return self.map(party, method, [args] * self.workers)

    def chain(self, per_worker: list, stage: str = "", keep_transcript: bool = False):
        """:meth:`Pool.chain` with the parties apart: step ``i`` of every worker runs in one call to
        its party (in parallel on that party's workers); the bytes one step hands the next party
        are counted on the worker's channel exactly as in a local chain."""
        channels = []
        for _ in per_worker:
            ch = Channel(keep_transcript=keep_transcript)
            ch.stage = stage
            channels.append(ch)
        outputs: list[list] = [[] for _ in per_worker]
        handed: list = [None] * len(per_worker)
        for i in range(max(len(steps) for steps in per_worker)):
            groups: dict[str, dict[int, tuple]] = {}
            for w, steps in enumerate(per_worker):
                if i >= len(steps):
                    continue
                step = steps[i]
                args = step.args if i == 0 or steps[i - 1].to is None else (handed[w], *step.args)
                keep = step.party in self.links and step.to is None and step.method in SERVER_INTERNAL
                groups.setdefault(step.party, {})[w] = (step.method, args, keep)
            for party, calls in groups.items():
                for w, result in self._run(party, calls).items():
                    step = per_worker[w][i]
                    payload, kept = result if step.split else (result, None)
                    if step.to is None:
                        outputs[w].append(kept if step.split else result)
                        continue
                    outputs[w].append(kept)
                    blobs = flatten(payload)
                    if blobs:
                        send = channels[w].request if step.request else channels[w].send
                        send(step.party, step.to, blobs, step.tag)
                    handed[w] = payload
        return [(outputs[w], channels[w].snapshot()) for w in range(len(per_worker))]


class RemoteLRServer:
    """:class:`~methods.he.logreg_server.LRServer` in the server service, called over the link.

    The owner keeps a copy of the public context (``ctx``, ``dump``) to encrypt what the protocol
    makes in the server's name before it has data (the intercept column)."""

    def __init__(self, link: _Link, public: bytes, params, seed, channel: Channel | None):
        from methods.he.crypto import load_context

        self._link, self._channel = link, channel
        self._name = f"lr-{id(self)}"
        self.ctx = load_context(public, lazy=False)
        self.ctx.global_scale = 2.0**params.scale_bits
        self.cpu_s = link.call(("new", self._name, "lr_server", (public, params, seed)), self._stage())

    def _stage(self) -> str:
        return self._channel.stage if self._channel is not None else ""

    def _call(self, method: str, *args):
        out, secs = self._link.call(("call", self._name, method, args), self._stage())
        self.cpu_s += secs
        return out

    def dump(self, vec) -> bytes:
        return vec.serialize()

    @property
    def d(self) -> int:
        return self._call("d")

    @property
    def ops(self):
        return _Ops(self._call("ops.as_dict"))

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        return lambda *args: self._call(name, *args)


class _Ops:
    def __init__(self, counts: dict):
        self._counts = counts

    def as_dict(self) -> dict:
        return dict(self._counts)
