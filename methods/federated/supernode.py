"""Flower's own SuperNode (``flower-supernode``, same arguments) with short waits instead of fixed ones.

    python -m methods.federated.supernode [--idle-poll 0.2] <flower-supernode arguments>

Flower 1.42's SuperNode main loop (``flwr.supernode.start_client_internal``) sleeps a fixed 3 s
whenever a pull from the SuperLink's Fleet API finds no message, and 0.5 s between looks for the
ClientApp's reply. A SuperNode that has just sent its reply finds nothing (the server waits for the
other clients) and then sleeps 3 s, so every round costs at least 3 s. Here the module's ``time`` is
replaced by :class:`Clock`, which turns the idle wait into a back-off from :data:`MIN_IDLE` to
``--idle-poll`` seconds (restarted whenever a message arrives) and the reply waits into
:data:`BUSY` seconds. Nothing else changes: the same Fleet API, node state, Runtime API, isolation
modes and arguments (``--isolation process`` with :mod:`methods.federated.clientapp_exec` is how the
harness runs it).
"""

from __future__ import annotations

import sys
import time as _time

IDLE_WAIT = 3.0  # the SuperNode's fixed wait after an empty pull (Flower 1.42)
MIN_IDLE = 0.01
BUSY = 0.01


class Clock:
    """Stands in for the ``time`` module inside ``start_client_internal``: ``sleep(3)`` (nothing
    pulled) backs off from ``min_idle`` to ``max_idle``; shorter sleeps (waiting for a reply or its
    content, locally) last ``busy``; everything else is :mod:`time`."""

    def __init__(self, max_idle: float, min_idle: float = MIN_IDLE, busy: float = BUSY):
        if not (0 < min_idle <= max_idle <= IDLE_WAIT):
            raise ValueError(f"idle poll {max_idle!r} s; expected between {min_idle} and {IDLE_WAIT}")
        self.min_idle, self.max_idle, self.busy = min_idle, max_idle, busy
        self.idle = min_idle

    def reset(self) -> None:
        self.idle = self.min_idle

    def sleep(self, seconds: float) -> None:
        if seconds >= IDLE_WAIT:
            _time.sleep(self.idle)
            self.idle = min(self.idle * 1.5, self.max_idle)
        else:
            _time.sleep(min(seconds, self.busy))

    def __getattr__(self, name):
        return getattr(_time, name)


def install(max_idle: float) -> Clock:
    """Patch Flower's SuperNode loop in this process; returns the clock."""
    from flwr.supernode import start_client_internal as loop

    clock = Clock(max_idle)
    pull = loop._pull_and_store_message

    def pull_and_reset(*args, **kwargs):
        run_id = pull(*args, **kwargs)
        if run_id is not None:
            clock.reset()
        return run_id

    loop.time = clock
    loop._pull_and_store_message = pull_and_reset
    return clock


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    max_idle = 0.2
    if "--idle-poll" in argv:
        i = argv.index("--idle-poll")
        try:
            max_idle = float(argv[i + 1])
        except (IndexError, ValueError):
            sys.exit("--idle-poll needs a number of seconds (e.g. 0.2)")
        del argv[i:i + 2]
    try:
        install(max_idle)
    except ValueError as exc:
        sys.exit(f"--idle-poll: {exc}")
    from flwr.supernode.cli import flower_supernode

    sys.argv = ["flower-supernode", *argv]
    flower_supernode()


if __name__ == "__main__":
    main()
