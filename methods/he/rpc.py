"""The wire between HE parties on different processes or hosts: gRPC with plain bytes payloads.

One generic gRPC method (``/privmark.he.Party/Call``, streaming both ways, no protobuf schema):
a request is one encoded message split into frames of at most :data:`FRAME` bytes, the reply
likewise. Messages are pickles read back by :class:`SafeUnpickler`, which builds only plain data
(bytes, numbers, strings, lists, dicts, numpy arrays) and the few protocol value classes in
:data:`ALLOWED`; anything else in a message is refused, so a party cannot make another run code.

Every call carries the run's token (metadata ``x-privmark-token``); a service answers a call
without it, or with another, ``UNAUTHENTICATED`` before reading it. With TLS the token and the
payloads are encrypted on the wire; :func:`self_signed` makes a certificate for one run.

:class:`LinkShaper` (:mod:`methods.network`) is a TCP relay on the owner's side of a link: it
counts the bytes that really cross the socket in each direction, and, for a network profile,
enforces the bandwidth with a token bucket per direction and delays every byte by half the
round-trip time each way.
"""

from __future__ import annotations

import datetime
import hmac
import io
import ipaddress
import os
import pickle
import secrets
import threading
import time
from pathlib import Path
from typing import Any

from methods.network import LinkShaper, _Bucket  # noqa: F401 (the link of the HE transport, here since it began)

# the owner's pool forks workers that never use gRPC: no fork handlers (they warn and skip anyway)
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

SERVICE = "privmark.he.Party"
METHOD = f"/{SERVICE}/Call"
FRAME = 4 << 20
TOKEN_KEY = "x-privmark-token"
TOKEN_ENV = "PRIVMARK_HE_TOKEN"
#: gRPC options on both ends: messages of any size (they arrive in frames), a flow-control
#: window that keeps a long, fast link full
OPTIONS = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1),
           ("grpc.http2.lookahead_bytes", 64 << 20), ("grpc.http2.bdp_probe", 1)]

#: (module, name) of every class a message may build
ALLOWED = {
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("builtins", "set"), ("builtins", "frozenset"), ("builtins", "complex"), ("builtins", "slice"),
    ("methods.he.transport", "Step"), ("methods.he.blinding", "Stream"),
    ("methods.he.crypto", "HEParams"), ("methods.he.logreg_math", "SigmoidPoly"),
    ("methods.he.rpc", "Ref"),
}


class Ref:
    """A ciphertext a service kept instead of sending (server-internal data, e.g. the partial sums
    one server worker hands another); sent back to that service, it stands for the bytes."""

    __slots__ = ("id",)

    def __init__(self, id: int):
        self.id = int(id)

    def __reduce__(self):
        return (Ref, (self.id,))

    def __repr__(self) -> str:
        return f"Ref({self.id})"


class SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in ALLOWED:
            raise pickle.UnpicklingError(f"a message may not build {module}.{name}")
        return super().find_class(module, name)


def dumps(obj: Any) -> bytes:
    return pickle.dumps(obj, protocol=5)


def loads(data: bytes) -> Any:
    return SafeUnpickler(io.BytesIO(data)).load()


def frames(data: bytes):
    view = memoryview(data)
    if not len(view):
        yield b""
    for i in range(0, len(view), FRAME):
        yield bytes(view[i:i + FRAME])


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_ok(metadata, token: str) -> bool:
    given = dict(metadata or ()).get(TOKEN_KEY, "")
    return isinstance(given, str) and hmac.compare_digest(given.encode(), token.encode())


class RemoteError(RuntimeError):
    """A call failed in a service (the message carries its traceback)."""


def self_signed(directory: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """A fresh key and self-signed certificate for ``host`` (and localhost) in ``directory``
    (key readable by this user only); returns (certificate, key) paths."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "privmark he service")])
    alt: list = [x509.DNSName("localhost")]
    try:
        alt.append(x509.IPAddress(ipaddress.ip_address(host)))
    except ValueError:
        alt.append(x509.DNSName(host))
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.touch(mode=0o600)
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class Client:
    """One party's connection to a service: ``call(request)`` sends one message, returns the reply.

    Counts, per direction, the encoded messages (``sent`` / ``received``) and the calls, and times
    them: ``wall_s`` in calls, ``service_s`` of it spent in the service (each reply carries that
    figure); the difference is the time the messages took to cross (encoding included)."""

    def __init__(self, address: str, token: str, cert: bytes | None = None, server_name: str | None = None):
        import grpc

        options = list(OPTIONS)
        if cert is not None:
            if server_name:
                options.append(("grpc.ssl_target_name_override", server_name))
            self.channel = grpc.secure_channel(address, grpc.ssl_channel_credentials(root_certificates=cert),
                                               options=options)
        else:
            self.channel = grpc.insecure_channel(address, options=options)
        self._stub = self.channel.stream_stream(METHOD)
        self.address, self._token = address, token
        self.sent = self.received = self.calls = 0
        #: seconds in calls, and the part the service spent on them (the rest is on the link)
        self.wall_s = self.service_s = 0.0
        self._lock = threading.Lock()

    def call(self, request: Any, timeout: float | None = None) -> Any:
        t0 = time.perf_counter()
        data = dumps(request)
        reply = b"".join(self._stub(frames(data), metadata=((TOKEN_KEY, self._token),), timeout=timeout))
        stream = io.BytesIO(reply)
        status, value = SafeUnpickler(stream).load()
        service_s = float(SafeUnpickler(stream).load())  # the service's own seconds, appended
        with self._lock:
            self.sent += len(data)
            self.received += len(reply)
            self.calls += 1
            self.wall_s += time.perf_counter() - t0
            self.service_s += service_s
        if status != "ok":
            raise RemoteError(f"{self.address}: {value}")
        return value

    def wait_ready(self, timeout: float = 30.0) -> None:
        import grpc

        grpc.channel_ready_future(self.channel).result(timeout=timeout)

    def close(self) -> None:
        self.channel.close()
