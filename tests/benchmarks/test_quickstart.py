"""The main job (``python -m benchmarks.run`` with no arguments): its exit status says what happened."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from .conftest import REPO


def _env(tmp_path: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PRIVMARK_DATA_DIR"}
    env.update(PRIVMARK_CACHE_DIR=str(tmp_path / "cache"), MPLBACKEND="Agg", **extra)
    return env


def _clone_without_data(tmp_path: Path) -> Path:
    """The project's files, as a fresh clone has them, minus the shipped data."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True, text=True, check=True).stdout.splitlines()
    clone = tmp_path / "clone"
    for name in listed:
        if name.startswith("datasets/data/") or not (REPO / name).is_file():
            continue
        (clone / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, clone / name)
    return clone


def test_no_data_and_no_network_is_one_message_and_a_failure(tmp_path):
    clone = _clone_without_data(tmp_path)
    # no network: every download goes to a proxy on a closed port, refused at once
    dead = "http://127.0.0.1:9"
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "benchmarks.run"], cwd=clone, capture_output=True, text=True,
                         env=_env(tmp_path, http_proxy=dead, https_proxy=dead, HTTP_PROXY=dead,
                                  HTTPS_PROXY=dead), timeout=300)
    assert out.returncode != 0
    problems = [line for line in out.stderr.splitlines() if "cannot start" in line]
    assert len(problems) == 1 and "download" in problems[0] and "PRIVMARK_DATA_DIR" in problems[0], out.stderr
    assert "#0 :" not in out.stdout  # no job was started (Hydra names each job it launches)
    assert not list((clone / "results").rglob("record.json"))
    assert time.perf_counter() - t0 < 120


def test_a_failed_job_makes_the_main_job_fail_and_says_which(tmp_path):
    # kmeans_init_bins=1 passes the config check (DPKMeans refuses it in fit): the dp job fails
    code = ("import sys; from benchmarks._quickstart import quickstart; sys.exit(quickstart("
            "['seed=0', '+per_method.dp.kmeans_init_bins=1', 'leakage.enabled=false'], methods=['plaintext', 'dp']))")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                         env=_env(tmp_path, PYTHONPATH=str(REPO)), timeout=300)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "1 of 2 jobs failed: dp seed 0" in out.stderr
    reports = list((tmp_path / "results" / "quickstart").glob("*/report/report.html"))
    assert len(reports) == 1  # the report of what did run is still written
