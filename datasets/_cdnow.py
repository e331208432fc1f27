"""CDNOW purchase histories (Fader & Hardie): 23,570 customers who first bought at CDNOW in the first
quarter of 1997, and their 69,659 transactions up to the end of June 1998.

The transaction file ships inside a package on the registry (``dataset.package``, a file at
``dataset.package_file``). It is found through the distribution's file list
(:mod:`importlib.metadata`) and read as a file: the package is never imported. Its sha256 is verified;
a damaged copy is refused with what differs (rows, a value), as the UCI loader does.

One row per customer, from the calibration window (the first ``calibration_weeks`` weeks of 1997):
``recency`` (weeks from the last purchase to the end of the window), ``frequency`` (repeat purchase
days), ``monetary_mean`` (dollars per purchase day), ``monetary_total`` (dollars), ``cds`` (CDs bought)
and ``tenure`` (weeks from the first purchase to the end of the window). Target ``y``: at least one
purchase in the ``holdout_weeks`` weeks after it.
"""

from __future__ import annotations

import importlib.metadata
import io
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

from benchmarks.config import ConfigError
from datasets._parse import MAX_ABS_VALUE, TARGET
from datasets._source import CSV, MAX_CSV_BYTES, _is_file, _read_file, sha256
from datasets.errors import DataError, quote

PERIOD_START = pd.Timestamp("1997-01-01")  # the file's first day
PERIOD_WEEKS = 78  # 1997-01-01 to 1998-06-30: 546 days
COHORT_WEEKS = 13  # every customer's first purchase is in 1997's first quarter (days 0-89)
HEADER = ["customer_id", "date", "number_of_cds", "dollar_value"]
FEATURES = ["recency", "frequency", "monetary_mean", "monetary_total", "cds", "tenure"]


def _weeks(spec) -> tuple[int, int]:
    cal, hold = spec.get("calibration_weeks"), spec.get("holdout_weeks")
    for key, value in (("calibration_weeks", cal), ("holdout_weeks", hold)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"dataset.{key}={quote(value)}; expected a whole number of weeks >= 1")
    if cal < COHORT_WEEKS:
        raise ConfigError(f"dataset.calibration_weeks={cal}; expected at least {COHORT_WEEKS}: the "
                          "customers' first purchases run to the end of March 1997, and each needs a "
                          "history in the calibration window")
    if cal + hold > PERIOD_WEEKS:
        raise ConfigError(f"dataset.calibration_weeks + dataset.holdout_weeks = {cal + hold}; expected at "
                          f"most {PERIOD_WEEKS} (the transactions run from 1997-01-01 to 1998-06-30)")
    return cal, hold


def check_config(spec) -> None:
    """The cdnow keys, none of which needs the data."""
    for key in ("package", "package_file", "csv_sha256", "expected_rows"):
        if spec.get(key) is None:
            raise ConfigError(f"dataset.{key} is missing; dataset.format=cdnow reads "
                              "dataset.package_file from the installed dataset.package and verifies it")
    _weeks(spec)
    numeric, categorical = list(spec.numeric), list(spec.categorical or {})
    if sorted(numeric) != sorted(FEATURES) or categorical:
        raise ConfigError(f"dataset.numeric has {quote(numeric)} and dataset.categorical "
                          f"{quote(categorical)}; the cdnow customer features are the numeric columns "
                          f"{FEATURES} and no categorical column")
    if spec.get("include_duration"):
        raise ConfigError("dataset.include_duration=true; only the UCI Bank Marketing data has a duration "
                          "column (leave it null)")


def locate(spec) -> Path:
    """The file ``dataset.package_file`` of the installed distribution ``dataset.package``."""
    try:
        dist = importlib.metadata.distribution(spec.package)
    except importlib.metadata.PackageNotFoundError:
        raise DataError(f"dataset.package={spec.package!r} is not installed; it ships "
                        f"{spec.package_file} (`uv sync` installs it from the lock)") from None
    wanted = PurePosixPath(spec.package_file)
    for entry in dist.files or []:
        if PurePosixPath(entry.as_posix()) == wanted:
            path = Path(entry.locate())
            if not _is_file(path):
                raise DataError(f"{path}: listed by {dist.name} {dist.version} but not on disk; "
                                f"reinstall it (uv sync --reinstall-package {dist.name})")
            return path
    raise DataError(f"{dist.name} {dist.version} has no file {spec.package_file}; expected the version "
                    "in the lock (uv sync --locked)")


def fetch(spec) -> CSV:
    path = locate(spec)
    data = _read_file(path, MAX_CSV_BYTES, str(path), "the transaction file")
    return CSV(data, sha256(data), "package", str(path))


# -- parsing -----------------------------------------------------------------------------------


def _lines(mask: np.ndarray, n: int = 3) -> str:
    return ", ".join(str(i + 2) for i in np.flatnonzero(mask)[:n])  # +2: header, 1-based


def _refuse(label: str, column: str, raw: pd.Series, bad: np.ndarray, expected: str) -> None:
    if bad.any():
        raise DataError(f"{label}: column {column!r} has {int(bad.sum())} invalid value(s) (e.g. "
                        f"{quote(raw[bad].iloc[0])} on line {_lines(bad)}); expected {expected}")


def parse_transactions(data: bytes, label: str) -> pd.DataFrame:
    """The validated transactions: ``customer`` (int), ``day`` (days since 1997-01-01), ``cds``,
    ``dollars``; lines as in the file (one header line, whitespace-separated fields)."""
    if not data.strip():
        raise DataError(f"{label}: the file is empty")
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError as exc:
        raise DataError(f"{label}: not a text file (byte {exc.start}); expected CDNOW's "
                        "whitespace-separated transactions") from None
    lines = text.splitlines()
    header = lines[0].split()
    if header != HEADER:
        raise DataError(f"{label}: header {quote(header)}; expected {HEADER}")
    widths = np.array([len(line.split()) for line in lines[1:]])
    if len(widths) == 0 or not widths.any():
        raise DataError(f"{label}: the file has a header but no data rows")
    if (widths == 0).any():
        raise DataError(f"{label}: line {_lines(widths == 0)} is blank; expected one transaction a line")
    if (widths != len(HEADER)).any():
        bad = widths != len(HEADER)
        raise DataError(f"{label}: line {_lines(bad)} has {widths[bad][0]} fields, expected {len(HEADER)} "
                        "(truncated or edited?)")
    frame = pd.read_csv(io.StringIO(text), sep=r"\s+", dtype=str, keep_default_na=False)
    ident = frame["customer_id"]
    _refuse(label, "customer_id", ident, ~ident.str.fullmatch(r"\d{1,9}").to_numpy(), "a whole number")
    date = pd.to_datetime(frame["date"], format="%Y%m%d", errors="coerce")
    day = ((date - PERIOD_START).dt.days).to_numpy(dtype=float)
    last = 7 * PERIOD_WEEKS
    final = PERIOD_START + pd.Timedelta(days=last - 1)
    _refuse(label, "date", frame["date"], ~((day >= 0) & (day < last)),
            f"a date YYYYMMDD from {PERIOD_START:%Y%m%d} to {final:%Y%m%d}")
    cds = frame["number_of_cds"]
    _refuse(label, "number_of_cds", cds, ~cds.str.fullmatch(r"\d{1,6}").to_numpy(),
            "a whole number of CDs")
    dollars = pd.to_numeric(frame["dollar_value"], errors="coerce").to_numpy(dtype=float)
    _refuse(label, "dollar_value", frame["dollar_value"],
            ~(np.isfinite(dollars) & (dollars >= 0) & (dollars <= MAX_ABS_VALUE)),
            f"a finite amount of dollars from 0 to {MAX_ABS_VALUE:g}")
    return pd.DataFrame({"customer": ident.astype(np.int64).to_numpy(), "day": day.astype(np.int64),
                         "cds": cds.astype(np.int64).to_numpy(), "dollars": dollars})


def customers(tx: pd.DataFrame, label: str, calibration_weeks: int, holdout_weeks: int) -> pd.DataFrame:
    """One row per customer: the calibration-window features and ``y`` (a purchase in the holdout)."""
    end, stop = 7 * calibration_weeks, 7 * (calibration_weeks + holdout_weeks)
    first = tx.groupby("customer")["day"].min()
    late = first[first >= end]
    if len(late):
        raise DataError(f"{label}: customer {late.index[0]} first buys on day {int(late.iloc[0])} of 1997, "
                        f"after the {calibration_weeks}-week calibration window; expected the first-quarter "
                        "cohort")
    cal = tx[tx["day"] < end]
    by = cal.groupby("customer")
    days = by["day"].nunique()
    total = by["dollars"].sum()
    out = pd.DataFrame({
        "recency": (end - by["day"].max()) / 7.0,
        "frequency": (days - 1).astype(float),
        "monetary_mean": total / days,
        "monetary_total": total,
        "cds": by["cds"].sum().astype(float),
        "tenure": (end - first) / 7.0,
    })
    holdout = tx[(tx["day"] >= end) & (tx["day"] < stop)]["customer"].unique()
    out[TARGET] = out.index.isin(holdout).astype(np.int8)
    return out.sort_index().reset_index(drop=True)


def parse(data: bytes, label: str, spec) -> pd.DataFrame:
    cal, hold = _weeks(spec)
    return customers(parse_transactions(data, label), label, cal, hold)[[*spec.numeric, TARGET]]


def read_checked(data: bytes, label: str, spec, digest: str | None = None) -> pd.DataFrame:
    """Verify the sha256 (with ``dataset.verify_checksum``) and parse; a damaged copy is refused with
    what differs: a line that does not parse, the number of transactions, or that it was altered."""
    got = digest or sha256(data)
    if spec.verify_checksum and got != spec.csv_sha256:
        problem = f"sha256 mismatch (expected {spec.csv_sha256}, got {got})"
        try:
            tx = parse_transactions(data, label)
        except DataError as exc:
            raise DataError(f"{exc} [{problem}]") from exc
        if len(tx) != spec.expected_rows:
            raise DataError(f"{label}: {problem}; it has {len(tx):,} transactions, expected "
                            f"{spec.expected_rows:,} (truncated or edited?)")
        raise DataError(f"{label}: {problem}; the file parses but its contents were altered. Reinstall "
                        f"the package (uv sync --reinstall-package {spec.package}).")
    return parse(data, label, spec)
