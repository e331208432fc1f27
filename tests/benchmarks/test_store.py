"""The results store under faults: concurrent jobs, records never replaced, hostile files, junk records."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from benchmarks import collect as C
from benchmarks._store import find_ok_record
from benchmarks.record import KEY, MAX_RECORD_BYTES, RECORD, RecordExists, RecordTooLarge, write_record
from benchmarks.run import run_job

from .conftest import REPO, run_env
from .test_run import _cfg

FAST = ["method=plaintext", "dataset.subsample=600", "leakage.enabled=false", "k=2"]


def test_a_finished_record_is_never_replaced(tmp_path):
    run_job(_cfg(*FAST[2:]), tmp_path)
    before = (tmp_path / RECORD).read_bytes()
    with pytest.raises(RecordExists, match="already exists"):
        run_job(_cfg(*FAST[2:], "seed=1"), tmp_path)
    assert (tmp_path / RECORD).read_bytes() == before
    # the exclusive write itself refuses too, whoever comes second
    with pytest.raises(RecordExists):
        write_record(tmp_path, json.loads(before))
    assert (tmp_path / RECORD).read_bytes() == before
    assert not list(tmp_path.glob(".*.tmp"))


def test_records_are_readable_by_colleagues_and_have_a_key_file(tmp_path):
    old = os.umask(0o022)
    try:
        run_job(_cfg(*FAST[2:]), tmp_path)
    finally:
        os.umask(old)
    assert (tmp_path / RECORD).stat().st_mode & 0o777 == 0o644
    key = json.loads((tmp_path / KEY).read_text())
    record = json.loads((tmp_path / RECORD).read_text())
    assert key == {"config_hash": record["config_hash"], "status": "ok",
                   "finished_at": record["provenance"]["finished_at"]}


def test_an_oversized_record_is_refused_when_written(tmp_path):
    with pytest.raises(RecordTooLarge, match="limit"):
        write_record(tmp_path, {"config_hash": "x", "status": "ok", "provenance": {},
                                "blob": "x" * (MAX_RECORD_BYTES + 1)})
    assert not (tmp_path / RECORD).exists()


def _launch(cwd: Path, env: dict, *overrides: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "benchmarks.run", *overrides], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_jobs_started_together_keep_every_record(tmp_path):
    """Identical and different jobs started at the same moment into one store, with the default run
    dirs: every job leaves its own intact record and collect counts them all."""
    env = run_env(tmp_path / "cache")
    env["PYTHONPATH"] = str(REPO)  # run from another directory: the store is tmp_path/results
    jobs = [FAST, FAST, [*FAST, "seed=1"], ["method=dp", *FAST[1:]]]
    procs = [_launch(tmp_path, env, *job) for job in jobs]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    records = sorted((tmp_path / "results").rglob(RECORD))
    assert len(records) == len(jobs) and len({r.parent for r in records}) == len(jobs)
    assert all(json.loads(r.read_text())["status"] == "ok" for r in records)
    logs = [r.parent / "run.log" for r in records]
    assert all(log.read_text().count("fitting ") == 1 for log in logs)  # no interleaved logs
    assert len(C.collect([tmp_path / "results"], keep_all=True)) == len(jobs)


def _within(seconds: float, fn, *args):
    """``fn(*args)`` in a thread; fails if it has not returned after ``seconds`` (a hang)."""
    out: list = []
    thread = threading.Thread(target=lambda: out.append(fn(*args)), daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"{fn.__name__} hung"
    return out[0]


def test_resume_scan_survives_hostile_files(tmp_path):
    store = tmp_path / "store"
    run_job(_cfg(*FAST[2:]), store / "good")
    digest = json.loads((store / "good" / RECORD).read_text())["config_hash"]
    (store / "fifo").mkdir()
    os.mkfifo(store / "fifo" / RECORD)
    (store / "huge").mkdir()
    with open(store / "huge" / RECORD, "wb") as f:  # sparse: big on paper, no disk used
        f.truncate(4 << 30)
    (store / "device").mkdir()
    (store / "device" / RECORD).symlink_to("/dev/zero")
    t0 = time.perf_counter()
    assert _within(20, find_ok_record, store, digest) == store / "good" / RECORD
    assert time.perf_counter() - t0 < 5
    table = _within(20, C.collect, [store])
    assert len(table) == 1
    assert {Path(s["record"]).parent.name for s in table.attrs["skipped_records"]} == {"fifo", "huge", "device"}


def test_resume_reads_the_key_file_not_the_record(tmp_path):
    run_job(_cfg(*FAST[2:]), tmp_path / "a")
    digest = json.loads((tmp_path / "a" / RECORD).read_text())["config_hash"]
    (tmp_path / "a" / RECORD).write_text("{" + " " * 1000)  # only the key file can answer
    assert find_ok_record(tmp_path, digest) == tmp_path / "a" / RECORD
    # a record from before key files existed is still found, by reading it
    run_job(_cfg(*FAST[2:], "seed=3"), tmp_path / "b")
    older = json.loads((tmp_path / "b" / RECORD).read_text())
    (tmp_path / "b" / KEY).unlink()
    assert find_ok_record(tmp_path, older["config_hash"]) == tmp_path / "b" / RECORD


JUNK = {
    "metrics_string": lambda r: {**r, "metrics": "oops"},
    "auc_string": lambda r: {**r, "metrics": {**r["metrics"], "auc": "high"}},
    "k_string": lambda r: {**r, "k": "four"},
    "costs_list": lambda r: {**r, "costs": [1, 2]},
    "phases_list": lambda r: {**r, "costs": {**r["costs"], "phases": [1]}},
    "roc_junk": lambda r: {**r, "privacy": {**r["privacy"], "leakage": {"roc": {"mia": "x"}}}},
    "a_list": lambda r: [r],
}


def test_junk_records_are_skipped_named_and_counted(tmp_path, capsys):
    from benchmarks.report import build

    store = tmp_path / "store"
    run_job(_cfg(*FAST[2:]), store / "good")
    good = json.loads((store / "good" / RECORD).read_text())
    for name, spoil in JUNK.items():
        (store / name).mkdir()
        (store / name / RECORD).write_text(json.dumps(spoil(dict(good, config_hash=name))))
    table = C.collect([store])
    err = capsys.readouterr().err
    junk_rows = set(table["config_hash"]) & set(JUNK)
    assert junk_rows <= {"roc_junk"}  # a record with a malformed curve still has its metrics
    skipped = {Path(s["record"]).parent.name for s in table.attrs["skipped_records"]}
    assert skipped == set(JUNK) - {"roc_junk"}
    for name in skipped:
        assert sum(f"{name}{os.sep}{RECORD}" in line for line in err.splitlines()) == 1
    paths = build(table, tmp_path / "report")
    md = paths["md"].read_text()
    assert "## Unreadable records" in md and f"{len(skipped)} file(s)" in md
    # the table keeps the list through parquet, so a report made later counts them too
    parquet, _ = C.write_table(table, tmp_path / "t")
    assert len(C.read_table(parquet).attrs["skipped_records"]) == len(skipped)


def test_collect_cli_counts_unreadable_records(tmp_path, capsys):
    store = tmp_path / "store"
    run_job(_cfg(*FAST[2:]), store / "good")
    shutil.copytree(store / "good", store / "bad")
    (store / "bad" / RECORD).write_text('{"config_hash": "x", "status": "ok", "metrics": "oops"}')
    assert C.main([str(store)]) == 0
    out = capsys.readouterr()
    assert "1 unreadable record(s) skipped" in out.out and "metrics" in out.err
