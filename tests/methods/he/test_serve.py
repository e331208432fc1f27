"""The HE parties as network services: start and stop with nothing left, refuse a call without the
run's token, serve TLS, count the bytes that cross the socket, shape a link, and give the results
of the in-process pool."""

import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import grpc
import numpy as np
import pytest

from methods.he import remote, rpc, serve
from methods.he.kmeans import HEKMeans
from methods.lifeline import alive, descendants
from methods.plaintext import reference_init

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def service():
    """A compute-server service in this process (one worker, in-process shards), token ``tok``."""
    server, svc, address = serve.start("server", "127.0.0.1:0", 1, "tok")
    yield address
    server.stop(0).wait()
    svc.close()


def _gone(pids, timeout=10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(alive(p) for p in pids):
            return True
        time.sleep(0.1)
    return False


def test_services_start_and_stop_with_no_process_left():
    with remote.Session("grpc", workers=2) as session:
        procs = [svc.proc for svc in session._services]
        pids = {p.pid for p in procs} | {d for p in procs for d in descendants(p.pid)}
        assert len(pids) >= 4  # two services, each with its two workers
        infos = [link.call(("hello", 2)) for link in session.links.values()]
        assert {i["role"] for i in infos} == {"server", "keyholder"}
    assert [p.returncode for p in procs] == [0, 0]  # SIGTERM: a clean exit
    assert _gone(pids)


def test_services_die_with_a_killed_owner():
    script = textwrap.dedent("""
        import time
        from methods.he import remote
        from methods.lifeline import descendants
        with remote.Session("grpc", workers=2) as s:
            pids = [svc.proc.pid for svc in s._services]
            print(*pids, *[d for p in pids for d in descendants(p)], flush=True)
            time.sleep(60)
    """)
    owner = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=REPO,
                             env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        pids = [int(p) for p in owner.stdout.readline().split()]
        assert len(pids) >= 4
        owner.send_signal(signal.SIGKILL)
        owner.wait(10)
        assert _gone(pids)
    finally:
        owner.kill()
        owner.wait()


def test_a_call_without_the_token_is_refused(service):
    for token in ("", "wrong"):
        client = rpc.Client(service, token)
        with pytest.raises(grpc.RpcError) as err:
            client.call(("hello", 1))
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        client.close()
    channel = grpc.insecure_channel(service)  # no metadata at all
    with pytest.raises(grpc.RpcError) as err:
        b"".join(channel.stream_stream(rpc.METHOD)(iter([rpc.dumps(("hello", 1))])))
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    channel.close()
    good = rpc.Client(service, "tok")
    assert good.call(("hello", 1))["role"] == "server"
    good.close()


def test_a_message_cannot_build_other_objects(service):
    class Evil:
        def __reduce__(self):
            return (os.system, ("true",))

    with pytest.raises(Exception, match="may not build"):
        rpc.loads(rpc.dumps(Evil()))
    client = rpc.Client(service, "tok")
    with pytest.raises(rpc.RemoteError, match="may not build posix.system"):
        client.call(Evil())
    client.close()


def test_a_server_service_hosts_no_key_holder_shards(service):
    client = rpc.Client(service, "tok")
    with pytest.raises(rpc.RemoteError, match="hosts no 'keyholder' shards"):
        client.call(("run", "keyholder", {0: ("__init__", ())}, False))
    client.close()


def test_tls(tmp_path):
    cert, key = rpc.self_signed(tmp_path)
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    server, svc, address = serve.start("server", "127.0.0.1:0", 1, "tok", cert, key)
    try:
        client = rpc.Client(address, "tok", cert.read_bytes(), server_name="localhost")
        assert client.call(("hello", 1))["role"] == "server"
        client.close()
        plain = rpc.Client(address, "tok")  # no TLS: the handshake fails, nothing is answered
        with pytest.raises(grpc.RpcError):
            plain.call(("hello", 1), timeout=5)
        plain.close()
    finally:
        server.stop(0).wait()
        svc.close()


def _echo_server():
    lst = socket.create_server(("127.0.0.1", 0))

    def serve_one():
        conn, _ = lst.accept()
        while data := conn.recv(1 << 16):
            conn.sendall(data)
        conn.close()

    threading.Thread(target=serve_one, daemon=True).start()
    return lst, f"127.0.0.1:{lst.getsockname()[1]}"


def _echo(shaper, n):
    sock = socket.create_connection(shaper.address.split(":"))
    payload = os.urandom(n)
    t = time.perf_counter()
    reader = threading.Thread(target=lambda: sock.sendall(payload))
    reader.start()
    got = bytearray()
    while len(got) < n:
        got += sock.recv(1 << 16)
    elapsed = time.perf_counter() - t
    reader.join()
    sock.close()
    assert bytes(got) == payload
    return elapsed


def test_a_shaped_transfer_takes_at_least_bytes_over_bandwidth():
    lst, target = _echo_server()
    n, mbit = 1 << 20, 40.0
    shaper = rpc.LinkShaper(target, bandwidth_mbit=mbit, rtt_ms=0.0)
    elapsed = _echo(shaper, n)
    assert elapsed >= n * 8 / (mbit * 1e6)  # each direction is shaped, the two overlap
    assert elapsed < 4 * n * 8 / (mbit * 1e6) + 0.5
    assert shaper.counts() == {"up": n, "down": n}
    shaper.close()
    lst.close()


def test_a_link_adds_its_round_trip_time():
    lst, target = _echo_server()
    shaper = rpc.LinkShaper(target, rtt_ms=200.0)
    assert _echo(shaper, 10) >= 0.2
    shaper.close()
    lst.close()


#: BFV (exact: results must be equal, not close) at a small 128-bit parameter set
BFV = dict(scheme="bfv", poly_modulus_degree=8192, coeff_mod_bit_sizes=[60, 50, 50, 58])


def _fit(X, init, **kw):
    return HEKMeans(n_clusters=3, init=init, max_iter=2, tol=0.0, random_state=0, **BFV, **kw).fit(X)


@pytest.fixture(scope="module")
def X_small(small_split):
    return small_split.train.X_segment[:400]


def test_grpc_gives_the_local_results_and_counts_the_socket_bytes(X_small, service, monkeypatch):
    monkeypatch.setenv(rpc.TOKEN_ENV, "tok")
    init = reference_init(X_small, 3, 0)
    local = _fit(X_small, init)
    apart = _fit(X_small, init, transport="grpc", server=service)  # the owner holds the key
    assert np.array_equal(local.labels_, apart.labels_)
    assert np.array_equal(local.cluster_centers_, apart.cluster_centers_)  # BFV: exact
    assert local.costs_.rounds == apart.costs_.rounds
    link = apart.costs_.extra["wire"]["links"]["server"]
    wire = link["wire_up"] + link["wire_down"]
    # the protocol's messages that cross the link: everything to or from the server, except the
    # final one-hots (the owner keeps them to hand them over with the next stage)
    ch = apart.channel_
    crossing = sum(n for (s, r), n in ch.bytes.items() if "server" in (s, r))
    kept = sum(len(b) for chunk in apart.encrypted_assignments_ for b in chunk)
    payload = crossing - kept
    framing = wire - payload
    assert 0 < framing < 0.01 * wire + 100_000  # pickle, gRPC and TCP framing, the calls' small values
    # per direction and per round trip: each call's bytes, adding up to the socket's
    assert len(link["rounds"]) == link["calls"]
    assert sum(r[1] for r in link["rounds"]) <= link["wire_up"] <= sum(r[1] for r in link["rounds"]) + 4096
    assert sum(r[2] for r in link["rounds"]) <= link["wire_down"] <= sum(r[2] for r in link["rounds"]) + 4096


def test_grpc_pipeline_gives_the_local_results(small_split):
    from methods.he import HEMethod

    tr, te = small_split.train, small_split.test
    kw = dict(n_clusters=3, init="k-means++", max_iter=1, tol=0.0, lr_n_iter=1, random_state=0, **BFV)
    local = HEMethod(**kw).fit(tr.X[:300], tr.y[:300], tr.X_segment[:300])
    apart = HEMethod(**kw, transport="grpc", tls=True,
                     network={"name": "x", "bandwidth_mbit": 2000.0, "rtt_ms": 1.0}).fit(
                         tr.X[:300], tr.y[:300], tr.X_segment[:300])
    assert np.array_equal(local.labels_, apart.labels_)
    assert np.array_equal(local.cluster_centers_, apart.cluster_centers_)
    from sklearn.metrics import roc_auc_score

    auc = [roc_auc_score(te.y, m.predict_proba(te.X, te.X_segment)[:, 1]) for m in (local, apart)]
    # CKKS encryptions are randomised: the logistic regression's weights agree to its noise
    assert abs(auc[0] - auc[1]) < 1e-3
    assert np.abs(local.model_.w_ - apart.model_.w_).max() < 1e-3
    wire = apart.costs_.extra["wire"]
    assert wire["measured"] and wire["tls"] and apart.costs_.extra["startup_s"] > 0
    assert {"server", "keyholder"} == set(wire["links"])


@pytest.mark.parametrize("kw, match", [
    (dict(transport="udp"), "transport='udp'"),
    (dict(transport="grpc", server="nohost"), "server='nohost'; expected HOST:PORT"),
    (dict(transport="local", server="h:1"), "need transport='grpc'"),
    (dict(transport="grpc", keyholder="h:1"), "without server"),
    (dict(transport="grpc", server="h:1", tls=True, token_file="t"), "tls_cert"),
    (dict(transport="grpc", network={"bandwidth_mbit": 0}), "bandwidth_mbit=0"),
])
def test_bad_transport_settings_are_refused_before_any_work(kw, match, monkeypatch):
    monkeypatch.delenv(rpc.TOKEN_ENV, raising=False)
    with pytest.raises(ValueError, match=match):
        HEKMeans(**kw)._check_params()


def test_a_server_address_needs_the_token(monkeypatch):
    monkeypatch.delenv(rpc.TOKEN_ENV, raising=False)
    with pytest.raises(ValueError, match="token_file"):
        HEKMeans(transport="grpc", server="h:1")._check_params()
