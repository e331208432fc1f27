"""An HE party as a network service.

    python -m methods.he.serve server --listen HOST:PORT [--workers N] [--token-file F] [--tls-dir D]
    python -m methods.he.serve keyholder --listen HOST:PORT ...

``server`` is the compute server: it is given public contexts only (its shards refuse a context
holding a secret key) and keeps its ``--workers`` processes inside it; ``keyholder`` hosts the K-means
key holder's decryption shards. The owner (a harness job with ``method.server=HOST:PORT``, or
:class:`~methods.he.kmeans.HEKMeans` / :class:`~methods.he.method.HEMethod` in a script) connects
and drives the run; the service answers calls, one run after another.

The run's token is read from ``--token-file`` or the ``PRIVMARK_HE_TOKEN`` environment variable (a
service without one refuses to start); a call without it is refused. ``--tls-cert/--tls-key``
serve TLS; ``--tls-dir DIR`` makes a self-signed pair there. On start the service prints one line,
``listening on HOST:PORT`` (the port chosen when PORT is 0). SIGTERM or SIGINT stops it cleanly
(workers closed, sockets released); ``--parent PID`` makes it die with that process.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
import traceback
from concurrent import futures
from pathlib import Path

from methods.he import rpc
from methods.he.transport import RESET, Pool

ROLES = ("server", "keyholder")
#: the shard parties and the objects each role may host
PARTIES = {"server": {"server"}, "keyholder": {"keyholder"}}
OBJECTS = {"server": {"lr_server"}, "keyholder": set()}


def _new_object(kind: str, args: tuple):
    if kind == "lr_server":
        from methods.he.logreg_server import LRServer

        return LRServer(*args)
    raise ValueError(f"unknown object {kind!r}")


class PartyService:
    """What one service answers: shard calls on its worker pool, and calls on hosted objects."""

    def __init__(self, role: str, workers: int, token: str):
        if role not in ROLES:
            raise ValueError(f"role {role!r}; expected one of {list(ROLES)}")
        self.role, self.token = role, token
        self.pool = Pool(workers)
        self.pool.__enter__()
        self._pool_lock = threading.Lock()
        self._objects: dict[str, object] = {}
        self._kept: dict[int, bytes] = {}
        self._next_ref = 0
        self._lock = threading.Lock()

    # -- kept bytes (server-internal data stays here) -------------------------------------------
    def _keep(self, value):
        if isinstance(value, (bytes, bytearray)):
            with self._lock:
                self._next_ref += 1
                self._kept[self._next_ref] = bytes(value)
                return rpc.Ref(self._next_ref)
        if isinstance(value, dict):
            return {k: self._keep(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(self._keep(v) for v in value)
        return value

    def _resolve(self, value):
        if isinstance(value, rpc.Ref):
            with self._lock:
                return self._kept.pop(value.id)
        if isinstance(value, dict):
            return {k: self._resolve(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)) and not hasattr(value, "_fields"):
            if type(value) not in (list, tuple):
                return value
            return type(value)(self._resolve(v) for v in value)
        return value

    # -- requests -------------------------------------------------------------------------------
    def handle(self, request):
        kind, *rest = request
        if kind == "hello":
            (workers,) = rest
            if workers != self.pool.workers:
                raise ValueError(f"this {self.role} service runs {self.pool.workers} worker(s); the owner "
                                 f"asked for {workers} (method.workers must match the service's --workers)")
            with self._pool_lock:
                self.pool.broadcast(self.role, RESET, ())
            self._objects.clear()
            self._kept.clear()
            return {"role": self.role, "workers": self.pool.workers, "pid": os.getpid()}
        if kind == "run":
            party, calls, keep = rest
            if party not in PARTIES[self.role]:
                raise PermissionError(f"a {self.role} service hosts no {party!r} shards")
            calls = {int(w): (party, m, self._resolve(a)) for w, (m, a) in calls.items()}
            with self._pool_lock:
                done = self.pool.run(calls)
            return {w: (s, self._keep(v) if keep and s == "ok" else v, c) for w, (s, v, c) in done.items()}
        if kind == "new":
            name, obj_kind, args = rest
            if obj_kind not in OBJECTS[self.role]:
                raise PermissionError(f"a {self.role} service hosts no {obj_kind!r}")
            cpu = time.process_time()
            self._objects[name] = _new_object(obj_kind, args)
            return time.process_time() - cpu
        if kind == "call":
            name, method, args = rest
            target = self._objects[name]
            for part in method.split("."):
                if part.startswith("_"):
                    raise PermissionError(f"{method!r} is not a public method")
                target = getattr(target, part)
            cpu = time.process_time()
            out = target(*args) if callable(target) else target
            return out, time.process_time() - cpu
        raise ValueError(f"unknown request {kind!r}")

    def call(self, request_iterator, context):
        import grpc

        if not rpc.token_ok(context.invocation_metadata(), self.token):
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong run token")
        data = b"".join(request_iterator)
        t0 = time.perf_counter()  # the whole request is here: from now on the service works
        try:
            reply = ("ok", self.handle(rpc.loads(data)))
        except Exception:
            reply = ("error", traceback.format_exc())
        out = rpc.dumps(reply)
        # the seconds spent here, so that the owner can tell time on the link from time in the service
        yield from rpc.frames(out + rpc.dumps(time.perf_counter() - t0))

    def close(self) -> None:
        self.pool.close()


def start(role: str, listen: str, workers: int, token: str, cert: Path | None = None,
          key: Path | None = None):
    """Start a service; returns (grpc server, service, bound address)."""
    import grpc

    service = PartyService(role, workers, token)  # workers fork before gRPC starts its threads
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16), options=rpc.OPTIONS)
    handler = grpc.method_handlers_generic_handler(
        rpc.SERVICE, {"Call": grpc.stream_stream_rpc_method_handler(service.call)})
    server.add_generic_rpc_handlers((handler,))
    host = listen.rpartition(":")[0]
    if cert is not None:
        creds = grpc.ssl_server_credentials([(Path(key).read_bytes(), Path(cert).read_bytes())])
        port = server.add_secure_port(listen, creds)
    else:
        port = server.add_insecure_port(listen)
    if not port:
        service.close()
        raise OSError(f"cannot listen on {listen}")
    server.start()
    return server, service, f"{host}:{port}"


def _read_token(path: str | None) -> str:
    if path:
        token = Path(path).read_text().strip()
    else:
        token = os.environ.get(rpc.TOKEN_ENV, "").strip()
    if not token:
        raise SystemExit(f"no run token: give --token-file or set {rpc.TOKEN_ENV}")
    return token


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m methods.he.serve", description=__doc__.splitlines()[0])
    ap.add_argument("role", choices=ROLES)
    ap.add_argument("--listen", required=True, help="HOST:PORT (PORT 0: any free port)")
    ap.add_argument("--workers", type=int, default=1, help="worker processes (= the owner's method.workers)")
    ap.add_argument("--token-file", help=f"file holding the run token (else ${rpc.TOKEN_ENV})")
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    ap.add_argument("--tls-dir", help="make a self-signed certificate and key here (cert.pem, key.pem)")
    ap.add_argument("--parent", type=int, help="die with this process")
    args = ap.parse_args(argv)
    if args.parent:
        from methods.lifeline import die_with_parent

        die_with_parent(args.parent)
    token = _read_token(args.token_file)
    cert, key = args.tls_cert, args.tls_key
    if args.tls_dir:
        cert, key = rpc.self_signed(Path(args.tls_dir), args.listen.rpartition(":")[0] or "127.0.0.1")
    if (cert is None) != (key is None):
        raise SystemExit("--tls-cert and --tls-key go together")
    if args.workers < 1:
        raise SystemExit(f"--workers={args.workers}; expected an integer >= 1")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    server, service, address = start(args.role, args.listen, args.workers, token, cert, key)
    print(f"listening on {address}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.stop(grace=1.0).wait(5)
        service.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
