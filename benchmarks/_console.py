"""The console of a job, standard library only (it is imported before the slow imports): which log
records the console shows, their format, and a heartbeat when nothing else is said.

- :class:`ConsoleFilter` and :class:`ConsoleFormatter`: the console handler of a job
  (``conf/config.yaml``, ``hydra.job_logging``) shows the ``privmark`` logger from INFO (job and phase
  starts, loop steps) and every other logger from WARNING, as ``12:03:04 message``; a record logged
  with ``extra={"file_only": True}`` stays in the job log (``run.log``).
- :func:`start_heartbeat`: from the first line of a job on, whenever the console has been silent for
  2 s, a status line says for how long and after what (on a terminal one line rewritten in place, or
  the running progress bar refreshed; elsewhere a line at 2, 4, 8, 16.. s of silence).
- :func:`say`: print a line (a job's summary) without a status line in its way.

:class:`methods.progress.Progress` registers its bars in :data:`BARS` and notes its steps in
:data:`LAST`.
"""

from __future__ import annotations

import atexit
import logging
import sys
import threading
import time

#: the last line the console showed: [monotonic time, text]; the heartbeat reads it
LAST: list = [time.monotonic(), "starting"]
#: progress bars on the terminal now (tqdm objects)
BARS: set = set()
_status = threading.Lock()
_status_shown = [False]


def _clear_status() -> None:
    """Make room for a line: erase the status line, and any progress bar (it redraws itself at its
    next update, or at the heartbeat's next refresh)."""
    with _status:
        if _status_shown[0]:
            sys.stdout.write("\r\x1b[K")
            sys.stdout.flush()
            _status_shown[0] = False
    for bar in list(BARS):
        try:
            bar.clear()
        except (AttributeError, OSError, ValueError):
            BARS.discard(bar)


class ConsoleFilter(logging.Filter):
    """The console's share of the job's log: ``privmark`` from INFO, other loggers from WARNING, never a
    record marked ``file_only``. Notes each line it lets through for :func:`heartbeat`."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "file_only", False):
            return False
        if record.levelno < logging.WARNING and not record.name.startswith("privmark"):
            return False
        _clear_status()
        LAST[:] = [time.monotonic(), record.getMessage()]
        return True


class ConsoleFormatter(logging.Formatter):
    """``12:03:04 message``; warnings and errors name their level and logger."""

    def __init__(self, fmt=None, datefmt="%H:%M:%S", *args, **kwargs):
        super().__init__(fmt, datefmt)

    def format(self, record: logging.LogRecord) -> str:
        stamp = self.formatTime(record, self.datefmt)
        level = "" if record.levelno < logging.WARNING else f"{record.levelname} [{record.name}] "
        text = f"{stamp} {level}{record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def say(line: str) -> None:
    """Print ``line`` on stdout (a job's summary), clearing a status line first."""
    _clear_status()
    print(line, flush=True)
    LAST[:] = [time.monotonic(), line]


_beat: list = []


def heartbeat(interval: float = 2.0, stream=None, stop: threading.Event | None = None) -> threading.Thread:
    """A daemon thread that, until ``stop`` is set, writes a status line to ``stream`` (stdout)
    whenever the console has been silent for ``interval`` seconds; started, and returned."""
    stream = stream or sys.stdout
    tty = hasattr(stream, "isatty") and stream.isatty()
    stop = stop or threading.Event()
    LAST[0] = time.monotonic()

    def beat() -> None:
        quiet_since, next_at = None, interval
        while not stop.wait(0.25 if tty else 0.1):
            since, text = LAST
            if quiet_since != since:
                quiet_since, next_at = since, interval
            quiet = time.monotonic() - since
            if quiet < next_at:
                continue
            bars = [b for b in list(BARS) if not b.disable]
            if bars:  # a bar is on the terminal: let it show the time
                for b in bars:
                    b.refresh()
                next_at = quiet + 1.0
                continue
            line = f"{time.strftime('%H:%M:%S')}   … {quiet:.0f} s since: {text[:100]}"
            with _status:
                try:
                    if tty:
                        stream.write("\r\x1b[K" + line)
                        _status_shown[0] = True
                    else:
                        stream.write(line + "\n")
                    stream.flush()
                except (OSError, ValueError):  # the stream was closed
                    return
            next_at = quiet + 1.0 if tty else next_at * 2

    thread = threading.Thread(target=beat, name="privmark-heartbeat", daemon=True)
    thread.start()
    return thread


def start_heartbeat(interval: float = 2.0) -> None:
    """The job's :func:`heartbeat` on stdout, from now until the process ends (once per process;
    later calls do nothing)."""
    if not _beat:
        _beat.append(heartbeat(interval))
        atexit.register(_clear_status)
