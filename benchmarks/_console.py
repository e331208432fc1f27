"""The console of a job, standard library only (it is imported before the slow imports): which log
records the console shows, their format, and a heartbeat when nothing else is said.

- :class:`ConsoleFilter` and :class:`ConsoleFormatter`: the console handler of a job
  (``conf/config.yaml``, ``hydra.job_logging``) shows the ``privmark`` logger from INFO (job and phase
  starts, loop steps) and every other logger from WARNING, as ``12:03:04 message``; a record logged
  with ``extra={"file_only": True}`` stays in the job log (``run.log``).
- :func:`start_heartbeat`: from the first line of a job on, whenever the console has been silent for
  2 s, a status line says for how long and after what (on a terminal one line rewritten in place;
  elsewhere a line at 2, 4, 8, 16.. s of silence). It is a small process of its own, not a thread:
  TenSEAL holds the GIL through long encrypted operations, and a thread would be as silent as the job.
  The job tells it each line it shows (:func:`note`) through a pipe; it exits when the pipe closes,
  that is when the job's process ends, however it ends.
- :func:`say`: print a line (a job's summary) without a status line or progress bar in its way.

:class:`methods.progress.Progress` registers its bars in :data:`BARS` and notes its steps.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys

#: progress bars on the terminal now (tqdm objects)
BARS: set = set()
_pipe: list[int] = []  # the write end of the heartbeat's pipe, once started

#: the heartbeat process: reads "line\n" from fd argv[1]; prints a status line after argv[2] seconds
#: of silence (then every second on a terminal, at doubling silences elsewhere); exits at EOF
WATCHER = r"""
import os, select, sys, time
fd, interval = int(sys.argv[1]), float(sys.argv[2])
tty = sys.stdout.isatty()
last, text, next_at, buf = time.monotonic(), sys.argv[3], interval, b""
while True:
    ready, _, _ = select.select([fd], [], [], 0.2)
    if ready:
        data = os.read(fd, 65536)
        if not data:
            break
        *lines, buf = (buf + data).split(b"\n")
        if lines:
            last, text, next_at = time.monotonic(), lines[-1].decode(errors="replace"), interval
        continue
    quiet = time.monotonic() - last
    if quiet >= next_at:
        line = time.strftime("%H:%M:%S") + "   \u2026 %.0f s since: %s" % (quiet, text[:100])
        try:
            sys.stdout.write("\r\x1b[K" + line if tty else line + "\n")
            sys.stdout.flush()
        except OSError:
            break
        next_at = quiet + 1.0 if tty else next_at * 2
"""


def note(text: str) -> None:
    """Tell the heartbeat the console just showed ``text`` (a no-op before :func:`start_heartbeat`)."""
    if not _pipe:
        return
    try:
        os.write(_pipe[0], (text.replace("\n", " ")[:200] + "\n").encode(errors="replace"))
    except (BlockingIOError, BrokenPipeError, OSError):  # a full pipe or a gone heartbeat: never block
        pass


def _clear_line() -> None:
    """Make room for a line: on a terminal, erase a status line or progress bar left on it (a bar
    redraws itself at its next update)."""
    for bar in list(BARS):
        try:
            bar.clear()
        except (AttributeError, OSError, ValueError):
            BARS.discard(bar)
    if _pipe and sys.stdout.isatty():
        sys.stdout.write("\r\x1b[K")
        sys.stdout.flush()


class ConsoleFilter(logging.Filter):
    """The console's share of the job's log: ``privmark`` from INFO, other loggers from WARNING, never a
    record marked ``file_only``. Tells the heartbeat of each line it lets through."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "file_only", False):
            return False
        if record.levelno < logging.WARNING and not record.name.startswith("privmark"):
            return False
        _clear_line()
        note(record.getMessage())
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
    """Print ``line`` on stdout (a job's summary), with nothing in its way."""
    _clear_line()
    print(line, flush=True)
    note(line)


def _die_with_parent() -> None:  # Linux: the heartbeat gets SIGTERM when the job's process dies
    try:
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def heartbeat(interval: float = 2.0, stdout=None, first: str = "starting") -> tuple[subprocess.Popen, int]:
    """Start the heartbeat process writing to ``stdout`` (default: this process's); returns it and
    the write end of its pipe (closing that ends it)."""
    read, write = os.pipe()
    os.set_blocking(write, False)
    proc = subprocess.Popen([sys.executable, "-I", "-S", "-c", WATCHER, str(read), str(interval), first],
                            stdin=subprocess.DEVNULL, stdout=stdout, pass_fds=(read,), close_fds=True,
                            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
    os.close(read)
    return proc, write


def start_heartbeat(interval: float = 2.0, first: str = "starting") -> None:
    """The job's heartbeat on stdout, from now until the process ends (once per process; later calls
    do nothing). Never fails a job: without it the console is only quieter."""
    if _pipe:
        return
    try:
        sys.stdout.flush()
        _, write = heartbeat(interval, first=first)
    except OSError:
        return
    _pipe.append(write)
