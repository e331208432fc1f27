"""Run the server and client apps in Flower's simulation engine, from inside a Python process.

One call = one Ray session: Ray is started here (so that its start-up is timed apart from training),
sized for this machine, handed to Flower, and shut down when the run ends or fails; the test suite
checks that no Ray or Flower process outlives it, even when the process running it is killed
(:func:`private_run_dir`). ``FLWR_HOME`` and every file of the run live in the run directory, a
private temporary one; telemetry and update checks are off.
"""

from __future__ import annotations

import logging
import os
import pickle
import shutil
import sys
import tempfile
import time
import warnings
from contextlib import contextmanager, suppress
from pathlib import Path

import psutil

from methods.lifeline import Watchdog, alive, tagged_processes

FLOWER_ENV = {"FLWR_TELEMETRY_ENABLED": "0", "FLWR_DISABLE_UPDATE_CHECK": "1",
              # Under `uv run`, Ray would start each worker through `uv run` again: slow, and the uv
              # wrappers outlive ray.shutdown(). Workers run this interpreter directly instead.
              "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0", "RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO": "0"}
RUN_DIR_ENV = "PRIVMARK_FL_RUN_DIR"
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


def _running(procs: list[psutil.Process]) -> list[psutil.Process]:
    """Those still running: the same process (PID and start time, so a reused PID never counts)
    and not a zombie."""
    out = []
    for proc in procs:
        with suppress(psutil.Error):
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                out.append(proc)
    return out


def _reap(run_dir: Path, grace_s: float = 5.0) -> None:
    """Wait for the run's processes to exit after ``ray.shutdown()``: Ray's actor workers can outlive
    their raylet for a minute on a busy machine. Stragglers get SIGTERM, then SIGKILL (through psutil,
    which signals only the very process it listed)."""
    procs = []
    for pid in run_processes(run_dir):
        with suppress(psutil.Error):
            procs.append(psutil.Process(pid))
    for step in (None, "terminate", "kill"):
        if step is not None:
            for proc in _running(procs):
                with suppress(psutil.Error):
                    getattr(proc, step)()
        deadline = time.monotonic() + (grace_s if step is None else 5.0)
        while time.monotonic() < deadline and _running(procs):
            time.sleep(0.1)
        if not _running(procs):
            return


def _start_ray(ray, num_cpus: int, verbose: bool, env_vars: dict, attempts: int = 3) -> None:
    """``ray.init`` sized for this machine. On a loaded machine Ray's raylet can give up waiting for
    its dashboard agent (a fixed time-out inside Ray) and the node start fails; that is retried."""
    for attempt in range(1, attempts + 1):
        try:
            ray.init(num_cpus=num_cpus, num_gpus=0, include_dashboard=False,
                     object_store_memory=256 * 1024**2, log_to_driver=verbose,
                     logging_level=logging.INFO if verbose else logging.ERROR,
                     runtime_env={"env_vars": env_vars})
            return
        except Exception as exc:  # Ray raises a bare Exception for this
            ray.shutdown()
            if "timed out during startup" not in str(exc) or attempt == attempts:
                raise RuntimeError(f"Ray did not start ({attempt} attempt(s)): {exc}") from exc
            logging.getLogger("privmark").warning("Ray start-up timed out (machine busy?); retrying")


def run_federation(run_dir: Path, num_clients: int, num_cpus: int = 2, verbose: bool = False) -> dict:
    """Run one federation over the prepared ``run_dir``; returns the server's ``result.pkl`` plus wall
    seconds of importing Ray and Flower (``import_s``), ``ray.init`` (``ray_start_s``), the simulation
    (``simulation_s``) and of shutting Ray down (``shutdown_s``)."""
    run_dir = Path(run_dir)
    (run_dir / "flwr-home").mkdir(parents=True, exist_ok=True)
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
                               "starts and stops its own")
        pythonpath = os.pathsep.join(p for p in [*sys.path, os.environ.get("PYTHONPATH", "")] if p)
        t0 = time.perf_counter()
        import_s = t0 - t_import  # importing Ray and Flower's simulation engine
        try:
            _start_ray(ray, num_cpus, verbose, {**env, "PYTHONPATH": pythonpath})
            ray_start_s = time.perf_counter() - t0
            t1 = time.perf_counter()
            run_simulation(server_app=server_app, client_app=client_app, num_supernodes=num_clients,
                           backend_config={"client_resources": {"num_cpus": 1, "num_gpus": 0.0}},
                           verbose_logging=verbose)
            simulation_s = time.perf_counter() - t1
        finally:
            t2 = time.perf_counter()
            if ray.is_initialized():
                ray.shutdown()
            _reap(run_dir)
            shutdown_s = time.perf_counter() - t2
    result_path = run_dir / "result.pkl"
    if not result_path.exists():
        raise RuntimeError(f"the federated run in {run_dir} ended without a result (see Flower's log "
                           f"with method.verbose=true)")
    with open(result_path, "rb") as f:
        result = pickle.load(f)
    result.update(import_s=import_s, ray_start_s=ray_start_s, simulation_s=simulation_s,
                  shutdown_s=shutdown_s)
    return result
