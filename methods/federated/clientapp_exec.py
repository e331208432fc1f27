"""A warm ClientApp launcher for a SuperNode started with ``--isolation process``: the SuperExec's
role (acquire each ClientApp task from the SuperNode's Runtime API and run it in a process of its
own) without paying a Python start and Flower's import per message.

    python -m methods.federated.clientapp_exec --runtime-api-address 127.0.0.1:PORT --insecure \\
        --parent-pid <supernode pid> [--preload methods.federated.client_app] [--max-poll 0.2]

Flower 1.42's own SuperExec (``flower-superexec``) starts a fresh ``flwr-clientapp`` process for
every task token, whose import of Flower alone costs seconds of CPU. This launcher imports Flower,
and the modules named by ``--preload`` (the app's ClientApp module, with NumPy), once, and freezes
what it holds out of the garbage collector's reach; for each token it forks a child (collector off:
it would touch, and so copy, the whole inherited heap) that runs Flower's own ``run_clientapp``
(pull the message, context, run and FAB from the Runtime API, install the FAB, load and call the
ClientApp, push the reply and the task's output) and exits. Each task still runs in a process of
its own, forked from a parent that has read no data: a ClientApp's rows, caches and state die with
the task's process, as with ``flwr-clientapp``. A preloaded module is the one the ClientApp loads
(Flower's ``load_app`` takes a module already imported); the harness preloads the clone's own
``client_app``, the code the run's FAB is built from.

Before forking any task it also applies :mod:`methods.federated.flower_waits`: retries of an
object not yet there after milliseconds, not Flower's 1 s, and a FAB installed once per node.

On its own it polls the Runtime API (local to its SuperNode) with a back-off from ``--min-poll``
to ``--max-poll`` seconds, restarted after every task. Forked by :mod:`.supernode`, it asks when
the SuperNode cues it (and once more after each task, for a message queued behind it), and
otherwise every ``--max-poll`` seconds as a fallback. It stops (SIGTERM to its children, then exit)
when it is sent SIGTERM/SIGINT or when ``--parent-pid`` is gone.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import select
import signal
import sys
import time

CLIENT_APP_TASK = "flwr-clientapp"


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m methods.federated.clientapp_exec",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("--runtime-api-address", required=True, help="the SuperNode's Runtime API, host:port")
    p.add_argument("--insecure", action="store_true", help="plain HTTP to the Runtime API")
    p.add_argument("--root-certificates", default=None, help="CA file of the Runtime API's TLS certificate")
    p.add_argument("--parent-pid", type=int, default=None, help="stop when this process is gone")
    p.add_argument("--preload", action="append", default=[], metavar="MODULE",
                   help="a module to import once, before any task (repeatable)")
    p.add_argument("--min-poll", type=float, default=0.01, help="seconds between polls right after a task")
    p.add_argument("--max-poll", type=float, default=0.2, help="seconds between polls when idle")
    args = p.parse_args(argv)
    if not (0 < args.min_poll <= args.max_poll <= 60):
        p.error(f"--min-poll {args.min_poll} and --max-poll {args.max_poll}: expected 0 < min <= max <= 60")
    if not args.insecure and not args.root_certificates:
        p.error("give --root-certificates (the Runtime API's CA) or --insecure")
    return args


#: modules every task imports on first use (NumPy's generators, the codec of the FAB's zip names):
#: imported here once, not in each forked task
TASK_IMPORTS = ("numpy.random", "encodings.cp437")


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Launcher:
    """``wake_fd``: the read end of a pipe that the SuperNode writes a byte to whenever it has
    pulled a message with its content (:mod:`methods.federated.supernode` ``--warm-clientapp``):
    the launcher then asks at once, and otherwise every ``max_poll`` seconds; the pipe's end (the
    SuperNode gone) stops it. A cue comes after the SuperNode holds the message's objects, so the
    task finds them there."""

    def __init__(self, args: argparse.Namespace, wake_fd: int | None = None):
        from flwr.proto.runtime_pb2 import AcquireTaskRequest  # noqa: F401 (imported before forking)
        from flwr.supercore.interceptors import RuntimeVersionHttpInterceptor
        from flwr.supercore.retry import make_simple_http_retry_invoker
        from flwr.supercore.runtime import RuntimeHttpClient
        from flwr.supercore.tls import validate_and_resolve_root_certificates
        from flwr.supernode.runtime import run_clientapp  # noqa: F401

        from methods.federated.flower_waits import install_fab_once, shorten_object_pulls

        shorten_object_pulls()
        install_fab_once()
        for module in [*args.preload, *TASK_IMPORTS]:
            importlib.import_module(module)
        # A task runs one message and exits: the collector, off in tasks, would otherwise walk (and
        # so copy, page by page) the launcher's whole heap of Flower and NumPy objects in each one.
        gc.collect()
        gc.freeze()
        self.args = args
        self.certificates = validate_and_resolve_root_certificates(args.root_certificates, args.insecure)
        self.client = RuntimeHttpClient.from_server_address(
            server_address=args.runtime_api_address, insecure=args.insecure,
            root_certificates=self.certificates,
            interceptors=[RuntimeVersionHttpInterceptor(component_name="SuperExec")],
            retry_invoker=make_simple_http_retry_invoker())
        self.wake_fd = wake_fd
        self.children: set[int] = set()
        self.stopping = False
        self.tasks = 0

    def _reap(self) -> None:
        for pid in list(self.children):
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = pid
            if done:
                self.children.discard(pid)

    def _run_task(self, token: str) -> None:
        """In the forked child: Flower's own ClientApp process body for this token."""
        from flwr.supernode.runtime.run_clientapp import run_clientapp

        code = 0
        try:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            run_clientapp(runtime_api_address=self.args.runtime_api_address, token=token,
                          insecure=self.args.insecure, certificates=self.certificates,
                          parent_pid=os.getppid(), runtime_dependency_install=False)
        except SystemExit as exc:  # flwr_exit ends every task with sys.exit
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:  # noqa: BLE001 - the child reports and dies, the launcher goes on
            import traceback

            traceback.print_exc()
            code = 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)

    def _launch(self, token: str) -> None:
        pid = os.fork()
        if pid == 0:
            gc.disable()
            self._run_task(token)  # never returns
        self.children.add(pid)
        self.tasks += 1

    def stop(self, *_args) -> None:
        self.stopping = True

    def run(self) -> None:
        from flwr.proto.runtime_pb2 import AcquireTaskRequest

        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        poll = self.args.min_poll
        parent = self.args.parent_pid
        try:
            while not self.stopping:
                self._reap()
                if parent is not None and not _pid_exists(parent):
                    break
                try:
                    res = self.client.AcquireTask(AcquireTaskRequest(supported_task_types=[CLIENT_APP_TASK]))
                except Exception as exc:  # noqa: BLE001 - the SuperNode stopping: end with it
                    if self.stopping or (parent is not None and not _pid_exists(parent)):
                        break
                    print(f"clientapp_exec: AcquireTask failed: {exc!r}", file=sys.stderr, flush=True)
                    res = None
                if res is not None and res.HasField("task") and res.token:
                    self._launch(res.token)
                    poll = self.args.min_poll
                    continue
                if self.wake_fd is None:
                    time.sleep(poll)
                    poll = min(poll * 1.5, self.args.max_poll)
                    continue
                try:  # cued: the SuperNode's byte, or a look every max_poll as the fallback
                    ready, _, _ = select.select([self.wake_fd], [], [], self.args.max_poll)
                except InterruptedError:
                    continue
                if ready and not os.read(self.wake_fd, 4096):
                    break  # the SuperNode is gone
        finally:
            for pid in self.children:
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + 5
            while self.children and time.monotonic() < deadline:
                self._reap()
                time.sleep(0.05)
            for pid in self.children:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.client.close()


def main(argv: list[str] | None = None) -> None:
    Launcher(_parse(argv)).run()


if __name__ == "__main__":
    main()
