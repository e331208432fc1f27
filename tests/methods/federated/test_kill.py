"""A federated job killed with SIGKILL leaves nothing behind: no Ray or Flower process, no client
rows on disk (one job per engine: Ray's node and workers up, or the SuperLink and SuperNodes
running a round)."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from methods.federated.simulation import RUN_DIR_ENV
from methods.lifeline import alive, descendants, tagged_processes

REPO = Path(__file__).resolve().parents[3]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _run_dir_of(pids) -> str | None:
    for pid in pids:  # a SuperNode names its client's rows file, in the run dir
        found = re.search(r'data-path=\S*?"?(/\S+)/client-\d+\.npz', _cmdline(pid))
        if found:
            return found.group(1)
    for pid in pids:
        try:
            env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        for entry in env:
            if entry.startswith(f"{RUN_DIR_ENV}=".encode()):
                return entry.split(b"=", 1)[1].decode()
    return None


def _private_dir_of(pid: int) -> str | None:
    """The job's private run directory (``$TMPDIR/privmark-federated-<pid>-*``): with a shared Ray
    node no Ray process carries the run's tag."""
    import tempfile

    found = sorted(Path(tempfile.gettempdir()).glob(f"privmark-federated-{pid}-*"))
    return str(found[0]) if found else None


def _simulation_up(cmds: list[str]) -> bool:
    return any("raylet" in c for c in cmds) and any("worker" in c or "ray::" in c for c in cmds)


def _deployment_up(cmds: list[str]) -> bool:
    """Both SuperNodes up and a ClientApp task running: a ``flwr-clientapp`` process (stock
    SuperNodes), or with warm SuperNodes a fifth process of theirs (2 SuperNodes, the 2 launchers
    forked from them, and a task forked by a launcher)."""
    stock = sum("flower-supernode" in c for c in cmds) == 2 and any("flwr-clientapp" in c for c in cmds)
    return stock or sum("methods.federated.supernode" in c for c in cmds) > 4


@pytest.mark.parametrize("engine", ["simulation", "deployment"])
def test_killed_job_leaves_no_process_and_no_client_rows(tmp_path, engine):
    out_dir = tmp_path / "run"
    up = _simulation_up if engine == "simulation" else _deployment_up
    cmd = [sys.executable, "-m", "benchmarks.run", "method=federated", "dataset.subsample=2000",
           "method.num_clients=2", "method.rounds=200", "resume=false", f"method.engine={engine}",
           f"results_dir={tmp_path / 'results'}", f"hydra.run.dir={out_dir}"]
    job = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seen: set[int] = set()
    run_dir = None
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and job.poll() is None:  # the engine up and clients working
            seen |= set(descendants(job.pid))
            run_dir = run_dir or _run_dir_of(seen) or _private_dir_of(job.pid)
            if run_dir:  # Flower's detached processes are no descendants; they carry the run's tag
                seen |= tagged_processes(RUN_DIR_ENV, run_dir)
            if up([_cmdline(p) for p in seen]):
                break
            time.sleep(0.5)
        assert job.poll() is None, f"the job ended before the {engine} engine was up"
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
