"""What a job shows on the console: privmark's INFO lines, others' warnings, a heartbeat in silences,
and a summary line of at most 160 characters in human units."""

from __future__ import annotations

import logging
import os
import subprocess
import time
from pathlib import Path

from benchmarks import _console as C
from benchmarks.run import human_bytes, summary


def _record(name: str, level: int, msg: str = "m", **extra) -> logging.LogRecord:
    rec = logging.LogRecord(name, level, __file__, 1, msg, None, None)
    rec.__dict__.update(extra)
    return rec


def test_console_shows_privmark_info_and_other_loggers_warnings_only():
    f = C.ConsoleFilter()
    assert f.filter(_record("privmark", logging.INFO, "phase keys"))
    assert not f.filter(_record("flwr", logging.INFO))
    assert f.filter(_record("flwr", logging.WARNING))
    assert not f.filter(_record("privmark", logging.INFO, file_only=True))  # the summary: printed itself
    fmt = C.ConsoleFormatter()
    assert fmt.format(_record("privmark", logging.INFO, "loading")).split(" ", 1)[1] == "loading"
    assert "WARNING [flwr] careful" in fmt.format(_record("flwr", logging.WARNING, "careful"))


def test_heartbeat_speaks_in_a_silence_backs_off_and_ends_with_its_pipe():
    proc, pipe = C.heartbeat(interval=0.3, stdout=subprocess.PIPE, first="phase keys")
    time.sleep(1.6)  # silent: lines at 0.3, 0.6, 1.2 s
    os.write(pipe, b"HE K-means: Lloyd iteration 1\n")
    time.sleep(0.6)  # a new line resets the silence: one more status line after 0.3 s
    os.close(pipe)  # the job's process ended
    out, _ = proc.communicate(timeout=10)
    lines = out.decode().splitlines()
    assert proc.returncode == 0
    before = [line for line in lines if "since: phase keys" in line]
    after = [line for line in lines if "since: HE K-means: Lloyd iteration 1" in line]
    assert 2 <= len(before) <= 4 and len(after) == 1, lines  # not one line per tick


def _ok_record(**costs) -> dict:
    return {"method": "federated", "dataset": "bank_full", "k": 4, "seed": 0, "status": "ok",
            "metrics": {"auc": 0.6871, "precision": 0.185, "recall": 0.617, "f1": 0.284,
                        "weighted_precision": 0.839, "weighted_recall": 0.635},
            "segmentation": {"ari_vs_plaintext": 0.892},
            "costs": {"wall_s": 48.46, "bytes_total": 522_700_984, **costs}}


def test_summary_line_is_short_in_human_units_with_start_up_apart():
    deep = Path("results/multirun/2026-12-02/01-34-28-abc123/" + "x" * 80 + "/0_federated_bank_full_k4_s0")
    line = summary(_ok_record(startup_s=15.2, train_s=33.26), deep / "record.json")
    assert len(line) <= 160, (len(line), line)
    assert "498 MiB" in line and "train 33.3 s +15.2 s start-up" in line and "522700984" not in line
    assert line.endswith("0_federated_bank_full_k4_s0")  # the job's own directory survives
    old = summary(_ok_record(), Path("results/runs/x/record.json"))
    assert "fit 48.5 s" in old and old.endswith("results/runs/x")
    failed = summary({**_ok_record(), "status": "failed", "error": "RuntimeError: " + "boom " * 300},
                     deep / "record.json")
    assert len(failed) <= 160 and "FAILED (RuntimeError: boom" in failed


def test_human_bytes():
    assert [human_bytes(n) for n in (0, 512, 3 * 1024 + 300, 522_700_984, 5 * 2**30)] == \
        ["0 B", "512 B", "3.29 KiB", "498 MiB", "5 GiB"]
