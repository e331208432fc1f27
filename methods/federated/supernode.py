"""Flower's own SuperNode (``flower-supernode``, same arguments) with short waits instead of fixed ones.

    python -m methods.federated.supernode [--idle-poll 0.2] [--warm-clientapp MODULE] \
        <flower-supernode arguments> --isolation process

Flower 1.42's SuperNode main loop (``flwr.supernode.start_client_internal``) sleeps a fixed 3 s
whenever a pull from the SuperLink's Fleet API finds no message, and 0.5 s between looks for the
ClientApp's reply. A SuperNode that has just sent its reply finds nothing (the server waits for the
other clients) and then sleeps 3 s, so every round costs at least 3 s. Here the module's ``time``
is replaced by :class:`Clock`, which turns the idle wait into a pause paced by the last rounds and
a back-off from :data:`MIN_IDLE` to ``--idle-poll`` seconds (restarted whenever a message arrives)
and the reply waits into :data:`BUSY` seconds. Its Runtime API (the ClientApp tasks' pulls and
pushes) calls Flower's handlers on its event loop instead of a worker thread
(:mod:`methods.federated.handlers`). Nothing else changes: the same Fleet API, node state, Runtime
API answers, isolation modes and arguments.

``--warm-clientapp MODULE`` (with ``--isolation process``) also runs the SuperNode's ClientApp
launcher (:mod:`methods.federated.clientapp_exec`): before the SuperNode starts any thread, this
process imports Flower and ``MODULE`` and forks the launcher, which then runs each ClientApp task
in a child of its own. The SuperNode writes a byte to a pipe whenever it has pulled a message, so
the launcher asks the Runtime API for the task at once instead of polling it (a look every 5 s
is the fallback); the pipe's end tells it the SuperNode is gone. One Python start and one import
of Flower per client, instead of two. The SuperNode's own object pulls retry after milliseconds
(:mod:`methods.federated.flower_waits`).
"""

from __future__ import annotations

import os
import sys
import time as _time

IDLE_WAIT = 3.0  # the SuperNode's fixed wait after an empty pull (Flower 1.42)
MIN_IDLE = 0.05
BUSY = 0.01
PACE = 0.6  # no pull before this fraction of the shorter of the last two intervals between messages


class Clock:
    """Stands in for the ``time`` module inside ``start_client_internal``: ``sleep(3)`` (nothing
    pulled) backs off from ``min_idle`` to ``max_idle``; shorter sleeps (waiting for a reply or its
    content, locally) last ``busy``; everything else is :mod:`time`.

    Paced: a federation's messages come in rounds, the next one only after the server has every
    client's reply. Once three messages have come, the first idle wait after a message lasts until
    ``pace`` × the shorter of the last two intervals between messages has passed since the last one
    came (at most Flower's own 3 s); the back-off then starts from ``min_idle``. A round that takes
    as long as one of the two before is picked up as fast as without the pause, with about a third
    fewer empty pulls (117 to 75 an exchange for ten SuperNodes); one longer interval (the server
    between two phases) paces nothing; a round shorter than ``pace`` × both before is picked up
    late by at most the difference."""

    def __init__(self, max_idle: float, min_idle: float = MIN_IDLE, busy: float = BUSY, pace: float = PACE):
        if not (0 < min_idle <= max_idle <= IDLE_WAIT):
            raise ValueError(f"idle poll {max_idle!r} s; expected between {min_idle} and {IDLE_WAIT}")
        if not 0 <= pace < 1:
            raise ValueError(f"pace {pace!r}; expected at least 0 and below 1")
        self.min_idle, self.max_idle, self.busy, self.pace = min_idle, max_idle, busy, pace
        self.idle = min_idle
        self.last: float | None = None  # when the last message came (monotonic seconds)
        self.intervals: list[float] = []  # the last two between messages
        self.paused = True  # the pause since the last message is taken (none before three messages)

    def reset(self) -> None:
        """A message came."""
        now = _time.monotonic()
        if self.last is not None:
            self.intervals = [*self.intervals[-1:], now - self.last]
        self.last, self.idle, self.paused = now, self.min_idle, len(self.intervals) < 2

    def sleep(self, seconds: float) -> None:
        if seconds < IDLE_WAIT:
            _time.sleep(min(seconds, self.busy))
            return
        if not self.paused:
            self.paused = True
            pause = min(self.last + self.pace * min(self.intervals) - _time.monotonic(), IDLE_WAIT)
            if pause > self.idle:
                _time.sleep(pause)
                return
        _time.sleep(self.idle)
        self.idle = min(self.idle * 1.5, self.max_idle)

    def __getattr__(self, name):
        return getattr(_time, name)


def install(max_idle: float, wake_fd: int | None = None) -> Clock:
    """Patch Flower's SuperNode loop and Runtime API app in this process; returns the clock. With
    ``wake_fd``, a byte is written to it after every message pulled (the ClientApp launcher's cue)."""
    from flwr.supernode import start_client_internal as loop

    clock = Clock(max_idle)
    pull = loop._pull_and_store_message

    def pull_and_reset(*args, **kwargs):
        run_id = pull(*args, **kwargs)
        if run_id is not None:
            clock.reset()
            if wake_fd is not None:
                try:
                    os.write(wake_fd, b"!")
                except (BlockingIOError, BrokenPipeError):
                    pass  # cue already pending, or the launcher gone (its task waits for the next one)
        return run_id

    from methods.federated.flower_waits import shorten_object_pulls
    from methods.federated.handlers import install_supernode

    shorten_object_pulls(loop)
    install_supernode()
    loop.time = clock
    loop._pull_and_store_message = pull_and_reset
    return clock


def _option(argv: list[str], name: str) -> str | None:
    if name not in argv:
        return None
    i = argv.index(name)
    if i + 1 >= len(argv):
        sys.exit(f"{name} needs a value")
    value = argv[i + 1]
    del argv[i:i + 2]
    return value


def _value(argv: list[str], name: str, default: str) -> str:
    i = argv.index(name) if name in argv else -1
    return argv[i + 1] if 0 <= i < len(argv) - 1 else default


def _fork_launcher(module: str, argv: list[str]) -> int:
    """Import Flower and ``module``, fork the ClientApp launcher (it never returns to the caller)
    and return the write end of its cue pipe."""
    if _value(argv, "--isolation", "subprocess") != "process":
        sys.exit("--warm-clientapp needs --isolation process (the launcher plays Flower's SuperExec)")
    runtime = f"{_value(argv, '--host', '127.0.0.1')}:{_value(argv, '--port', '9094')}"
    from methods.federated.clientapp_exec import Launcher, _parse

    args = _parse(["--runtime-api-address", runtime, "--insecure",
                   "--parent-pid", str(os.getpid()), "--preload", module, "--max-poll", "5.0"])
    launcher = Launcher(args)  # imports Flower's task runner and the app before the fork
    read_fd, write_fd = os.pipe()
    if os.fork() == 0:
        os.close(write_fd)
        code = 0
        try:
            launcher.wake_fd = read_fd
            launcher.run()
        except BaseException:  # noqa: BLE001
            import traceback

            traceback.print_exc()
            code = 1
        finally:
            os._exit(code)
    os.close(read_fd)
    os.set_blocking(write_fd, False)
    return write_fd


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    idle = _option(argv, "--idle-poll")
    try:
        max_idle = 0.2 if idle is None else float(idle)
    except ValueError:
        sys.exit("--idle-poll needs a number of seconds (e.g. 0.2)")
    module = _option(argv, "--warm-clientapp")
    try:
        Clock(max_idle)
    except ValueError as exc:
        sys.exit(f"--idle-poll: {exc}")
    wake_fd = _fork_launcher(module, argv) if module else None
    install(max_idle, wake_fd)
    from flwr.supernode.cli import flower_supernode

    sys.argv = ["flower-supernode", *argv]
    flower_supernode()


if __name__ == "__main__":
    main()
