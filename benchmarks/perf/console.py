"""Silence on the console of one job: how long until it first says something, and the longest gap
between two things it says, seen from a terminal (a pseudo-terminal, as a user's) or a pipe.

    python -m benchmarks.perf console [--pipe] [--runs 3] [-- <runner overrides>]

Runs ``python -m benchmarks.run <overrides>`` (default: ``method=plaintext dataset.subsample=2000``)
``--runs`` times with ``hydra.run.dir`` and ``results_dir`` under a temporary directory and
``resume=false``. Anything written (a line, a progress-bar refresh, a status line rewritten in place)
ends a silence. Prints per run the seconds to the first output, the longest silence and what came
after it, the summary line's length; then the medians.
"""

from __future__ import annotations

import argparse
import os
import pty
import select
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from methods._util import REPO


def _watch(cmd: list[str], use_pty: bool) -> dict:
    t0 = time.perf_counter()
    if use_pty:
        master, slave = pty.openpty()
        proc = subprocess.Popen(cmd, cwd=REPO, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave)
        os.close(slave)
        fd = master
    else:
        proc = subprocess.Popen(cmd, cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
        fd = proc.stdout.fileno()
    stamps, chunks = [], []
    while True:
        ready, _, _ = select.select([fd], [], [], 0.05)
        if ready:
            try:
                data = os.read(fd, 65536)
            except OSError:  # the pty closes when the child exits
                data = b""
            if not data:
                break
            stamps.append(time.perf_counter() - t0)
            chunks.append(data.decode(errors="replace"))
        elif proc.poll() is not None and not use_pty:
            break
    proc.wait()
    end = time.perf_counter() - t0
    if use_pty:
        os.close(master)
    gaps = [(b - a, chunks[i + 1].strip()[:80])
            for i, (a, b) in enumerate(zip(stamps, stamps[1:], strict=False))]
    longest = max(gaps, default=(0.0, ""))
    text = "".join(chunks).replace("\r", "\n")
    summary = [line for line in text.splitlines() if " -> " in line and ("AUC" in line or "FAILED" in line)]
    return {"exit": proc.returncode, "total_s": round(end, 2),
            "first_output_s": round(stamps[0] if stamps else end, 2),
            "longest_silence_s": round(longest[0], 2), "after_longest": longest[1],
            "summary_chars": len(summary[-1]) if summary else None}


def main(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.perf console",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--pipe", action="store_true", help="watch through a pipe instead of a terminal")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("overrides", nargs="*", default=["method=plaintext", "dataset.subsample=2000"])
    args = parser.parse_args(argv)
    out = []
    with tempfile.TemporaryDirectory(prefix="privmark-console-") as tmp:
        for i in range(args.runs):
            cmd = [sys.executable, "-m", "benchmarks.run", *args.overrides, "resume=false",
                   f"hydra.run.dir={Path(tmp) / str(i)}", f"results_dir={tmp}"]
            run = _watch(cmd, use_pty=not args.pipe)
            print(run, flush=True)
            out.append(run)
    def med(key: str) -> float:
        return statistics.median(r[key] for r in out)

    return {"overrides": args.overrides, "terminal": not args.pipe, "runs": out,
            "median_first_output_s": med("first_output_s"),
            "median_longest_silence_s": med("longest_silence_s"), "median_total_s": med("total_s")}
