"""Child processes that die with the process that started them, whatever kills it.

Two tools, both keyed on the parent's PID (a parent's death reparents its children, so their
``getppid()`` changes):

- :func:`die_with_parent`, called first thing in a forked worker: on Linux the kernel sends the
  worker SIGKILL when its parent dies (``prctl(PR_SET_PDEATHSIG)``); everywhere, a daemon thread
  polls ``getppid()`` as a fallback.
- :class:`Watchdog`, a small process (``python -m methods.lifeline``) for children that are not
  ours to instrument, such as Ray's daemons and workers: while its parent lives it keeps a list of
  the parent's descendants; when the parent dies it kills, by PID, every one of them still running
  (the same process: PID and start time) and every live process whose environment carries the
  run's tag, then removes the run's directory.

Process tables (descendants, environments, start times, states) are read through psutil.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

from methods._util import REPO

PR_SET_PDEATHSIG = 1
POLL_S = 0.2


def _prctl():
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    prctl.restype = ctypes.c_int
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    return prctl


def set_parent_death_signal(sig: int) -> bool:
    """Ask the kernel to send ``sig`` to this process when its parent *thread* exits (Linux);
    False where that is not available."""
    prctl = _prctl()
    return prctl is not None and prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0


def watch_parent(parent_pid: int, on_death, poll_s: float = POLL_S) -> threading.Thread:
    """A daemon thread that calls ``on_death()`` once ``getppid()`` is no longer ``parent_pid``."""

    def loop():
        while os.getppid() == parent_pid:
            time.sleep(poll_s)
        on_death()

    thread = threading.Thread(target=loop, name="parent-watch", daemon=True)
    thread.start()
    return thread


def die_with_parent(parent_pid: int) -> None:
    """Make this (freshly forked) process exit as soon as ``parent_pid``, its parent, dies.

    The parent may already have died between the fork and this call (then the death signal would
    never come): ``getppid()`` is checked after setting it."""
    set_parent_death_signal(signal.SIGKILL)
    if os.getppid() != parent_pid:
        os._exit(1)
    watch_parent(parent_pid, lambda: os._exit(1))


def close_fds(fds) -> None:
    """Close inherited descriptors (another child's pipe ends: holding them open would hide the
    parent's death from that child)."""
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


# -- processes tagged by an environment variable (psutil) ---------------------------------------
def tagged_processes(name: str, value: str, among=None) -> set[int]:
    """PIDs of live processes (other than this one; of ``among`` only, if given, without a scan of
    the whole process table) whose environment holds ``name=value``. Not complete on its own: a
    process that retitles itself (setproctitle, as Ray's agents do) may overwrite the environment
    the system shows, hence the watchdog's list of descendants."""
    out = set()
    me = os.getpid()
    for proc in psutil.process_iter() if among is None else _processes(among):
        if proc.pid == me:
            continue
        try:
            if proc.environ().get(name) == value and alive(proc.pid):
                out.add(proc.pid)
        except psutil.Error:  # gone, a zombie, or not ours to read
            continue
    return out


def _processes(pids):
    for pid in pids:
        try:
            yield psutil.Process(pid)
        except psutil.Error:
            continue


def descendants(root: int) -> dict[int, float]:
    """Every live descendant of ``root`` (children, their children, ...), with its start time."""
    try:
        children = psutil.Process(root).children(recursive=True)
    except psutil.Error:
        return {}
    out = {}
    for child in children:
        try:
            out[child.pid] = child.create_time()
        except psutil.Error:
            continue
    return out


def same_process(pid: int, start: float) -> bool:
    """Whether ``pid`` is still the process that started at ``start`` (a PID can be reused)."""
    try:
        return psutil.Process(pid).create_time() == start and alive(pid)
    except psutil.Error:
        return False


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True


def kill_all(pids, sig: int = signal.SIGKILL) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except OSError:
            pass


def end_processes(pids, grace_s: float = 5.0, signal_wait_s: float | None = None) -> None:
    """Give ``pids`` ``grace_s`` seconds to exit, then SIGTERM them and wait ``signal_wait_s``
    (default: ``grace_s``), then SIGKILL them and wait as long (by PID; exited ones are skipped)."""
    pids = set(pids)
    for sig in (None, signal.SIGTERM, signal.SIGKILL):
        if sig is not None:
            kill_all([p for p in pids if alive(p)], sig)
        wait = grace_s if sig is None or signal_wait_s is None else signal_wait_s
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and any(alive(p) for p in pids):
            time.sleep(0.1)
        if not any(alive(p) for p in pids):
            return


#: set in every watchdog's environment, so that no watchdog kills another before it has cleaned up
WATCHDOG_ENV = "PRIVMARK_WATCHDOG"


class Watchdog:
    """Start ``python -m methods.lifeline`` for this process. It kills the processes tagged
    ``env_name=env_value`` and removes ``remove`` (if given) when this process dies; :meth:`stop`
    ends it without removing anything (the run cleans up after itself)."""

    def __init__(self, env_name: str, env_value: str, remove: Path | None = None):
        cmd = [sys.executable, "-m", "methods.lifeline", "--parent", str(os.getpid()),
               "--tag", f"{env_name}={env_value}"]
        if remove is not None:
            cmd += ["--remove", str(remove)]
        env = {k: v for k, v in os.environ.items() if k != env_name}
        env[WATCHDOG_ENV] = "1"  # another job's or run's watchdog never kills this one
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, env=env, close_fds=True,
                                      cwd=REPO)

    @property
    def pid(self) -> int:
        return self._proc.pid

    def stop(self) -> None:
        try:
            self._proc.stdin.write(b"done\n")
            self._proc.stdin.close()
        except OSError:
            pass
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()

    def __enter__(self) -> Watchdog:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _watch(parent: int, tag: str, remove: str | None) -> int:
    died = threading.Event()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: died.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the job; it cleans up itself
    set_parent_death_signal(signal.SIGTERM)
    if os.getppid() != parent:
        died.set()

    def read_stdin():
        if sys.stdin.buffer.readline().strip() == b"done":
            done.set()
        else:  # end of file without "done": the parent is gone
            died.set()

    threading.Thread(target=read_stdin, daemon=True).start()
    me = os.getpid()
    known: dict[int, float] = {}  # the parent's descendants seen so far: PID -> start time
    while not (died.is_set() or done.is_set()):
        known.update(descendants(parent))
        died.wait(POLL_S)
        if os.getppid() != parent:
            died.set()
    if done.is_set() and not died.is_set():
        return 0
    known.pop(me, None)
    name, _, value = tag.partition("=")
    # the parent's known descendants at once (no scan of the whole process table first, which a
    # busy machine can make take seconds), then everything tagged
    known_alive = {p for p, start in known.items() if same_process(p, start)}
    kill_all(known_alive - tagged_processes(WATCHDOG_ENV, "1", among=known_alive))
    for _ in range(3):  # a dying Ray worker may still start one
        pids = {p for p, start in known.items() if same_process(p, start)} | tagged_processes(name, value)
        # the parent's other watchdogs (a shared Ray node's, a run's) finish their own cleanup
        pids -= tagged_processes(WATCHDOG_ENV, "1")
        if not pids:
            break
        kill_all(pids)
        time.sleep(POLL_S)
    if remove:
        shutil.rmtree(remove, ignore_errors=True)
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m methods.lifeline", description=__doc__.splitlines()[0])
    ap.add_argument("--parent", type=int, required=True)
    ap.add_argument("--tag", required=True, help="NAME=VALUE in the environment of the processes to kill")
    ap.add_argument("--remove", help="a directory to remove when the parent dies")
    args = ap.parse_args(argv)
    return _watch(args.parent, args.tag, args.remove)


if __name__ == "__main__":
    sys.exit(main())
