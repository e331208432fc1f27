"""The main job, ``uv run python -m benchmarks.run`` with no arguments.

Runs ``+experiment=quickstart`` (every available method at k = 4, seeds 0-2, a 5,000-row subsample of
bank_full) as one Hydra multirun in a child process that shows each job's progress on this terminal
as it runs, then collects its records, draws the figures,
writes the report and prints the comparison table with the report's path. A method whose config
is not in ``conf/method/`` is named and left out; a method that fails leaves a ``failed`` record and
the others go on. Resume applies: rerunning reuses finished runs from ``results/``.
"""

from __future__ import annotations

import secrets
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from methods._util import CONF

BUDGET_S = 300  # the stated budget on a 2-core laptop


def available_methods() -> tuple[list[str], list[str]]:
    from methods import METHODS

    have = [m for m in METHODS if (CONF / "method" / f"{m}.yaml").is_file()]
    return have, [m for m in METHODS if m not in have]


def quickstart(extra: list[str] | None = None, methods: list[str] | None = None) -> int:
    """Run the comparison (``methods``: a subset of the available ones); 0 when every job is ok."""
    from benchmarks import _analysis as A
    from benchmarks.collect import collect, write_table
    from benchmarks.report import build
    from methods.lifeline import set_parent_death_signal

    start = time.perf_counter()
    have, missing = available_methods()
    if methods:
        have = [m for m in have if m in methods]
    out = Path("results") / "quickstart" / f"{datetime.now():%Y-%m-%d_%H-%M-%S}-{secrets.token_hex(3)}"
    print(f"privmark quickstart: {', '.join(have)} at k = 4 on a 5,000-row subsample of bank_full, "
          f"seeds 0-2 (budget {BUDGET_S // 60} min on a 2-core laptop)", flush=True)
    if missing:
        print(f"  not available here (no conf/method/<name>.yaml): {', '.join(missing)}", flush=True)
    problem = prepare_data(extra or [])
    if problem:
        print(f"privmark quickstart: cannot start: {problem}", file=sys.stderr, flush=True)
        return 2
    cmd = [sys.executable, "-m", "benchmarks.run", "--multirun", "+experiment=quickstart",
           f"method={','.join(have)}", f"hydra.sweep.dir={out / 'runs'}", *(extra or [])]
    print("  $ " + " ".join(cmd[1:]), flush=True)
    # the sweep writes to this terminal itself: each job's phases, progress bars and summary line as
    # they happen (full logs stay in each job's run.log); it dies with the main job, whatever kills it
    # (and its own children die with it)
    child = subprocess.Popen(cmd, cwd=Path.cwd(), preexec_fn=lambda: set_parent_death_signal(signal.SIGKILL))
    if child.wait() != 0:
        print(f"the sweep failed (exit {child.returncode}); records so far are under {out / 'runs'}")
        return child.returncode
    table = collect([out / "runs"])
    if table.empty:
        print(f"no records under {out / 'runs'}")
        return 1
    parquet, _ = write_table(table, out / "results")
    paths = build(table, out / "report", source=str(parquet))
    print()
    print(summary_table(A, table))
    print()
    print(f"table:  {parquet}")
    print(f"report: {paths['html']}  (Markdown: {paths['md']})")
    print(f"done in {time.perf_counter() - start:.0f} s")
    failed = table[table["status"] != "ok"]
    if not failed.empty:
        jobs = ", ".join(f"{r.method} seed {r.seed}" for r in failed.itertuples())
        print(f"{len(failed)} of {len(table)} jobs failed: {jobs}; their records say why", file=sys.stderr)
        return 1
    return 0


def prepare_data(overrides: list[str]) -> str | None:
    """Locate, verify and parse the quickstart's data once, before any job starts (a download, if
    one is needed, happens here once, not in every job). Returns the problem, or None."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException

    import datasets  # (registers the config schemas)

    try:
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            cfg = compose("config", overrides=["+experiment=quickstart",
                                               *[o for o in overrides if o.startswith("dataset")]])
        datasets.prepare(cfg.dataset)
    except HydraException as exc:  # a dataset override of the wrong key or type
        return f"{exc}: {exc.__cause__}" if exc.__cause__ else str(exc)
    except (datasets.DataError, datasets.ConfigError) as exc:
        return str(exc)
    return None


def _mean(values) -> str:
    """Mean of the known values, "—" when none is known (start-up in older records)."""
    v = values.dropna()
    return f"{v.mean():.2f}" if len(v) else "—"


def summary_table(A, table) -> str:
    ok = A.ok_rows(table)
    lines = [f"{'method':12s} {'seeds':>5s} {'AUC':>15s} {'precision':>15s} {'recall':>15s} "
             f"{'w.precision':>15s} {'start-up (s)':>12s} {'train (s)':>9s} {'MiB sent':>9s}"]
    for method in sorted(ok["method"].unique(), key=A.method_sort_key):
        r = ok[ok["method"] == method]
        cell = []
        for col in ("auc", "precision", "recall", "weighted_precision"):
            mean, half, _ = A.mean_ci(r[col])
            cell.append(f"{mean:.3f}" + (f" ± {half:.3f}" if half == half else ""))
        lines.append(f"{A.METHOD_NAMES.get(method, method):12s} {len(r):5d} {cell[0]:>15s} {cell[1]:>15s} "
                     f"{cell[2]:>15s} {cell[3]:>15s} {_mean(A.startup_seconds(r)):>12s} "
                     f"{_mean(A.train_seconds(r)):>9s} "
                     f"{r['bytes_total'].mean() / 2**20:9.2f}")
    failed = table[table["status"] != "ok"]
    for _, row in failed.iterrows():
        lines.append(f"{A.METHOD_NAMES.get(row['method'], row['method']):12s} seed {row['seed']}: FAILED "
                     f"({row['error']})")
    return "\n".join(lines)
