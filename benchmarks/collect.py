"""Records -> one tidy table, one row per run (parquet and csv).

    uv run python -m benchmarks.collect results/sweeps/k_sweep/2026-11-27_05-00-00 [more dirs...] [-o OUT]

Every ``record.json`` below the given directories is read (resume pointers ``skipped.json`` lead to
the record they stand for). Columns: run parameters (method, dataset, k, seed, split_seed and each
scalar ``dataset.*`` / ``method.*`` option), metrics, segmentation quality, costs (phases and
parties flattened; ``startup_s`` and ``train_s`` split the fit time where the record has them),
privacy (epsilon, delta, leakage.*), provenance (``machine.*``: CPU model, cores, memory, OS) and
where the record lives.
Per-segment lists (sizes, conversion rates, lift, profiles), the leakage ROC curves
(``leakage.roc``, for the figures) and the cumulative gains curve (``gains``) are JSON
strings. Several records of
one configuration (same ``config_hash``) are reduced to the newest ``ok`` one unless ``--all``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import pandas as pd

from benchmarks._store import iter_records, warn_skipped
from methods._util import atomic_path

ID = ["method", "dataset", "k", "seed", "split_seed"]
METRICS = ["precision", "recall", "f1", "auc", "pr_auc", "accuracy", "weighted_precision",
           "weighted_recall", "threshold"]
#: campaign targeting (benchmarks.metrics.targeting); other shares of ``targeting.shares`` come along
TARGETING = ["lift_top5", "lift_top10", "lift_top20", "capture_top5", "capture_top10", "capture_top20",
             "profit_top5", "profit_top10", "profit_top20", "profit_best", "profit_best_share"]
#: the cumulative gains curve, ``{"contacted": [...], "captured": [...]}``, as JSON
GAINS = "gains"
SEGMENTATION = ["inertia", "inertia_test", "silhouette", "ari_vs_plaintext", "calinski_harabasz",
                "davies_bouldin", "lift_spread", "inertia_reference"]
SEGMENT_LISTS = ["sizes", "conversion_rates", "lift", "profile"]
#: the membership-inference ROC curves, ``{attack: {"fpr": [...], "tpr": [...]}}``, as JSON
ROC = "leakage.roc"
#: startup_s / train_s: fit()'s engine start-up and the rest (None in records older than the split)
COSTS = ["wall_s", "startup_s", "train_s", "cpu_s", "peak_rss_mb", "bytes_total", "rounds"]
#: ``provenance.machine``: what the job ran on, one ``machine.<key>`` column each
MACHINE = ["cpu_model", "cpu_cores", "cpu_cores_usable", "memory_gib", "os", "kernel", "arch"]
#: dataset options worth a column (the bounds and category lists are fixed by the variant's file)
DATASET_PARAMS = ["include_duration", "subsample", "test_size", "scaling", "clip"]


def epsilon_of(record: dict) -> float:
    """The run's epsilon as a float: inf for "inf", or for a DP method that recorded null (no noise);
    NaN when the method makes no differential-privacy claim."""
    eps = (record.get("privacy") or {}).get("epsilon")
    if eps is None:
        configured = (record.get("config") or {}).get("method", {}).get("epsilon", "absent")
        if record.get("method") == "dp":
            eps = math.inf if configured in (None, "absent") else configured
        else:
            return math.nan
    try:
        return float(eps)  # float("inf") parses "inf"
    except (TypeError, ValueError):
        return math.nan


def _scalar(value) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


def _number(section: dict, name: str, key: str) -> float | int | None:
    """A numeric field of a record (``"inf"`` as records store it), else ValueError naming it."""
    value = section.get(key)
    if value is None or (isinstance(value, int | float) and not isinstance(value, bool)):
        return value
    if value in ("inf", "-inf"):
        return float(value)
    raise ValueError(f"{name}.{key} is {str(value)[:40]!r}, expected a number")


def flatten(path: Path, record: dict) -> dict:
    """One table row from one record."""
    config = record.get("config") or {}
    row = {key: record.get(key) for key in ID}
    row.update(status=record.get("status"), error=record.get("error"),
               config_hash=record.get("config_hash"),
               experiment=(record.get("execution") or {}).get("experiment"))
    for key in DATASET_PARAMS:
        row[f"dataset.{key}"] = (config.get("dataset") or {}).get(key)
    for key, value in sorted((config.get("method") or {}).items()):
        if key != "name" and _scalar(value):
            row[f"method.{key}"] = value
        elif key != "name" and isinstance(value, dict):  # one level of nesting: method.dp.noise_multiplier
            for sub, v in sorted(value.items()):
                if _scalar(v):
                    row[f"method.{key}.{sub}"] = v
    data = record.get("data") or {}
    row.update(n_train=data.get("n_train"), n_test=data.get("n_test"), n_features=data.get("n_features"))
    metrics = record.get("metrics") or {}
    row.update({key: _number(metrics, "metrics", key) for key in METRICS})
    row.update({key: _number(metrics, "metrics", key) for key in metrics
                if key.startswith(("lift_top", "capture_top", "profit_top")) or key in TARGETING})
    for key, value in (metrics.get("targeting") or {}).items():
        row[f"targeting.{key}"] = value
    gains = metrics.get("gains")
    row[GAINS] = json.dumps(gains) if isinstance(gains, dict) and gains else None
    for key in metrics.get("he_gap") or {}:
        row[f"he_gap.{key}"] = _number(metrics["he_gap"], "metrics.he_gap", key)
    seg = record.get("segmentation") or {}
    row.update({key: _number(seg, "segmentation", key) for key in SEGMENTATION})
    row.update({key: json.dumps(seg.get(key)) if seg.get(key) is not None else None for key in SEGMENT_LISTS})
    costs = record.get("costs") or {}
    row.update({key: _number(costs, "costs", key) for key in COSTS})
    execution = record.get("execution") or {}
    row["parallel"] = bool(costs.get("parallel", execution.get("parallel", False)))
    row["launcher"] = execution.get("launcher")
    row["n_jobs"] = execution.get("n_jobs")
    network = costs.get("network") or {}  # what the run's traffic costs on its profile
    for key in ("profile", "bandwidth_mbit", "rtt_ms", "modelled_s", "measured"):
        row[f"network.{key}"] = network.get(key)
    for name, seconds in (costs.get("phases") or {}).items():
        row[f"phase.{name}_s"] = seconds
    for party, cost in (costs.get("parties") or {}).items():
        for key, value in (cost or {}).items():
            row[f"party.{party}.{key}"] = value
    privacy = record.get("privacy") or {}
    row["threat_model"] = privacy.get("threat_model")
    row["epsilon"] = epsilon_of(record)
    row["delta"] = privacy.get("delta")
    leak = privacy.get("leakage") or {}
    roc = leak.get("roc") if isinstance(leak, dict) else None
    row[ROC] = json.dumps(roc) if isinstance(roc, dict) and roc else None
    for key, value in leak.items():
        if _scalar(value):
            row[f"leakage.{key}"] = value
        elif isinstance(value, dict):
            for sub, v in value.items():
                if _scalar(v):
                    row[f"leakage.{key}.{sub}"] = v
    prov = record.get("provenance") or {}
    for key in ("git_commit", "git_dirty", "python", "platform", "cpu_count", "started_at", "finished_at"):
        row[key] = prov.get(key)
    machine = prov.get("machine") if isinstance(prov.get("machine"), dict) else {}
    for key in MACHINE:
        value = machine.get(key)
        row[f"machine.{key}"] = value if _scalar(value) else str(value)
    for pkg, version in (prov.get("versions") or {}).items():
        row[f"version.{pkg}"] = version
    row["record"] = str(path)
    return row


def collect(roots: list[Path | str], keep_all: bool = False) -> pd.DataFrame:
    """The table of every record below ``roots`` (empty frame if there are none). Files that are not
    sound records are left out with a warning each and listed in ``table.attrs["skipped_records"]``
    (kept in the parquet file, counted in the report)."""
    skipped: list[dict] = []
    rows = []
    for path, rec in iter_records([Path(r) for r in roots], skipped):
        try:
            rows.append(flatten(path, rec))
        except (TypeError, ValueError, AttributeError) as exc:  # a record with a wrong-typed field
            why = f"cannot be read as a run record ({type(exc).__name__}: {str(exc)[:100]})"
            warn_skipped(path, why)
            skipped.append({"record": str(path), "problem": why})
    table = pd.DataFrame(rows)
    table.attrs["skipped_records"] = skipped
    if table.empty:
        return table
    if not keep_all:
        table["_ok"] = table["status"].eq("ok")
        table = (table.sort_values(["_ok", "finished_at"], na_position="first")
                 .drop_duplicates("config_hash", keep="last").drop(columns="_ok"))
    table = table.sort_values(["dataset", "method", "k", "seed", "n_train"], na_position="last")
    table = table.reset_index(drop=True)
    table.attrs["skipped_records"] = skipped
    return table


def write_table(table: pd.DataFrame, out: Path) -> tuple[Path, Path]:
    """``out``.parquet and ``out``.csv, each written to a temporary name and renamed into place."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    paths = out.with_suffix(".parquet"), out.with_suffix(".csv")
    for path in paths:
        # object columns mixing types (a method option that is a number for one method and a
        # string for another) are stored as strings so that parquet accepts them
        frame = table.copy()
        for col in frame.columns[frame.dtypes.map(pd.api.types.is_object_dtype)]:
            kinds = {type(v) for v in frame[col].dropna()}
            if len(kinds) > 1:
                frame[col] = frame[col].map(lambda v: v if v is None or v != v else str(v))
        with atomic_path(path) as tmp:
            if path.suffix == ".parquet":
                frame.to_parquet(tmp, index=False)
            else:
                frame.to_csv(tmp, index=False)
    return paths


def read_table(path: Path | str) -> pd.DataFrame:
    """A table written by :func:`write_table` (parquet or csv)."""
    path = Path(path)
    if path.is_dir():
        path = path / "results.parquet"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no results table; make one with "
                                "python -m benchmarks.collect <dirs>")
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)


def table_command(argv: list[str] | None, prog: str, doc: str, default_out: str):
    """Arguments of a command that reads a table: ``(table, its path, output dir)``; the output dir
    defaults to ``default_out`` beside the table."""
    parser = argparse.ArgumentParser(prog=prog, description=doc.split("\n")[0])
    parser.add_argument("table", type=Path, help="results table (.parquet or .csv) from benchmarks.collect")
    parser.add_argument("-o", "--out", type=Path, default=None,
                        help=f"output dir (default: {default_out}/ beside the table)")
    args = parser.parse_args(argv)
    out = args.out or (args.table if args.table.is_dir() else args.table.parent) / default_out
    return read_table(args.table), args.table, out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.collect", description=__doc__.split("\n")[0])
    parser.add_argument("dirs", nargs="+", type=Path, help="directories (or record files) to scan")
    parser.add_argument("-o", "--out", type=Path, default=None,
                        help="output path without suffix (default: <first dir>/results)")
    parser.add_argument("--all", action="store_true", help="keep every record, not one per config_hash")
    args = parser.parse_args(argv)
    missing = [str(d) for d in args.dirs if not d.exists()]
    if missing:
        parser.error(f"no such directory: {missing[0]}")
    table = collect(args.dirs, keep_all=args.all)
    bad = len(table.attrs.get("skipped_records", []))
    if table.empty:
        found = f"{bad} unreadable record(s), no sound one" if bad else "no record.json found"
        print(f"{found} below {', '.join(map(str, args.dirs))}", file=sys.stderr)
        return 1
    out = args.out or (args.dirs[0] if args.dirs[0].is_dir() else args.dirs[0].parent) / "results"
    parquet, csv = write_table(table, out)
    counts = table.groupby(["method", "status"]).size().to_dict()
    print(f"{len(table)} runs ({', '.join(f'{m} {s}: {n}' for (m, s), n in counts.items())})"
          + (f"; {bad} unreadable record(s) skipped" if bad else ""))
    print(f"-> {parquet}\n-> {csv}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
