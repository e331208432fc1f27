"""A federated job killed with SIGKILL leaves nothing behind: no Ray or Flower process, no client
rows on disk (one job; Ray's start-up is the expensive part)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from methods.federated.simulation import RUN_DIR_ENV
from methods.lifeline import alive, descendants, tagged_processes

REPO = Path(__file__).resolve().parents[3]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _run_dir_of(pids) -> str | None:
    for pid in pids:
        try:
            env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        for entry in env:
            if entry.startswith(f"{RUN_DIR_ENV}=".encode()):
                return entry.split(b"=", 1)[1].decode()
    return None


def test_killed_job_leaves_no_process_and_no_client_rows(tmp_path):
    out_dir = tmp_path / "run"
    cmd = [sys.executable, "-m", "benchmarks.run", "method=federated", "dataset.subsample=2000",
           "method.num_clients=2", "method.rounds=200", "resume=false",
           f"results_dir={tmp_path / 'results'}", f"hydra.run.dir={out_dir}"]
    job = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seen: set[int] = set()
    run_dir = None
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and job.poll() is None:  # Ray up and its workers started
            seen |= set(descendants(job.pid))
            cmds = [_cmdline(p) for p in seen]
            run_dir = run_dir or _run_dir_of(seen)
            if any("raylet" in c for c in cmds) and any("worker" in c or "ray::" in c for c in cmds):
                break
            time.sleep(0.5)
        assert job.poll() is None, "the job ended before Ray was up"
        assert run_dir is not None and list(Path(run_dir).glob("client-*.npz"))
        time.sleep(2.0)
        seen |= set(descendants(job.pid))
        os.kill(job.pid, signal.SIGKILL)
        job.wait()
        killed = time.monotonic()
        seen |= tagged_processes(RUN_DIR_ENV, run_dir)
        while time.monotonic() < killed + 5.0 and any(alive(p) for p in seen):
            time.sleep(0.1)
        survivors = {p for p in seen if alive(p)} | tagged_processes(RUN_DIR_ENV, run_dir)
        print(f"last process gone {time.monotonic() - killed:.2f} s after SIGKILL")
    finally:
        job.kill()
    report = {p: _cmdline(p)[:100] for p in survivors}
    for p in survivors:  # ours: started by this test's job
        os.kill(p, signal.SIGKILL)
    assert not survivors, f"processes outlived the killed job by 5 s: {report}"
    leftovers = list(out_dir.rglob("*.npz")) + list(Path(run_dir).rglob("*.npz"))
    assert not leftovers, f"client rows left on disk: {leftovers}"
    assert not Path(run_dir).exists()
    assert not Path(run_dir).is_relative_to(out_dir)  # never next to the results


def test_stale_run_dirs_of_dead_runs_are_swept(tmp_path):
    from methods.federated.simulation import KEEP_MARK, RUN_DIR_PREFIX, private_run_dir

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    stale = tmp_path / f"{RUN_DIR_PREFIX}{dead.stdout.strip()}-abc"
    kept = tmp_path / f"{RUN_DIR_PREFIX}{dead.stdout.strip()}-def"
    running = tmp_path / f"{RUN_DIR_PREFIX}{os.getpid()}-ghi"
    for d in (stale, kept, running):
        d.mkdir()
        (d / "client-0.npz").write_bytes(b"rows")
    (kept / KEEP_MARK).touch()
    with private_run_dir(tmp_path) as run_dir:
        assert run_dir.name.startswith(f"{RUN_DIR_PREFIX}{os.getpid()}-")
        assert run_dir.stat().st_mode & 0o777 == 0o700
    assert not stale.exists() and kept.exists() and running.exists() and not run_dir.exists()
