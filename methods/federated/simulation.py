"""Run the server and client apps in Flower's simulation engine, from inside a Python process.

Ray runs in a node of this process's own (:class:`RayNode`, started in a child process so that its
start-up is timed apart from training and so that it outlives Flower's ``ray.shutdown()``): with
``reuse`` (the default) one node serves every federated job of the process (a sweep pays Ray's
start-up once) and is stopped when the process exits; without, each run starts and stops its own.
Each run connects to the node as a Ray job whose workers carry the run's tag; the test suite checks
that no Ray or Flower process outlives a run (or, with reuse, the process), even when the process
is killed (:func:`private_run_dir`, the node's :class:`~methods.lifeline.Watchdog`). ``FLWR_HOME``
and every file of the run live in the run directory, a private temporary one; telemetry and update
checks are off.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import warnings
from contextlib import contextmanager, suppress
from pathlib import Path

from methods._util import REPO
from methods.federated import result as result_file
from methods.lifeline import Watchdog, alive, end_processes, tagged_processes

FLOWER_ENV = {"FLWR_TELEMETRY_ENABLED": "0", "FLWR_DISABLE_UPDATE_CHECK": "1",
              # Under `uv run`, Ray would start each worker through `uv run` again: slow, and the uv
              # wrappers outlive ray.shutdown(). Workers run this interpreter directly instead.
              "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0", "RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO": "0"}
RUN_DIR_ENV = "PRIVMARK_FL_RUN_DIR"
RAY_NODE_ENV = "PRIVMARK_RAY_NODE"  # tags the processes of a RayNode
RUN_DIR_PREFIX = "privmark-federated-"
KEEP_MARK = ".keep"


class _DropDeprecation(logging.Filter):
    """``run_simulation`` announces its own deprecation on every call; the harness knows."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "run_simulation` function is deprecated" not in record.getMessage()


@contextmanager
def _environment(run_dir: Path):
    env = {**FLOWER_ENV, "FLWR_HOME": str(run_dir / "flwr-home"), RUN_DIR_ENV: str(run_dir)}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield env
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextmanager
def _quiet_flower(verbose: bool):
    from flwr.supercore.logger import FLOWER_LOGGER as logger  # importing flwr sets its level
    level, flt = logger.level, _DropDeprecation()
    alembic = logging.getLogger("alembic")  # Flower's in-memory state announces its migrations
    alembic_level = alembic.level
    logger.addFilter(flt)
    if not verbose:
        logger.setLevel(logging.ERROR)
        alembic.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            yield
    finally:
        logger.setLevel(level)
        alembic.setLevel(alembic_level)
        logger.removeFilter(flt)


def run_processes(run_dir: Path) -> set[int]:
    """PIDs of live processes started for the run in ``run_dir``: Ray's daemons and workers inherit
    the run's environment (``PRIVMARK_FL_RUN_DIR``), and Ray detaches them from this process."""
    return tagged_processes(RUN_DIR_ENV, str(run_dir))


def _owner_pid(path: Path) -> int | None:
    rest = path.name[len(RUN_DIR_PREFIX):]
    pid = rest.split("-", 1)[0]
    return int(pid) if pid.isdigit() else None


def sweep_stale_run_dirs(base: Path) -> list[Path]:
    """Remove the run directories under ``base`` left by runs whose process is gone (a run killed
    before its watchdog could clean up); directories kept on purpose (``keep_run_dir``) stay."""
    removed = []
    for path in base.glob(f"{RUN_DIR_PREFIX}*"):
        pid = _owner_pid(path)
        try:
            mine = path.is_dir() and not path.is_symlink() and path.stat().st_uid == os.getuid()
        except OSError:
            continue
        if mine and pid is not None and not alive(pid) and not (path / KEEP_MARK).exists():
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


@contextmanager
def private_run_dir(work_dir: str | Path | None = None, keep: bool = False):
    """A fresh run directory, readable by this user only (mode 0700), under ``work_dir`` or the
    system temp dir, named after this process (``privmark-federated-<pid>-...``). It holds the
    clients' rows and ``FLWR_HOME``; it is removed when the block ends (unless ``keep``), and, by a
    :class:`~methods.lifeline.Watchdog`, together with every process of the run when this process
    dies, whatever kills it. Leftovers of runs killed harder still are swept at the next start."""
    base = Path(work_dir) if work_dir else Path(tempfile.gettempdir())
    base.mkdir(parents=True, exist_ok=True)
    sweep_stale_run_dirs(base)
    run_dir = Path(tempfile.mkdtemp(prefix=f"{RUN_DIR_PREFIX}{os.getpid()}-", dir=base))
    if keep:
        (run_dir / KEEP_MARK).touch()
    watchdog = Watchdog(RUN_DIR_ENV, str(run_dir), remove=None if keep else run_dir)
    try:
        yield run_dir
    finally:
        watchdog.stop()
        if not keep:
            shutil.rmtree(run_dir, ignore_errors=True)


def _reap(run_dir: Path, grace_s: float = 5.0, env_name: str = RUN_DIR_ENV) -> None:
    """Wait for the run's processes to exit after ``ray.shutdown()``: Ray's actor workers can outlive
    their raylet for a minute on a busy machine. Stragglers get SIGTERM, then SIGKILL, by PID."""
    end_processes(tagged_processes(env_name, str(run_dir)), grace_s, signal_wait_s=5.0)


def child_env(extra: dict[str, str]) -> dict[str, str]:
    """This process's environment for a Flower or Ray child: Flower's switches, this interpreter's
    scripts first on PATH, the clone on PYTHONPATH, and ``extra``; no other run's tag."""
    env = {k: v for k, v in os.environ.items() if k not in (RUN_DIR_ENV, RAY_NODE_ENV)}
    pythonpath = os.pathsep.join(p for p in [str(REPO), *sys.path, env.get("PYTHONPATH", "")] if p)
    bindir = str(Path(sys.executable).parent)
    env.update(FLOWER_ENV, PYTHONPATH=pythonpath, PATH=os.pathsep.join([bindir, env.get("PATH", "")]))
    env.update(extra)
    return env


class RayNode:
    """A Ray node in a child process (:mod:`methods.federated.ray_node`) that jobs connect to.

    Its processes carry ``PRIVMARK_RAY_NODE=<tag>``; a :class:`~methods.lifeline.Watchdog` kills
    them if this process dies, :meth:`stop` ends them otherwise."""

    def __init__(self, num_cpus: int, verbose: bool = False, attempts: int = 3):
        self.num_cpus = num_cpus
        self.tag = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        t0 = time.perf_counter()
        # The node outlives the run that starts it: neither its watchdog nor its processes may carry
        # that run's tag, or the run's reaping would stop them.
        run_tag = os.environ.pop(RUN_DIR_ENV, None)
        try:
            self._watchdog = Watchdog(RAY_NODE_ENV, self.tag)
        finally:
            if run_tag is not None:
                os.environ[RUN_DIR_ENV] = run_tag
        self._proc = None
        for attempt in range(1, attempts + 1):
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "methods.federated.ray_node", "--parent", str(os.getpid()),
                 "--num-cpus", str(num_cpus), *(["--verbose"] if verbose else [])],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None if verbose else subprocess.DEVNULL,
                env=child_env({RAY_NODE_ENV: self.tag}), cwd=REPO, close_fds=True)
            line = self._proc.stdout.readline().decode().strip()
            if line:
                self.address = line
                break
            self._proc.wait()
            _reap(Path(self.tag), env_name=RAY_NODE_ENV)
            if attempt == attempts:
                self._watchdog.stop()
                raise RuntimeError(f"Ray did not start ({attempt} attempt(s)); see its log with "
                                   f"method.verbose=true")
            logging.getLogger("privmark").warning("Ray did not start (machine busy?); retrying")
        self.start_s = time.perf_counter() - t0

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self) -> None:
        if self._proc is None:
            return
        with suppress(OSError):
            self._proc.stdin.close()
        try:
            self._proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._proc = None
        _reap(Path(self.tag), env_name=RAY_NODE_ENV)
        self._watchdog.stop()


_NODE: RayNode | None = None
_NODE_LOCK = threading.Lock()


def shared_ray_node(num_cpus: int, verbose: bool = False) -> tuple[RayNode, bool]:
    """This process's Ray node (started on first use, or again if the core count changed or it
    died); and whether this call started it."""
    global _NODE
    with _NODE_LOCK:
        if _NODE is not None and (_NODE.num_cpus != num_cpus or not _NODE.alive()):
            _NODE.stop()
            _NODE = None
        if _NODE is None:
            _NODE = RayNode(num_cpus, verbose)
            return _NODE, True
        return _NODE, False


def stop_shared_ray_node() -> None:
    """Stop this process's shared Ray node, if any (also run at exit)."""
    global _NODE
    with _NODE_LOCK:
        if _NODE is not None:
            _NODE.stop()
            _NODE = None


atexit.register(stop_shared_ray_node)


def _connect(ray, address: str, verbose: bool, env_vars: dict) -> None:
    ray.init(address=address, log_to_driver=verbose,
             logging_level=logging.INFO if verbose else logging.ERROR, runtime_env={"env_vars": env_vars})


def run_federation(run_dir: Path, num_clients: int, num_cpus: int = 2, verbose: bool = False,
                   reuse: bool = True) -> dict:
    """Run one federation over the prepared ``run_dir``; returns the server's ``result.json`` plus wall
    seconds of importing Ray and Flower (``import_s``), starting Ray's node when this run started it
    (``ray_start_s``, 0 when it reused this process's node), connecting to it (``ray_connect_s``),
    the simulation (``simulation_s``) and of ending the run's Ray job (``shutdown_s``)."""
    run_dir = Path(run_dir)
    (run_dir / "flwr-home").mkdir(parents=True, exist_ok=True)
    launched_at = time.time()
    t_import = time.perf_counter()
    with _environment(run_dir) as env, _quiet_flower(verbose):
        import ray
        from flwr.simulation import run_simulation
        from ray._private import ray_constants

        ray_constants.RAY_ENABLE_UV_RUN_RUNTIME_ENV = False  # read at init; the variable, at import

        from methods.federated.client_app import app as client_app
        from methods.federated.server_app import app as server_app

        if ray.is_initialized():
            raise RuntimeError("a Ray session is already running in this process; the federated method "
                               "connects to its own node")
        import_s = time.perf_counter() - t_import  # importing Ray and Flower's simulation engine
        t0 = time.perf_counter()
        if reuse:
            node, started = shared_ray_node(num_cpus, verbose)
        else:
            node, started = RayNode(num_cpus, verbose), True
        ray_start_s = time.perf_counter() - t0 if started else 0.0
        try:
            t1 = time.perf_counter()
            _connect(ray, node.address, verbose, child_env(env))
            ray_connect_s = time.perf_counter() - t1
            t2 = time.perf_counter()
            run_simulation(server_app=server_app, client_app=client_app, num_supernodes=num_clients,
                           backend_config={"client_resources": {"num_cpus": 1, "num_gpus": 0.0}},
                           verbose_logging=verbose)
            simulation_s = time.perf_counter() - t2
        finally:
            t3 = time.perf_counter()
            if ray.is_initialized():
                ray.shutdown()  # a driver connected to a node only disconnects
            if not reuse:
                node.stop()
            _reap(run_dir)
            shutdown_s = time.perf_counter() - t3
    error = result_file.read(run_dir, result_file.ERROR)
    result = result_file.read(run_dir)
    if result is None:
        why = error["error"] if error else "see Flower's log with method.verbose=true"
        raise RuntimeError(f"the federated run in {run_dir} ended without a result ({why})")
    result.update(import_s=import_s, ray_start_s=ray_start_s, ray_connect_s=ray_connect_s,
                  simulation_s=simulation_s, shutdown_s=shutdown_s, launched_at=launched_at,
                  engine="simulation")
    return result
