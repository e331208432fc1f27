"""Parse and validate a delimited table against the schema in the dataset config: the Bank Marketing
CSVs (``;``-separated, target ``y`` = yes/no) and a researcher's own table (``format: csv``)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

import numpy as np
import pandas as pd

from datasets.errors import DataError, quote, shorten

TARGET = "y"  # the label column of every parsed frame (0/1), whatever the file calls it
# Larger magnitudes are refused as implausible: no column of this data comes near, and squares and
# sums of such values stay far from float overflow downstream (distances, HE encodings, gradients).
MAX_ABS_VALUE = 1e15


def _first_rows(mask: np.ndarray, n: int = 3) -> str:
    # +2: one for the header line, one for 1-based line numbers
    return ", ".join(str(i + 2) for i in np.flatnonzero(mask)[:n])


@dataclass(frozen=True)
class Layout:
    """How a table is written: separator, label column and its values, what a malformed file is told."""

    sep: str = ";"
    target: str = TARGET
    positive: str = "yes"
    negative: str | None = "no"  # None: any one other value
    expected: str = "';'-separated UCI format"
    restore: str = "Restore the UCI original, or set dataset.verify_checksum=false for your own data."


UCI = Layout()


def layout_of(spec) -> Layout:
    """The :class:`Layout` of the configured data (``format: csv`` names its own; UCI's otherwise)."""
    if spec.get("format", "uci") != "csv":
        return UCI
    target = spec.target
    return Layout(sep=spec.separator, target=target.column, positive=str(target.positive),
                  negative=None if target.get("negative") is None else str(target.negative),
                  expected=f"a table separated by {spec.separator!r} with a header line",
                  restore="Restore the file, or set dataset.csv_sha256 to the sha256 of the new one.")


def _short_rows(data: bytes, sep: str, width: int) -> np.ndarray:
    """Per data row, whether it ended before the header's last field (pandas would fill the missing
    fields with empty strings); rows as pandas counts them (blank lines skipped)."""
    text = io.StringIO(data.decode("utf-8", errors="replace"), newline="")
    try:
        counts = [len(row) for row in csv.reader(text, delimiter=sep) if row]
    except csv.Error:  # a field past the csv module's limit: pandas read it, the values are checked
        return np.zeros(0, dtype=bool)
    return np.asarray(counts[1:], dtype=int) < width


def parse(data: bytes, label: str, spec, layout: Layout | None = None) -> pd.DataFrame:
    """The validated frame (numerics as float, categoricals as str, ``y`` as 0/1 int)."""
    layout = layout or layout_of(spec)
    if not data.strip():
        raise DataError(f"{label}: the file is empty")
    try:
        frame = pd.read_csv(io.BytesIO(data), sep=layout.sep, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"{label}: malformed CSV ({shorten(str(exc).strip())}); "
                        f"expected {layout.expected}") from exc
    if frame.empty:
        raise DataError(f"{label}: the file has a header but no data rows")

    numeric, categorical = list(spec.numeric), list(spec.categorical)
    expected = numeric + categorical + [layout.target]
    missing = [c for c in expected if c not in frame.columns]
    extra = [c for c in frame.columns if c not in expected]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing columns {quote(missing)}")
        if extra:
            parts.append(f"unexpected columns {quote(extra)}")
        raise DataError(f"{label}: {'; '.join(parts)}; expected {expected}")
    short = _short_rows(data, layout.sep, len(frame.columns))
    if len(short) == len(frame) and short.any():
        raise DataError(f"{label}: line {_first_rows(short)} has fewer fields than the header's "
                        f"{len(frame.columns)}; the file is truncated or a row is cut short")

    out = pd.DataFrame(index=frame.index)
    for col in numeric:
        raw = frame[col].str.strip()
        values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
        nan = np.isnan(values)
        for bad, problem, expected in (
            (nan, "missing or non-numeric", "numbers"),
            (~nan & ~np.isfinite(values), "non-finite", "finite numbers"),
            (np.abs(values) > MAX_ABS_VALUE, "implausibly large",
             f"numbers of magnitude at most {MAX_ABS_VALUE:g}"),
        ):
            if bad.any():
                raise DataError(
                    f"{label}: column {col!r} has {int(bad.sum())} {problem} value(s) "
                    f"(e.g. {quote(raw[bad].iloc[0])} on line {_first_rows(bad)}); expected {expected}"
                )
        out[col] = values
    for col in categorical:
        values = frame[col].str.strip()
        allowed = list(spec.categorical[col])
        bad = ~values.isin(allowed).to_numpy()
        if bad.any():
            unknown = sorted(set(values[bad]))[:5]
            raise DataError(
                f"{label}: column {col!r} has unknown value(s) {quote(unknown)} (line {_first_rows(bad)}); "
                f"expected one of {allowed}"
            )
        out[col] = values
    y = frame[layout.target].str.strip()
    allowed = [layout.positive] + ([layout.negative] if layout.negative is not None else [])
    if layout.negative is None:
        allowed += list(y[y != layout.positive].iloc[:1])  # the first other value in the file
    bad = ~y.isin(allowed).to_numpy()
    if bad.any():
        want = (f"{layout.positive!r} or {layout.negative!r}" if layout.negative is not None else
                f"{layout.positive!r} or one other value (here {allowed[1]!r}, the first)")
        raise DataError(
            f"{label}: column {layout.target!r} has value(s) {quote(sorted(set(y[bad]))[:5])} "
            f"(line {_first_rows(bad)}); expected {want}"
        )
    out[TARGET] = (y == layout.positive).astype(np.int8)
    return out


def read_checked(data: bytes, label: str, spec, digest: str | None = None) -> pd.DataFrame:
    """Verify the checksum (when asked) and parse; a mismatch says what differs where it can.

    ``digest`` is the sha256 of ``data`` when the caller has it already.
    """
    from datasets._source import sha256

    got = digest or sha256(data)
    layout = layout_of(spec)
    if spec.verify_checksum and spec.csv_sha256 is not None and got != spec.csv_sha256:
        problem = f"sha256 mismatch (expected {spec.csv_sha256}, got {got})"
        try:
            frame = parse(data, label, spec)
        except DataError as exc:
            raise DataError(f"{exc} [{problem}]") from exc
        rows = len(frame)
        if spec.get("expected_rows") is not None and rows != spec.expected_rows:
            raise DataError(
                f"{label}: {problem}; it has {rows:,} data rows, expected {spec.expected_rows:,} "
                "(truncated or edited?)"
            )
        raise DataError(
            f"{label}: {problem}; the file parses but its contents were altered. {layout.restore}"
        )
    return parse(data, label, spec)
