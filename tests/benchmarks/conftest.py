"""Records made by really running the runner: plaintext, small subsamples, a few k and seeds."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def run_env(cache: Path) -> dict:
    """The environment of a runner subprocess: the shipped data (or ``$PRIVMARK_DATA_DIR`` when set),
    its own cache."""
    env = dict(os.environ)
    env.update(PRIVMARK_CACHE_DIR=str(cache), HYDRA_FULL_ERROR="1")
    return env


def runner(*overrides: str, env: dict, check: bool = True, **kw) -> subprocess.CompletedProcess:
    """``python -m benchmarks.run <overrides>`` from the repository root."""
    proc = subprocess.run([sys.executable, "-m", "benchmarks.run", *overrides], cwd=REPO, env=env,
                          capture_output=True, text=True, **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"runner failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="session")
def store(tmp_path_factory) -> Path:
    """A results store holding the smoke experiment for plaintext (k in {2, 4}, seeds 0 and 1) in
    ``store/smoke`` and two runs on a smaller subsample in ``store/small`` (for the scaling figure)."""
    root = tmp_path_factory.mktemp("store")
    env = run_env(root / "cache")
    runner("-m", "+experiment=smoke", "method=plaintext", "seed=0,1", f"hydra.sweep.dir={root / 'smoke'}",
           f"results_dir={root}", env=env)
    runner("-m", "method=plaintext", "k=4", "seed=0,1", "dataset.subsample=1000",
           f"hydra.sweep.dir={root / 'small'}", f"results_dir={root}", env=env)
    return root


@pytest.fixture(scope="session")
def table(store):
    from benchmarks.collect import collect

    return collect([store])


@pytest.fixture(scope="session")
def smoke_table(store):
    from benchmarks.collect import collect

    return collect([store / "smoke"])


@pytest.fixture(scope="session")
def built(table, tmp_path_factory):
    """The report of the whole test store, built once: ``(paths, output dir)``."""
    from benchmarks import report

    out = tmp_path_factory.mktemp("report")
    return report.build(table, out, source="store"), out
