"""Run the server and client apps on Flower's Deployment Engine, on this machine: one SuperLink and
one SuperNode per client, each a process of its own on 127.0.0.1, the run submitted with
``flwr run`` as a Flower App built from this clone (``[tool.flwr.app]`` in pyproject.toml).

Each SuperNode is started with its own client's rows file in its node config (``data-path``,
``partition-id``, ``num-partitions``) and nothing else: a client process can read only its node's
file. The ServerApp writes ``result.json`` into the run directory (:mod:`.result`). Every process
carries the run's tag (``PRIVMARK_FL_RUN_DIR``) and is stopped, by PID, when the run ends or fails;
if the job itself is killed, the run directory's :class:`~methods.lifeline.Watchdog` kills them.

``runtime="warm"`` (the default) runs each SuperNode as :mod:`methods.federated.supernode`
(Flower's SuperNode with short polls instead of its fixed 3 s waits) with ``--isolation process``
and ``--warm-clientapp``: a :mod:`methods.federated.clientapp_exec` launcher forked from it before
it starts (each ClientApp task in a child forked from a launcher that has imported Flower and the
app once, cued by the SuperNode whenever a message arrives); ``runtime="stock"`` runs
``flower-supernode`` as shipped, whose SuperExec starts a fresh ``flwr-clientapp`` per message.

``network`` (a shaped profile: ``bandwidth_mbit``, ``rtt_ms``) puts a
:class:`~methods.network.LinkShaper` between each SuperNode and the SuperLink's Fleet API (the
client-server link; the ServerApp and the CLI stay on the SuperLink's host): it counts the bytes
that cross each SuperNode's socket and, for a shaped profile, enforces the bandwidth per direction
and half the round-trip time each way, as the HE transport does.

``secure=True`` switches the SuperLink to TLS (a CA and a server certificate for 127.0.0.1 made
for the run) and SuperNode authentication (one key pair per SuperNode, registered with
``flwr supernode register`` before the SuperNodes start), as one would on separate hosts
(docs/federated.md); the tests run insecure.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import suppress
from pathlib import Path

from methods._util import REPO
from methods.federated import result as result_file
from methods.federated.simulation import RUN_DIR_ENV, _reap, child_env
from methods.lifeline import alive, tagged_processes
from methods.network import LinkShaper

CONNECTION = "privmark"  # the SuperLink connection's name in the run's FLWR_HOME/config.toml
MAX_CLIENT_PROCESSES_PER_NODE = 3
RUNTIMES = ("warm", "stock")
IDLE_POLL_S = 0.2  # warm runtime: a SuperNode's longest wait between pulls when no message came
log = logging.getLogger("privmark")


def _free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _toml_str(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid TOML basic string


def make_tls(out: Path) -> dict[str, Path]:
    """A CA and a server certificate for 127.0.0.1/localhost signed by it (PEM files in ``out``)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    start, end = now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=1)
    out.mkdir(parents=True, exist_ok=True)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(name("privmark run CA")).issuer_name(name("privmark run CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(start).not_valid_after(end)
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    import ipaddress

    san = x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                       x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    cert = (x509.CertificateBuilder().subject_name(name("127.0.0.1")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(san, critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256()))
    paths = {"ca": out / "ca.crt", "cert": out / "server.pem", "key": out / "server.key"}
    paths["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths["cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths["key"].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    return paths


def make_node_keys(out: Path, n: int) -> list[tuple[Path, Path]]:
    """One EC key pair per SuperNode (OpenSSH private key, OpenSSH public key), as Flower expects."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    out.mkdir(parents=True, exist_ok=True)
    pairs = []
    for i in range(n):
        key = ec.generate_private_key(ec.SECP384R1())
        priv, pub = out / f"node-{i}", out / f"node-{i}.pub"
        priv.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                           serialization.NoEncryption()))
        pub.write_bytes(key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                                      serialization.PublicFormat.OpenSSH))
        priv.chmod(0o600)
        pairs.append((priv, pub))
    return pairs


class Deployment:
    """The processes of one run: SuperLink, SuperNodes, and the ``flwr`` CLI calls."""

    def __init__(self, run_dir: Path, num_clients: int, secure: bool = False, verbose: bool = False,
                 runtime: str = "warm", network: dict | None = None):
        if runtime not in RUNTIMES:
            raise ValueError(f"runtime={runtime!r}; expected one of {list(RUNTIMES)}")
        self.run_dir, self.num_clients = Path(run_dir), num_clients
        self.secure, self.verbose, self.runtime = secure, verbose, runtime
        net = dict(network or {})
        # a relay only where there is a link to apply (an unshaped profile is Flower's own path)
        self.network = net if (net.get("bandwidth_mbit") or net.get("rtt_ms")) else None
        self.shapers: list[LinkShaper] = []
        self.home = self.run_dir / "flwr-home"
        self.logs = self.run_dir / "logs"
        self.home.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(exist_ok=True)
        # the SuperLink's SuperExec looks for a ServerApp to launch every 1 s by default; it goes on
        # looking during the run, each look an HTTP request to the SuperLink (10 a second at 0.1 s)
        self.env = child_env({RUN_DIR_ENV: str(self.run_dir), "FLWR_HOME": str(self.home),
                              "FLWR_SUPEREXEC_TASK_POLL_INTERVAL": "0.5"})
        self.procs: list[subprocess.Popen] = []
        self.link_port, *self.node_ports = _free_ports(1 + num_clients)
        self.address = f"127.0.0.1:{self.link_port}"
        self.tls = make_tls(self.run_dir / "tls") if secure else None
        conn = [f"[superlink]\ndefault = {_toml_str(CONNECTION)}\n", f"[superlink.{CONNECTION}]",
                f"address = {_toml_str(self.address)}"]
        conn.append(f"root-certificates = {_toml_str(str(self.tls['ca']))}" if secure else "insecure = true")
        (self.home / "config.toml").write_text("\n".join(conn) + "\n")

    def _spawn(self, name: str, cmd: list[str]) -> subprocess.Popen:
        out = None if self.verbose else open(self.logs / f"{name}.log", "wb")  # noqa: SIM115
        try:
            proc = subprocess.Popen(cmd, env=self.env, cwd=self.run_dir, stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=subprocess.STDOUT if out else None)
        finally:
            if out is not None:
                out.close()
        self.procs.append(proc)
        return proc

    def _flwr(self, *args: str, timeout: float = 300.0) -> dict:
        done = subprocess.run(["flwr", *args, "--format", "json"], env=self.env, cwd=REPO,
                              capture_output=True, text=True, timeout=timeout)
        try:
            return json.loads(done.stdout[done.stdout.index("{"):])
        except ValueError as exc:
            raise RuntimeError(f"`flwr {' '.join(args)}` failed ({done.returncode}): "
                               f"{(done.stderr or done.stdout).strip()[-2000:]}") from exc

    def _tls_args(self, server: bool) -> list[str]:
        if not self.secure:
            return ["--insecure"]
        if server:
            return ["--ssl-ca-certfile", str(self.tls["ca"]), "--ssl-certfile", str(self.tls["cert"]),
                    "--ssl-keyfile", str(self.tls["key"])]
        return ["--root-certificates", str(self.tls["ca"])]

    def _wait_healthy(self, timeout: float = 120.0) -> None:
        scheme = "https" if self.secure else "http"
        ctx = None
        if self.secure:
            import ssl

            ctx = ssl.create_default_context(cafile=str(self.tls["ca"]))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.procs[0].poll() is not None:
                raise RuntimeError(f"the SuperLink exited ({self.procs[0].returncode}); see "
                                   f"{self.logs / 'superlink.log'}")
            with suppress(OSError):
                with urllib.request.urlopen(f"{scheme}://{self.address}/health", timeout=1, context=ctx):
                    return
            time.sleep(0.1)
        raise RuntimeError(f"the SuperLink did not answer on {self.address} within {timeout:.0f} s")

    def start(self) -> None:
        args = [*self._tls_args(server=True), "--host", "127.0.0.1", "--port", str(self.link_port),
                "--disable-runtime-dependency-installation"]
        if self.secure:
            args.append("--enable-supernode-auth")
        self._spawn("superlink", ["flower-superlink", *args] if self.runtime == "stock"
                    else [sys.executable, "-m", "methods.federated.superlink", *args])
        self._wait_healthy()
        keys = make_node_keys(self.run_dir / "node-keys", self.num_clients) if self.secure else []
        for _, pub in keys:
            self._flwr("supernode", "register", str(pub), CONNECTION)
        for i, port in enumerate(self.node_ports):
            data = self.run_dir / f"client-{i}.npz"
            node_config = (f"data-path={_toml_str(str(data))} partition-id={i} "
                           f"num-partitions={self.num_clients}")
            fleet = self.address
            if self.network is not None:  # this SuperNode's own link to the SuperLink
                shaper = LinkShaper(self.address, self.network.get("bandwidth_mbit"),
                                    self.network.get("rtt_ms") or 0.0)
                self.shapers.append(shaper)
                fleet = shaper.address
            args = [*self._tls_args(server=False), "--superlink", fleet,
                    "--host", "127.0.0.1", "--port", str(port), "--node-config", node_config]
            if self.secure:
                args += ["--auth-supernode-private-key", str(keys[i][0])]
            if self.runtime == "stock":
                self._spawn(f"supernode-{i}", ["flower-supernode", *args])
                continue
            self._spawn(f"supernode-{i}", [sys.executable, "-m", "methods.federated.supernode",
                                           "--idle-poll", str(IDLE_POLL_S),
                                           "--warm-clientapp", "methods.federated.client_app", *args,
                                           "--isolation", "process"])

    def submit(self) -> str:
        # building and submitting the FAB: one more Python process importing Flower, which on a
        # loaded machine may wait long for a core while the SuperNodes start
        out = self._flwr("run", str(REPO), CONNECTION, "--run-config",
                         f"run-dir={_toml_str(str(self.run_dir))}", timeout=1800.0)
        if not out.get("success") or not out.get("run-id"):
            raise RuntimeError(f"`flwr run` did not start the run: {out}")
        return str(out["run-id"])

    def wait(self, run_id: str, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        next_check = time.monotonic()
        while time.monotonic() < deadline:
            result = result_file.read(self.run_dir)
            if result is not None:
                return result
            error = result_file.read(self.run_dir, result_file.ERROR)
            if error is not None:
                raise RuntimeError(f"the ServerApp failed: {error['error']}")
            dead = [p for p in self.procs if p.poll() is not None]
            if dead:
                raise RuntimeError(f"{len(dead)} Flower process(es) exited during run {run_id}; see the logs "
                                   f"with method.verbose=true")
            if time.monotonic() >= next_check:
                self._check_client_processes(run_id)
                next_check = time.monotonic() + 2.0
            time.sleep(0.1)
        raise RuntimeError(f"run {run_id} gave no result within {timeout:.0f} s")

    def _check_client_processes(self, run_id: str) -> None:
        """Refuse to go on when client processes pile up. A ``flwr-clientapp`` process that takes
        longer to start than its task token lives (30 s) is not stopped: Flower launches the task
        again beside it. On an overloaded machine that feeds itself (more processes, slower starts);
        one process per client, plus those finishing, is the normal count."""
        n = sum(1 for pid in tagged_processes(RUN_DIR_ENV, str(self.run_dir))
                if "flwr-clientapp" in _cmdline(pid))
        if n > MAX_CLIENT_PROCESSES_PER_NODE * self.num_clients:
            raise RuntimeError(
                f"run {run_id}: {n} flwr-clientapp processes for {self.num_clients} SuperNodes; client "
                f"processes take longer to start than Flower's 30 s task token on this machine (load "
                f"average {os.getloadavg()[0]:.0f}), so Flower relaunches them without stopping the old "
                f"ones. Stopped; run on a less loaded machine or with engine=simulation")

    def traffic(self, run_id: str) -> dict | None:
        """The SuperLink's own count of the run's bytes (``flwr ls --run-id``)."""
        try:
            runs = self._flwr("ls", CONNECTION, "--run-id", run_id, timeout=120).get("runs") or [{}]
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            log.warning("could not read the SuperLink's traffic count: %s", exc)
            return None
        return runs[0].get("network-traffic")

    def wire(self) -> dict | None:
        """The bytes that crossed each SuperNode's link (``up``: towards the SuperLink), or None
        without a shaped network profile."""
        if self.network is None:
            return None
        links = {f"supernode-{i}": s.counts() for i, s in enumerate(self.shapers)}
        return {"transport": "flower-fleet", "network": self.network, "measured": True,
                "links": links, "bytes_up": sum(c["up"] for c in links.values()),
                "bytes_down": sum(c["down"] for c in links.values())}

    def stop(self) -> None:
        for proc in reversed(self.procs):  # SuperNodes first, then the SuperLink
            if proc.poll() is None:
                with suppress(OSError):
                    proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        for proc in self.procs:
            with suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        _reap(self.run_dir, grace_s=2.0)  # SuperExecs, flwr-serverapp, flwr-clientapp
        for shaper in self.shapers:
            shaper.close()


def run_deployment(run_dir: Path, num_clients: int, secure: bool = False, verbose: bool = False,
                   timeout_s: float = 3600.0, runtime: str = "warm", network: dict | None = None) -> dict:
    """Run one federation over the prepared ``run_dir`` on the Deployment Engine; returns the
    server's result plus ``launched_at`` (epoch seconds when the first process started), ``launch_s``
    (starting the processes and submitting the run), ``shutdown_s`` and the SuperLink's traffic
    count (``superlink_traffic``) and, with a ``network`` profile, the bytes that crossed each
    SuperNode's link (``wire``)."""
    launched_at = time.time()
    t0 = time.perf_counter()
    dep = Deployment(run_dir, num_clients, secure=secure, verbose=verbose, runtime=runtime, network=network)
    try:
        dep.start()
        run_id = dep.submit()
        launch_s = time.perf_counter() - t0
        result = dep.wait(run_id, timeout_s)
        traffic = dep.traffic(run_id)
        wire = dep.wire()
    finally:
        t1 = time.perf_counter()
        dep.stop()
        shutdown_s = time.perf_counter() - t1
    left = [p.pid for p in dep.procs if alive(p.pid)]
    if left:
        raise RuntimeError(f"Flower processes {left} did not stop")
    result.update(launched_at=launched_at, launch_s=launch_s, shutdown_s=shutdown_s,
                  superlink_traffic=traffic, run_id=run_id, engine="deployment", runtime=runtime,
                  wire=wire)
    return result


