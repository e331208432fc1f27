"""The HE server's workers as Ray actors (``backend="ray"``): :class:`RayPool`.

:class:`~methods.he.transport.Pool`'s interface over Ray: worker ``w`` is one actor that holds its
party shards (contexts and chunks) for the whole run and runs the same calls and chains as a pool
worker process (:func:`methods.he.transport._call`), exchanging the same serialized bytes, so a run
gives the labels, centroids and op counts of the local pool. Each actor asks for ``num_cpus`` CPUs
and the actors are spread over the cluster's nodes (``SPREAD``); what they return (the key holder's
decryptions, the partial totals the shards exchange, counts) passes through the driver as in the
local pool.

``address=None`` starts a Ray head node for the run on this machine (``ray start --block`` as a
child, :class:`LocalNode`): its processes carry ``PRIVMARK_HE_RAY_NODE=<tag>`` and a
:class:`~methods.lifeline.Watchdog` kills them if this process dies; closing the pool stops them.
``address="HOST:PORT"`` (or ``"auto"``) joins a running cluster (``ray start --head``): the actors
are this job's and end with it; the cluster stays. The nodes need this project installed in the
same environment (its code is imported by the actors).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from contextlib import suppress
from pathlib import Path
from typing import Any

from methods._util import REPO
from methods.he.transport import Pool, _call

#: tags the processes of a node started for a run
RAY_NODE_ENV = "PRIVMARK_HE_RAY_NODE"
#: seconds to wait for the node to start and for the actors to be placed
START_TIMEOUT_S = 300.0
#: Under `uv run`, Ray would start each worker through `uv run` again: slow, and the wrappers
#: outlive the node. Workers run this interpreter directly instead.
RAY_ENV = {
    "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0",
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO": "0",
}


def check_address(address) -> None:
    """``None`` (a node for the run), ``"auto"`` or ``HOST:PORT`` of a running cluster's head."""
    if address is None or address == "auto":
        return
    host, sep, port = str(address).rpartition(":")
    if not (isinstance(address, str) and sep and host and port.isdigit() and 0 < int(port) < 65536):
        raise ValueError(
            f"ray_address={address!r}; expected HOST:PORT of a running Ray cluster's head "
            "(port 1-65535), 'auto', or None (a Ray node started for the run)"
        )


def _env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != RAY_NODE_ENV}
    env.update(RAY_ENV)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    env.update(extra)
    return env


def _reap(tag: str, grace_s: float = 5.0) -> None:
    """End the processes tagged ``tag`` (Ray's workers can outlive their raylet a while): wait,
    then SIGTERM, then SIGKILL, by PID."""
    from methods.lifeline import end_processes, tagged_processes

    end_processes(tagged_processes(RAY_NODE_ENV, tag), grace_s)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ray_start_args(
    num_cpus: int, head_address: str | None = None, resources: dict | None = None, temp_dir: str | None = None
) -> tuple[list[str], str | None]:
    """``ray start --block`` for a node on this machine: a head (``head_address=None``; returns its
    address too) or a node joining ``head_address``. The ports are chosen here (free ones on
    127.0.0.1), so the head's address is known before it starts."""
    ray = str(Path(sys.executable).parent / "ray")
    args = [
        ray,
        "start",
        "--block",
        "--disable-usage-stats",
        "--node-ip-address",
        "127.0.0.1",
        "--num-cpus",
        str(int(num_cpus)),
        "--dashboard-agent-grpc-port",
        str(_free_port()),
        "--dashboard-agent-listen-port",
        str(_free_port()),
        "--runtime-env-agent-port",
        str(_free_port()),
        "--metrics-export-port",
        str(_free_port()),
    ]
    if resources:
        args += ["--resources", json.dumps(resources)]
    address = None
    if head_address is None:
        address = f"127.0.0.1:{_free_port()}"
        args += ["--head", "--port", address.rpartition(":")[2], "--include-dashboard=false"]
        if temp_dir:
            args += ["--temp-dir", str(temp_dir)]
    else:
        args += ["--address", head_address]
    return args, address


def start_node(make_args, env: dict, attempts: int = 3, timeout: float = START_TIMEOUT_S):
    """Run ``make_args()`` (:func:`ray_start_args`: ``(args, address)``, fresh ports each time) as a
    child; returns ``(process, address)`` once Ray says the node runs. Ray gives a new node 30 s to
    register, which a busy machine can exceed: a failed start is reaped (the processes it started)
    and tried again, ``attempts`` times in all."""
    said: list[str] = []
    for _ in range(attempts):
        args, address = make_args()
        proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            text=True,
            cwd=REPO,
            close_fds=True,
        )
        deadline, said = time.monotonic() + timeout, []
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if "Ray runtime started" in line:
                return proc, address
            if not line and proc.poll() is not None:
                break
            if line.strip():
                said.append(line.strip())
        from methods.lifeline import descendants, same_process

        started = descendants(proc.pid)  # what this attempt started (not another node's processes)
        stop_node(proc)
        for pid, since in started.items():
            if same_process(pid, since):
                with suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
        logging.getLogger("privmark").warning("a Ray node did not start (machine busy?); trying again")
    hint = next((x for x in reversed(said) if "Error" in x or "Failed" in x or "timed out" in x), "")
    raise RuntimeError(f"the Ray node did not start in {attempts} attempt(s) (`ray start` said: {hint!r})")


def stop_node(proc: subprocess.Popen) -> None:
    """SIGTERM to ``ray start --block`` (it stops its node's processes), then SIGKILL if it hangs."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stdout:
        proc.stdout.close()


class LocalNode:
    """A Ray head node on this machine (``ray start --block`` as a child), for one run."""

    def __init__(self, num_cpus: int):
        from methods.lifeline import Watchdog

        self.tag = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self._watchdog = Watchdog(RAY_NODE_ENV, self.tag)
        self._proc = None
        # Ray's socket paths have a length limit: a short, private temp dir
        self._temp = tempfile.mkdtemp(prefix="pmray-", dir="/tmp" if os.path.isdir("/tmp") else None)
        try:
            self._proc, self.address = start_node(
                lambda: ray_start_args(num_cpus, temp_dir=self._temp), _env({RAY_NODE_ENV: self.tag})
            )
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if self._proc is not None:
            stop_node(self._proc)
            self._proc = None
        _reap(self.tag)
        self._watchdog.stop()
        shutil.rmtree(self._temp, ignore_errors=True)


class _ShardActor:
    """One worker: its party shards for the whole run (the body of a pool worker's loop)."""

    def __init__(self):
        self.shards: dict = {}

    def where(self) -> tuple[str, int]:
        import ray

        return ray.get_runtime_context().get_node_id(), os.getpid()

    def call(self, party: str, method: str, args: tuple):
        cpu = time.process_time()
        try:
            return "ok", _call(self.shards, party, method, args), time.process_time() - cpu
        except BaseException:  # report; the driver raises
            return "error", traceback.format_exc(), time.process_time() - cpu


class RayPool(Pool):
    """:class:`~methods.he.transport.Pool` with each worker a Ray actor (see the module doc).

    After ``__enter__``: ``startup_s`` (node start, connection and actor placement, seconds),
    ``placement`` (per worker: Ray node id and process id) and ``address``."""

    def __init__(self, workers: int = 1, address: str | None = None, num_cpus: float = 1.0):
        super().__init__(workers)
        check_address(address)
        if not (isinstance(num_cpus, (int, float)) and num_cpus > 0):
            raise ValueError(f"num_cpus={num_cpus!r}; expected a number > 0 (CPUs per Ray actor)")
        self.address = address
        self.num_cpus = float(num_cpus)
        self.startup_s = 0.0
        self.placement: list[tuple[str, int]] = []
        self._node: LocalNode | None = None
        self._actors: list = []
        self._connected = False

    def __enter__(self) -> RayPool:
        t0 = time.perf_counter()
        try:
            self._open()
        except BaseException:
            self.close()
            raise
        self.startup_s = time.perf_counter() - t0
        return self

    def _open(self) -> None:
        os.environ.update(RAY_ENV)
        import ray
        from ray._private import ray_constants

        ray_constants.RAY_ENABLE_UV_RUN_RUNTIME_ENV = False  # read at init; the variable, at import
        if ray.is_initialized():
            raise RuntimeError(
                "a Ray session is already open in this process; the HE workers connect "
                "to their own (give its head's address as ray_address)"
            )
        address = self.address
        if address is None:
            self._node = LocalNode(max(1, int(round(self.workers * self.num_cpus))))
            address = self._node.address
        ray.init(
            address=address,
            log_to_driver=False,
            logging_level=logging.ERROR,
            runtime_env={"env_vars": {k: v for k, v in _env({}).items() if k in (*RAY_ENV, "PYTHONPATH")}},
        )
        self._connected = True
        self.address = ray.get_runtime_context().gcs_address
        actor = ray.remote(num_cpus=self.num_cpus, max_restarts=0, scheduling_strategy="SPREAD")(_ShardActor)
        self._actors = [actor.remote() for _ in range(self.workers)]
        refs = [a.where.remote() for a in self._actors]
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=START_TIMEOUT_S)
        if len(ready) < len(refs):
            total = ray.cluster_resources().get("CPU", 0)
            raise RuntimeError(
                f"only {len(ready)} of {self.workers} HE worker actors started within "
                f"{START_TIMEOUT_S:.0f} s on the Ray cluster at {self.address} "
                f"({total:g} CPUs in all; each actor needs {self.num_cpus:g})"
            )
        self.placement = [tuple(p) for p in ray.get(refs)]

    def close(self) -> None:
        if self._connected:
            import ray

            for a in self._actors:
                with suppress(Exception):
                    ray.kill(a)
            self._actors = []
            ray.shutdown()
            self._connected = False
        if self._node is not None:
            self._node.stop()
            self._node = None

    def run(self, calls: dict[int, tuple[str, str, tuple]]) -> dict[int, tuple[str, Any, float]]:
        import ray

        for w in calls:
            if not 0 <= w < self.workers:
                raise ValueError(f"worker {w} of a {self.workers}-worker pool")
        refs = {w: self._actors[w].call.remote(*msg) for w, msg in calls.items()}
        done = dict(zip(refs, ray.get(list(refs.values())), strict=True))
        for w, (party, _, _) in calls.items():
            self.cpu[party] = self.cpu.get(party, 0.0) + done[w][2]
        return done
